"""The tokens read model's projection (projections.tokens.TokensProjection) fed events
directly: events made by the aggregates, applied through the projection protocol on an
in-memory SQLite database, and the exact rows they leave. No ledger, no event store."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from scimledger.ledger.context import CommandContext
from scimledger.ledger.groups import Group
from scimledger.ledger.names import NameIndex
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import Token
from scimledger.ledger.users import User
from scimledger.ledger.webhooks import Webhook
from scimledger.projections.sql import Cursor
from scimledger.projections.tokens import TokensProjection
from tests.unit.events import CONTEXT, OPERATOR, ORG_ID, T0, at, clock, database, feed, rows

ORG = str(ORG_ID)
ADA = "ada@acme.example"
BOB = "bob@acme.example"
SUCCESSOR = UUID(int=9)


@pytest.fixture
def projection() -> TokensProjection:
    return TokensProjection()


@pytest.fixture
def cursor(projection: TokensProjection) -> Cursor:
    return database(projection)


def tokens(cursor: Cursor) -> list[dict[str, Any]]:
    return rows(cursor, "SELECT * FROM tokens ORDER BY created, id")


def admins(cursor: Cursor) -> list[tuple[str, str, str | None]]:
    found = rows(cursor, "SELECT * FROM org_admins ORDER BY org_id, email")
    return [(row["org_id"], row["email"], row["removed_at"]) for row in found]


def new_token(
    admin: str | None = ADA, context: CommandContext = OPERATOR, name: str = "Okta"
) -> Token:
    return Token(
        org_id=ORG_ID,
        org_slug="acme",
        name=name,
        secret_hash="0" * 64,
        expires_at=T0.replace(year=2031),
        scopes=["scim", "audit:read"],
        context=context,
        issued_by_admin=admin,
    )


def token_row(token: Token, **changed: Any) -> dict[str, Any]:
    """The row of a token made by `new_token()` at T0, with `changed` columns."""
    row = {
        "id": str(token.id),
        "org_id": ORG,
        "org_slug": "acme",
        "name": "Okta",
        "scopes": '["scim","audit:read"]',
        "issuer": f"admin:{ADA}",
        "created": "2030-01-01T12:00:00.000Z",
        "expires_at": "2031-01-01T12:00:00.000Z",
        "revoked_at": None,
        "successor_id": None,
        "grace_until": None,
        "issuer_admin": ADA,
    }
    return {**row, **changed}


def acme(*added: str) -> Organization:
    """acme with `added` admins, its events pending."""
    organization = Organization(slug="acme", context=OPERATOR)
    for email in added:
        organization.add_admin(email, OPERATOR)
    return organization


def test_it_applies_token_admin_and_webhook_events_only() -> None:
    assert set(TokensProjection().topics) == {
        Token.TokenIssued,
        Token.TokenRevoked,
        Token.TokenRotated,
        Organization.AdminAdded,
        Organization.AdminRemoved,
        Organization.AdminDeparted,
        Organization.AdminReturned,
        Webhook.Added,
        Webhook.Disabled,
        Webhook.Enabled,
        Webhook.Removed,
        Webhook.SecretRotated,
        Webhook.Replayed,
        Webhook.Failing,
    }


def test_an_issued_token_is_a_row_without_its_secret_hash(
    projection: TokensProjection, cursor: Cursor
) -> None:
    with clock():
        token = new_token()
    feed(projection, cursor, token.collect_events())
    assert tokens(cursor) == [token_row(token)]


def test_a_token_issued_for_no_admin_names_the_actor_who_issued_it(
    projection: TokensProjection, cursor: Cursor
) -> None:
    by_operator, by_token = new_token(admin=None), new_token(admin=None, context=CONTEXT)
    feed(projection, cursor, [*by_operator.collect_events(), *by_token.collect_events()])
    assert {row["id"]: (row["issuer"], row["issuer_admin"]) for row in tokens(cursor)} == {
        str(by_operator.id): ("operator:root", None),
        str(by_token.id): ("token:Okta", None),
    }


def test_a_token_that_never_expires_has_no_expiry(
    projection: TokensProjection, cursor: Cursor
) -> None:
    token = Token(
        org_id=ORG_ID,
        org_slug="acme",
        name="CI",
        secret_hash="0" * 64,
        expires_at=None,
        scopes=["scim"],
        context=OPERATOR,
        issued_by_admin=None,
    )
    feed(projection, cursor, token.collect_events())
    [row] = tokens(cursor)
    assert (row["expires_at"], row["scopes"]) == (None, '["scim"]')


def test_a_revoked_token_has_the_revocations_time(
    projection: TokensProjection, cursor: Cursor
) -> None:
    with clock():
        token = new_token()
        feed(projection, cursor, token.collect_events())
        token.revoke(OPERATOR)
    feed(projection, cursor, token.collect_events(), first=2)
    assert tokens(cursor) == [token_row(token, revoked_at="2030-01-01T12:00:01.000Z")]


def test_a_rotated_token_has_its_successor_and_grace_period(
    projection: TokensProjection, cursor: Cursor
) -> None:
    with clock():
        token = new_token()
    feed(projection, cursor, token.collect_events())
    token.rotate(SUCCESSOR, at(3600), OPERATOR)
    feed(projection, cursor, token.collect_events(), first=2)
    assert tokens(cursor) == [
        token_row(token, successor_id=str(SUCCESSOR), grace_until="2030-01-01T13:00:00.000Z")
    ]


def test_an_added_admin_is_a_row_of_the_organization(
    projection: TokensProjection, cursor: Cursor
) -> None:
    feed(projection, cursor, acme(ADA).collect_events())
    assert admins(cursor) == [(ORG, ADA, None)]


def test_a_removed_admin_has_the_time_they_were_removed(
    projection: TokensProjection, cursor: Cursor
) -> None:
    organization = acme(ADA, BOB)
    with clock(at(5)):
        organization.remove_admin(ADA, OPERATOR, now=at(5))
    feed(projection, cursor, organization.collect_events())
    assert admins(cursor) == [(ORG, ADA, "2030-01-01T12:00:05.000Z"), (ORG, BOB, None)]


def test_a_departed_admin_has_the_time_they_left(
    projection: TokensProjection, cursor: Cursor
) -> None:
    organization = acme(ADA)
    feed(projection, cursor, organization.collect_events())
    with clock(at(30)):
        organization.user_left({ADA}, CONTEXT, now=at(20))
    feed(projection, cursor, organization.collect_events(), first=3)
    assert admins(cursor) == [(ORG, ADA, "2030-01-01T12:00:20.000Z")]


def test_a_departed_admin_who_returns_has_no_removal_time(
    projection: TokensProjection, cursor: Cursor
) -> None:
    organization = acme(ADA)
    organization.user_left({ADA}, CONTEXT, now=at(20))
    feed(projection, cursor, organization.collect_events())
    organization.user_returned({ADA}, CONTEXT)
    feed(projection, cursor, organization.collect_events(), first=4)
    assert admins(cursor) == [(ORG, ADA, None)]


def test_a_removed_admin_added_again_has_no_removal_time(
    projection: TokensProjection, cursor: Cursor
) -> None:
    organization = acme(ADA)
    organization.remove_admin(ADA, OPERATOR, now=at(20))
    feed(projection, cursor, organization.collect_events())
    organization.add_admin(ADA, OPERATOR)
    feed(projection, cursor, organization.collect_events(), first=4)
    assert admins(cursor) == [(ORG, ADA, None)]


def test_a_lifecycle_leaves_the_final_rows(projection: TokensProjection, cursor: Cursor) -> None:
    with clock():
        old, new = new_token(), new_token(admin=BOB, name="Okta 2")
        organization = Organization(slug="acme", context=OPERATOR)
        organization.add_admin(ADA, OPERATOR)
        organization.add_admin(BOB, OPERATOR)
        old.rotate(new.id, at(100), OPERATOR)
        organization.remove_admin(ADA, OPERATOR, now=at(6))
        old.revoke(OPERATOR)
    feed(
        projection,
        cursor,
        [*old.collect_events(), *new.collect_events(), *organization.collect_events()],
    )
    assert tokens(cursor) == [
        token_row(
            old,
            successor_id=str(new.id),
            grace_until="2030-01-01T12:01:40.000Z",
            revoked_at="2030-01-01T12:00:07.000Z",
        ),
        token_row(
            new,
            name="Okta 2",
            issuer=f"admin:{BOB}",
            issuer_admin=BOB,
            created="2030-01-01T12:00:01.000Z",
        ),
    ]
    assert admins(cursor) == [(ORG, ADA, "2030-01-01T12:00:06.000Z"), (ORG, BOB, None)]


def test_user_group_name_and_other_organization_events_change_nothing(
    projection: TokensProjection, cursor: Cursor
) -> None:
    user = User(org_id=ORG_ID, attributes={"userName": ADA}, active=True, context=CONTEXT)
    user.delete(CONTEXT)
    group = Group(org_id=ORG_ID, display_name="Admins", external_id=None, context=CONTEXT)
    index = NameIndex(org_id=ORG_ID, kind="userName", name=ADA, owner_id=user.id)
    organization = Organization(slug="acme", context=OPERATOR)
    organization.change_settings({"departed_policy": "revoke-after"}, OPERATOR)
    events = [
        *user.collect_events(),
        *group.collect_events(),
        *index.collect_events(),
        *organization.collect_events(),
    ]
    projection.begin(cursor)
    for position, event in enumerate(events, start=1):  # past the runner's topic filter
        projection.add(cursor, projection.prepare(event), position)
    projection.end(cursor)
    assert (tokens(cursor), admins(cursor)) == ([], [])
    assert rows(cursor, "SELECT * FROM token_usage") == []
