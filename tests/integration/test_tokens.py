"""Token lifecycle: rotation with a grace period, status, last use; never a secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.domain import Aggregate
from freezegun import freeze_time

from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.errors import InvalidToken, LedgerError
from scimledger.ledger.tokens import Token, TokenRequestError, parse_grace, parse_token
from scimledger.projections import audit
from scimledger.projections.runner import Runner
from scimledger.projections.tokens import TokensProjection, TokenView, list_tokens
from tests.scim import Client

OPERATOR = Actor(kind="operator", id="tests", name="tester")
START = datetime(2030, 1, 1, 12, tzinfo=UTC)


def tokens(services: Services, now: datetime) -> list[TokenView]:
    Runner(services.ledger, TokensProjection()).run_once()
    with services.sql.transaction(commit=False) as cursor:
        return list_tokens(cursor, "acme", now)


def rotate(services: Services, token: IssuedToken, grace: timedelta) -> IssuedToken:
    return services.ledger.rotate_token(
        token.id, grace=grace, actor=OPERATOR, request=RequestInfo("rotate"), now=START
    )


def test_a_rotated_token_works_until_its_grace_period_ends(
    services: Services, token: IssuedToken
) -> None:
    successor = rotate(services, token, timedelta(hours=24))
    ledger = services.ledger
    assert ledger.authenticate(token.token, START + timedelta(hours=23)).actor.id == str(token.id)
    with pytest.raises(InvalidToken, match="grace period is over"):
        ledger.authenticate(token.token, START + timedelta(hours=24))
    principal = ledger.authenticate(successor.token, START + timedelta(days=30))
    assert (principal.actor.name, principal.scopes) == ("Okta", ("scim",))
    assert (successor.name, successor.org) == ("Okta", "acme")


def test_rotation_is_recorded_and_audited(services: Services, token: IssuedToken) -> None:
    successor = rotate(services, token, timedelta(hours=1))
    old: Aggregate = services.ledger.repository.get(token.id)
    assert isinstance(old, Token)
    assert (old.successor_id, old.grace_until) == (successor.id, START + timedelta(hours=1))
    Runner(services.ledger, audit.AuditProjection()).run_once()
    with services.sql.transaction(commit=False) as cursor:
        [entry] = audit.page(cursor, audit.AuditQuery(actions=("token.rotated",)), 10)
    assert (entry["subject_id"], entry["subject_name"], entry["actor_name"]) == (
        str(token.id),
        "Okta",
        "tester",
    )
    assert entry["changes"]["successor"] == {"before": None, "after": str(successor.id)}


def test_a_token_rotates_once_and_a_revoked_one_never(
    services: Services, token: IssuedToken
) -> None:
    rotate(services, token, timedelta(hours=1))
    with pytest.raises(InvalidToken, match="already rotated"):
        rotate(services, token, timedelta(hours=1))
    services.ledger.revoke_token(token.id, OPERATOR, RequestInfo("r"))
    other = services.ledger.issue_token(
        org="acme", name="Other", expires_at=None, actor=OPERATOR, request=RequestInfo("i")
    )
    services.ledger.revoke_token(other.id, OPERATOR, RequestInfo("r"))
    with pytest.raises(InvalidToken, match="revoked"):
        rotate(services, other, timedelta(hours=1))


def test_the_list_shows_each_status(services: Services, token: IssuedToken) -> None:
    ledger = services.ledger
    expiring = ledger.issue_token(
        org="acme",
        name="Short",
        expires_at=START + timedelta(days=1),
        actor=OPERATOR,
        request=RequestInfo("i"),
    )
    revoked = ledger.issue_token(
        org="acme", name="Gone", expires_at=None, actor=OPERATOR, request=RequestInfo("i")
    )
    ledger.revoke_token(revoked.id, OPERATOR, RequestInfo("r"))
    successor = rotate(services, token, timedelta(hours=2))
    now = {view.id: view.status for view in tokens(services, START + timedelta(hours=1))}
    assert now == {
        str(token.id): "rotating",
        str(expiring.id): "active",
        str(revoked.id): "revoked",
        str(successor.id): "active",
    }
    later = {view.id: view.status for view in tokens(services, START + timedelta(days=2))}
    assert later[str(token.id)] == "expired"
    assert later[str(expiring.id)] == "expired"


def test_the_list_never_shows_a_secret(services: Services, token: IssuedToken) -> None:
    views = tokens(services, START)
    dumped = json.dumps([view.as_dict() for view in views])
    assert parse_token(token.token).secret not in dumped
    assert views[0].as_dict() == {
        "id": str(token.id),
        "org": "acme",
        "name": "Okta",
        "scopes": ["scim"],
        "issuer": "operator:tester",
        "created": views[0].created,
        "expires": None,
        "last_used": None,
        "status": "active",
        "hint": "",
    }


def test_last_use_is_written_at_most_once_a_minute(
    client: Client,
    services: Services,
    token: IssuedToken,
) -> None:
    with freeze_time("2030-01-01T12:00:00Z"):
        client.get("/scim/v2/Users")
    with freeze_time("2030-01-01T12:00:59Z"):
        client.get("/scim/v2/Users")
    assert tokens(services, START)[0].last_used == "2030-01-01T12:00:00.000Z"
    with freeze_time("2030-01-01T12:01:00Z"):
        client.get("/scim/v2/Users")
    assert tokens(services, START)[0].last_used == "2030-01-01T12:01:00.000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("30m", timedelta(minutes=30)),
        ("7d", timedelta(days=7)),
        ("0", timedelta(0)),
    ],
)
def test_grace_periods_parse(text: str, expected: timedelta) -> None:
    assert parse_grace(text) == expected


@pytest.mark.parametrize("text", ["24", "1w", "-1h", "soon", ""])
def test_bad_grace_periods_are_refused(text: str) -> None:
    with pytest.raises(TokenRequestError):
        parse_grace(text)


def test_tokens_are_issued_for_admins_only(services: Services) -> None:
    ledger = services.ledger
    ledger.add_admin("acme", "Alice@Example.com", OPERATOR, RequestInfo("a"))
    assert ledger.admins("acme") == ["alice@example.com"]
    issued = ledger.issue_token(
        org="acme",
        name="Okta",
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo("i"),
        by="alice@example.com",
    )
    principal = ledger.authenticate(issued.token, START)
    assert principal.actor.issued_by == "admin:alice@example.com"
    with pytest.raises(LedgerError, match="not an admin of acme"):
        ledger.issue_token(
            org="acme",
            name="Okta",
            expires_at=None,
            actor=OPERATOR,
            request=RequestInfo("i"),
            by="mallory@example.com",
        )


def by_id(views: list[TokenView]) -> dict[str, tuple[str, str]]:
    return {view.id: (view.status, view.hint) for view in views}


def test_tokens_of_a_removed_admin_show_issuer_departed_with_the_way_out(
    services: Services,
) -> None:
    ledger = services.ledger
    for email in ("alice@example.com", "bob@example.com"):
        ledger.add_admin("acme", email, OPERATOR, RequestInfo("a"))
    alices = ledger.issue_token(
        org="acme",
        name="Okta",
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo("i"),
        by="alice@example.com",
    )
    ledger.remove_admin("acme", "alice@example.com", OPERATOR, RequestInfo("r"))
    assert by_id(tokens(services, START))[str(alices.id)] == (
        "issuer departed",
        f"scimledger tokens rotate {alices.id} --by <another admin of acme>",
    )
    successor = ledger.rotate_token(
        alices.id,
        grace=timedelta(hours=1),
        actor=OPERATOR,
        request=RequestInfo("rot"),
        now=START,
        by="bob@example.com",
    )
    statuses = by_id(tokens(services, START))
    assert statuses[str(successor.id)] == ("active", "")
    assert statuses[str(alices.id)][0] == "rotating"


def test_an_admin_deactivated_through_scim_departs(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    ledger.add_admin("acme", "alice@example.com", OPERATOR, RequestInfo("a"))
    alices = ledger.issue_token(
        org="acme",
        name="Okta 2",
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo("i"),
        by="alice@example.com",
    )
    user = client.post("/scim/v2/Users", json={"userName": "Alice@Example.com"}).json()
    assert by_id(tokens(services, START))[str(alices.id)][0] == "active"
    client.patch(
        f"/scim/v2/Users/{user['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )
    assert by_id(tokens(services, START))[str(alices.id)][0] == "issuer departed"
