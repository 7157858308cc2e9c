"""What happens to the tokens of an admin who leaves: the organization's policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.domain import Aggregate
from freezegun import freeze_time

from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.errors import InvalidSettings, InvalidToken
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import Token
from tests.scim import PATCH_OP, Client

OPERATOR = Actor(kind="operator", id="tests", name="tester")
DAY = timedelta(days=1)


def departed_at(ledger: Ledger, token: Token) -> datetime | None:
    """When the admin `token` was issued for left, as the ledger's policy sees it."""
    organization: Aggregate = ledger.repository.get(token.org_id)
    assert isinstance(organization, Organization)
    assert token.issued_by_admin is not None
    return organization.departed.get(token.issued_by_admin)


def alices_token(ledger: Ledger) -> IssuedToken:
    ledger.add_admin("acme", "alice@example.com", OPERATOR, RequestInfo("a"))
    return ledger.issue_token(
        org="acme",
        name="Okta",
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo("i"),
        by="alice@example.com",
    )


def revoke_after(ledger: Ledger, grace: timedelta) -> None:
    ledger.change_settings(
        "acme",
        {"departed_policy": "revoke-after", "departed_grace_seconds": int(grace.total_seconds())},
        OPERATOR,
        RequestInfo("s"),
    )


def test_by_default_a_departed_issuers_token_keeps_working(ledger: Ledger) -> None:
    issued = alices_token(ledger)
    with freeze_time("2030-01-01T00:00:00Z"):
        ledger.remove_admin("acme", "alice@example.com", OPERATOR, RequestInfo("r"))
    assert ledger.settings("acme")["departed_policy"] == "warn"
    later = datetime(2031, 1, 1, tzinfo=UTC)
    assert ledger.authenticate(issued.token, later).actor.name == "Okta"


def test_revoke_after_revokes_once_the_grace_period_is_over_and_records_it(
    ledger: Ledger,
) -> None:
    issued = alices_token(ledger)
    revoke_after(ledger, DAY)
    left = datetime(2030, 1, 1, tzinfo=UTC)
    with freeze_time(left):
        ledger.remove_admin("acme", "alice@example.com", OPERATOR, RequestInfo("r"))
    assert ledger.authenticate(issued.token, left + DAY - timedelta(seconds=1))
    with pytest.raises(InvalidToken, match="issuer left"):
        ledger.authenticate(issued.token, left + DAY)
    token = ledger.token(issued.id)
    assert token is not None
    assert token.revoked
    last = list(ledger.events.get(issued.id))[-1]
    assert isinstance(last, Token.TokenRevoked)
    assert last.context.actor == Actor(
        kind="operator", id="departed-issuer policy", name="scimledger"
    )


def test_a_deactivated_scim_user_is_a_departed_admin(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    issued = alices_token(ledger)
    revoke_after(ledger, DAY)
    user = client.post("/scim/v2/Users", json={"userName": "Alice@Example.com"}).json()
    with freeze_time("2030-01-01T00:00:00Z"):
        client.patch(
            f"/scim/v2/Users/{user['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": False}}],
            },
        )
    token = ledger.token(issued.id)
    assert token is not None
    assert departed_at(ledger, token) == datetime(2030, 1, 1, tzinfo=UTC)
    assert ledger.sweep_departed(issued.id, datetime(2030, 1, 1, 12, tzinfo=UTC)) is False
    assert ledger.sweep_departed(issued.id, datetime(2030, 1, 2, tzinfo=UTC)) is True
    assert ledger.sweep_departed(issued.id, datetime(2030, 1, 3, tzinfo=UTC)) is False


def test_tokens_of_admins_who_stay_are_untouched(ledger: Ledger) -> None:
    issued = alices_token(ledger)
    revoke_after(ledger, timedelta(0))
    assert ledger.sweep_departed(issued.id, datetime(2100, 1, 1, tzinfo=UTC)) is False


@pytest.mark.parametrize(
    "settings",
    [{"colour": "blue"}, {"departed_policy": "panic"}, {"departed_grace_seconds": -1}],
)
def test_bad_settings_are_refused(ledger: Ledger, settings: dict[str, object]) -> None:
    alices_token(ledger)
    with pytest.raises(InvalidSettings):
        ledger.change_settings("acme", settings, OPERATOR, RequestInfo("s"))


def test_settings_over_the_admin_api(
    client: Client,
    services: Services,
) -> None:
    admin = services.ledger.issue_token(
        org="acme",
        name="Console",
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo("i"),
        scopes=("admin",),
    )
    headers = {"Authorization": f"Bearer {admin.token}"}
    assert client.get("/admin/v1/settings", headers=headers).json() == {
        "departed_policy": "warn",
        "departed_grace_seconds": 604800,
        "scim_base_url": None,
        "oidc_issuer": None,
        "oidc_client_id": None,
        "oidc_client_secret_set_at": None,
        "erase_deleted_after_seconds": None,
    }
    changed = client.patch(
        "/admin/v1/settings",
        json={
            "departed_policy": "revoke-after",
            "scim_base_url": "https://scim.example.com/scim/v2",
        },
        headers=headers,
    )
    assert changed.json()["departed_policy"] == "revoke-after"
    bad = client.patch("/admin/v1/settings", json={"departed_policy": "panic"}, headers=headers)
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_request")


def set_active(client: Client, user_id: str, active: bool) -> None:
    response = client.patch(
        f"/scim/v2/Users/{user_id}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"active": active}}],
        },
    )
    assert response.status_code == 200


def test_an_admins_email_on_another_user_is_no_departure(
    client: Client,
    services: Services,
) -> None:
    """A provisioning client can put any address among a user's emails: deactivating that
    user must not make the admin depart (under revoke-after it would revoke their tokens)."""
    ledger = services.ledger
    issued = alices_token(ledger)
    revoke_after(ledger, timedelta(0))
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    before = list(ledger.events.get(org_id))
    user = client.post(
        "/scim/v2/Users",
        json={"userName": "mallory", "emails": [{"value": "Alice@Example.com", "type": "work"}]},
    ).json()
    set_active(client, user["id"], False)
    assert client.delete(f"/scim/v2/Users/{user['id']}").status_code == 204
    assert list(ledger.events.get(org_id)) == before
    assert ledger.authenticate(issued.token, datetime(2100, 1, 1, tzinfo=UTC)).actor.name == "Okta"


def test_the_admins_own_user_departs_and_the_departure_is_recorded(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    issued = alices_token(ledger)
    user = client.post("/scim/v2/Users", json={"userName": "Alice@Example.com"}).json()
    with freeze_time("2030-01-01T00:00:00Z"):
        set_active(client, user["id"], False)
    token = ledger.token(issued.id)
    assert token is not None
    assert departed_at(ledger, token) == datetime(2030, 1, 1, tzinfo=UTC)
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    departed = list(ledger.events.get(org_id))[-1]
    assert isinstance(departed, Organization.AdminDeparted)
    assert (departed.email, departed.context.actor.name) == ("alice@example.com", "Okta")


def test_a_reactivated_admin_is_back(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    issued = alices_token(ledger)
    revoke_after(ledger, timedelta(0))
    user = client.post("/scim/v2/Users", json={"userName": "alice@example.com"}).json()
    set_active(client, user["id"], False)
    set_active(client, user["id"], True)
    token = ledger.token(issued.id)
    assert token is not None
    assert departed_at(ledger, token) is None
    assert ledger.sweep_departed(issued.id, datetime(2100, 1, 1, tzinfo=UTC)) is False


def test_deleting_the_admins_user_is_a_departure(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    issued = alices_token(ledger)
    user = client.post("/scim/v2/Users", json={"userName": "alice@example.com"}).json()
    assert client.delete(f"/scim/v2/Users/{user['id']}").status_code == 204
    token = ledger.token(issued.id)
    assert token is not None
    assert departed_at(ledger, token) is not None


def test_deactivating_someone_else_records_nothing_about_admins(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    alices_token(ledger)
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    before = len(list(ledger.events.get(org_id)))
    user = client.post("/scim/v2/Users", json={"userName": "bob@example.com"}).json()
    set_active(client, user["id"], False)
    assert len(list(ledger.events.get(org_id))) == before
