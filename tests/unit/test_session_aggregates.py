"""Sign-in links and console sessions (ledger.sessions) on their own: no ledger, no store."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import pytest

from scimledger.ledger.context import Role
from scimledger.ledger.organizations import Organization
from scimledger.ledger.sessions import (
    LINK_LIFETIME,
    SESSION_LIFETIME,
    ConsoleSession,
    Presented,
    SignInLink,
    SignInRefused,
)
from scimledger.ledger.tokens import hash_secret
from tests.unit.events import CONTEXT, OPERATOR, ORG_ID, SECOND, T0, clock, recorded

ADA = "ada@acme.example"
SECRET = "s" * 43
SESSION_ID = UUID(int=7)


def new_link() -> SignInLink:
    with clock():
        return SignInLink(
            org_id=ORG_ID,
            email=ADA,
            secret_hash=hash_secret(SECRET),
            expires_at=T0 + LINK_LIFETIME,
            context=OPERATOR,
        )


def new_session() -> ConsoleSession:
    session = ConsoleSession(
        id=SESSION_ID,
        org_id=ORG_ID,
        email=ADA,
        role="admin",
        method="link",
        secret_hash=hash_secret(SECRET),
        expires_at=T0 + SESSION_LIFETIME,
        context=CONTEXT,
    )
    session.collect_events()
    return session


def organization(role: Role | None = "admin") -> Organization:
    org = Organization(slug="acme", context=OPERATOR)
    if role == "admin":
        org.add_admin(ADA, OPERATOR)
    elif role == "reviewer":
        org.add_admin(ADA, OPERATOR, role="reviewer")
    return org


def test_a_link_records_only_the_hash_of_its_secret() -> None:
    link = new_link()
    [(kind, fields)] = recorded(link)
    assert kind is SignInLink.Issued
    assert fields["secret_hash"] == hash_secret(SECRET)
    assert SECRET not in repr(fields)
    assert (fields["email"], fields["expires_at"]) == (ADA, T0 + LINK_LIFETIME)


def test_a_link_lets_in_once_within_its_lifetime() -> None:
    link = new_link()
    link.check(SECRET, T0 + LINK_LIFETIME - SECOND)
    session_id = UUID(int=7)
    link.use(session_id, CONTEXT)
    assert [(kind, fields["session_id"]) for kind, fields in recorded(link)[1:]] == [
        (SignInLink.Used, session_id)
    ]
    with pytest.raises(SignInRefused, match="sign-in link already used"):
        link.check(SECRET, T0)


def test_a_link_past_its_lifetime_is_refused() -> None:
    with pytest.raises(SignInRefused, match="sign-in link expired"):
        new_link().check(SECRET, T0 + LINK_LIFETIME)


def test_a_link_with_a_wrong_secret_is_refused() -> None:
    with pytest.raises(SignInRefused, match="wrong secret"):
        new_link().check("t" * 43, T0)


def test_a_session_acts_in_its_persons_current_role() -> None:
    session = new_session()
    assert session.id == SESSION_ID
    assert session.role_now(SECRET, organization("admin"), T0) == "admin"
    assert session.role_now(SECRET, organization("reviewer"), T0) == "reviewer"


@pytest.mark.parametrize(
    ("secret", "role", "moment", "reason"),
    [
        ("t" * 43, "admin", T0, "wrong secret"),
        (SECRET, "admin", T0 + SESSION_LIFETIME, "session expired"),
        (SECRET, None, T0, "ada@acme.example is no longer an admin or reviewer"),
    ],
)
def test_a_session_that_no_longer_holds_is_refused(
    secret: str, role: Role | None, moment: datetime, reason: str
) -> None:
    with pytest.raises(SignInRefused) as refused:
        new_session().role_now(secret, organization(role), moment)
    assert str(refused.value) == reason


def test_a_departed_admins_session_is_refused() -> None:
    org = organization("admin")
    org.user_left({ADA}, CONTEXT, now=T0)
    with pytest.raises(SignInRefused, match="no longer an admin or reviewer"):
        new_session().role_now(SECRET, org, T0)


def test_an_ended_session_is_refused_and_ends_once() -> None:
    session = new_session()
    session.end(CONTEXT)
    session.end(CONTEXT)
    assert [kind for kind, _ in recorded(session)] == [ConsoleSession.Ended]
    with pytest.raises(SignInRefused, match="session ended"):
        session.role_now(SECRET, organization("admin"), T0)


def test_what_a_bearer_presents_reads_back() -> None:
    presented = Presented(UUID(int=5), SECRET)
    assert Presented.parse(str(presented)) == presented
    for text in ("", "x", f"{UUID(int=5).hex}_{SECRET}x", f"{UUID(int=5).hex}-{SECRET}"):
        with pytest.raises(SignInRefused, match="malformed"):
            Presented.parse(text)
