"""Every number, duration and date a client or an operator gives is bounded: out of range is a
clear 400 (or one CLI line and exit 2) that changes nothing, never a 500 or a traceback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.errors import InvalidSettings
from scimledger.ledger.organizations import Organization
from tests.e2e.conftest import cli_in_process
from tests.scim import Client

OPERATOR = Actor(kind="operator", id="tests", name="tester")
RANGE = "dates go from 1970-01-01T00:00:00Z to 2999-12-31T23:59:59Z"
EDGES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00", "0001-01-01", "9999-12-31"]


def as_admin(services: Services, scope: str = "admin") -> dict[str, str]:
    issued = services.ledger.issue_token(
        org="acme",
        name="Console",
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo("i"),
        scopes=(scope,),
    )
    return {"Authorization": f"Bearer {issued.token}"}


UNSET_SETTINGS = {
    "oidc_issuer": None,
    "oidc_client_id": None,
    "oidc_client_secret_set_at": None,
    "erase_deleted_after_seconds": None,
}


@pytest.mark.parametrize(
    "settings",
    [
        {"departed_grace_seconds": 10**20},
        {"departed_grace_seconds": 365 * 24 * 3600 + 1},
        {"departed_grace_seconds": True},
        {"scim_base_url": "javascript:alert(document.cookie)"},
        {"scim_base_url": "ftp://scim.example.com/"},
        {"scim_base_url": "https://"},
        {"scim_base_url": "https://scim.example.com/\n"},
        {"scim_base_url": " https://scim.example.com/"},
        {"scim_base_url": "https://scim.example.com/" + "a" * 2048},
        {"scim_base_url": 42},
    ],
)
def test_settings_out_of_bounds_are_refused_and_record_nothing(
    ledger: Ledger, settings: dict[str, object]
) -> None:
    ledger.add_admin("acme", "alice@example.com", OPERATOR, RequestInfo("a"))
    before = ledger.settings("acme")
    with pytest.raises(InvalidSettings):
        ledger.change_settings("acme", settings, OPERATOR, RequestInfo("s"))
    assert ledger.settings("acme") == before


def test_settings_at_their_bounds_are_taken(ledger: Ledger) -> None:
    ledger.add_admin("acme", "alice@example.com", OPERATOR, RequestInfo("a"))
    changes = {"departed_grace_seconds": 365 * 24 * 3600, "scim_base_url": "http://scim.test/v2"}
    assert ledger.change_settings("acme", changes, OPERATOR, RequestInfo("s")) == {
        "departed_policy": "warn",
        **changes,
        **UNSET_SETTINGS,
    }


def test_the_admin_api_answers_400_to_settings_out_of_bounds(
    client: Client,
    services: Services,
) -> None:
    headers = as_admin(services)
    for body, message in [
        ({"departed_grace_seconds": 10**18}, "departed_grace_seconds must be 0 to 31536000"),
        ({"scim_base_url": "javascript:alert(1)"}, "scim_base_url must be an http:// or https"),
    ]:
        answer = client.patch("/admin/v1/settings", json=body, headers=headers)
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["detail"]
    assert client.get("/admin/v1/settings", headers=headers).json() == {
        "departed_policy": "warn",
        "departed_grace_seconds": 604800,
        "scim_base_url": None,
        **UNSET_SETTINGS,
    }


def test_a_grace_recorded_before_graces_were_bounded_never_ends_and_breaks_nothing(
    ledger: Ledger,
) -> None:
    """A SettingsChanged already in the log with a grace no datetime can add: the issuer's
    token keeps working (no 500) and the sweep passes it by."""
    ledger.add_admin("acme", "alice@example.com", OPERATOR, RequestInfo("a"))
    issued = ledger.issue_token(
        org="acme",
        name="Okta",
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo("i"),
        by="alice@example.com",
    )
    organization: object = ledger.repository.get(Organization.create_id("acme"))
    assert isinstance(organization, Organization)
    context = CommandContext(organization.id, OPERATOR, RequestInfo("legacy"))
    legacy = {"departed_policy": "revoke-after", "departed_grace_seconds": 10**20}
    organization._change_settings(legacy, context)  # as an older version recorded it
    ledger.save(organization)
    ledger.remove_admin("acme", "alice@example.com", OPERATOR, RequestInfo("r"))
    later = datetime.now(UTC) + timedelta(days=3650)
    assert ledger.authenticate(issued.token, later).actor.name == "Okta"
    assert ledger.sweep_departed(issued.id, later) is False


@pytest.mark.parametrize("expires", EDGES)
def test_a_token_expiry_at_the_edges_answers_400_with_the_range(
    client: Client,
    services: Services,
    expires: str,
) -> None:
    headers = as_admin(services)
    answer = client.post(
        "/admin/v1/tokens", json={"name": "Okta", "expires": expires}, headers=headers
    )
    assert answer.status_code == 400, answer.text
    assert RANGE in answer.json()["detail"]
    listed = client.get("/admin/v1/tokens", headers=headers).json()["tokens"]
    assert sorted(token["name"] for token in listed) == ["Console", "Okta"]  # the fixture's


@pytest.fixture(scope="module")
def module_reviewer(module_services: Services) -> dict[str, str]:
    """An audit:read token's headers, for the module's tests that only read."""
    return as_admin(module_services, "audit:read")


@pytest.mark.parametrize("parameter", ["since", "until"])
@pytest.mark.parametrize("value", EDGES)
def test_audit_times_at_the_edges_answer_400_with_the_range(
    module_client: Client,
    module_reviewer: dict[str, str],
    parameter: str,
    value: str,
) -> None:
    answer = module_client.get(
        "/admin/v1/audit", params={parameter: value}, headers=module_reviewer
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"] == f"{parameter}: {value!r} is out of range: {RANGE}"


def test_a_point_in_time_at_the_edge_answers_400_with_the_range(
    client: Client,
    services: Services,
) -> None:
    user_id = client.post("/scim/v2/Users", json={"userName": "bjensen"}).json()["id"]
    answer = client.get(
        f"/admin/v1/users/{user_id}",
        params={"at": EDGES[0]},
        headers=as_admin(services, "audit:read"),
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"] == f"at: {EDGES[0]!r} is out of range: {RANGE}"


@pytest.mark.parametrize(
    "command",
    [
        ["tokens", "issue", "--org", "acme", "--name", "Okta", "--expires", EDGES[0]],
        ["audit", "list", "--since", EDGES[1]],
        ["audit", "list", "--until", EDGES[0]],
        ["audit", "show", "someone", "--at", EDGES[0]],
        ["tokens", "rotate", "00000000000000000000000000000000", "--grace", "999999d"],
        ["settings", "set", "--org", "acme", "--departed-grace", "366d"],
    ],
)
def test_the_cli_prints_one_line_and_exits_2_for_a_value_out_of_range(
    ledger: Ledger, command: list[str]
) -> None:
    done = cli_in_process(*command, database=ledger.database.url)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("scimledger: error: ")
