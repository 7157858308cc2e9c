"""Console sign-in through the ledger, on SQLite and PostgreSQL: links, sessions, and what ends
them (ledger.sessions)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.errors import NotAnAdmin
from scimledger.ledger.sessions import (
    LINK_LIFETIME,
    SESSION_LIFETIME,
    ConsoleSession,
    Presented,
    SignInLink,
    SignInRefused,
)
from tests.conftest import stored_payloads

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
OPERATOR = Actor.operator("console link")
BROWSER = RequestInfo(request_id="r1", client_address="203.0.113.9", user_agent="Firefox")
ADA = "ada@acme.example"
UNKNOWN = UUID(int=99)


def acme(ledger: Ledger) -> None:
    ledger.add_admin("acme", ADA, OPERATOR, RequestInfo.local())
    ledger.add_admin("acme", "rita@acme.example", OPERATOR, RequestInfo.local(), role="reviewer")


def signed_in_with_link(ledger: Ledger, email: str = ADA) -> Presented:
    link, _ = ledger.issue_sign_in_link("acme", email, OPERATOR, NOW)
    return ledger.sign_in_with_link(link, BROWSER, NOW)


def test_a_link_opens_a_session_for_the_admin_and_records_both(ledger: Ledger) -> None:
    acme(ledger)
    link, until = ledger.issue_sign_in_link("acme", "  ADA@acme.example", OPERATOR, NOW)
    assert until == NOW + LINK_LIFETIME
    session = ledger.sign_in_with_link(link, BROWSER, NOW + timedelta(minutes=14))
    who = ledger.signed_in(session, NOW)
    assert (who.org, who.email, who.role, who.session_id) == ("acme", ADA, "admin", session.id)
    used: SignInLink = ledger.repository.get(link.id)
    started: ConsoleSession = ledger.repository.get(session.id)
    assert used.used
    assert not started.ended
    [_, used_event] = ledger.events.get(link.id)
    assert used_event.session_id == session.id  # type: ignore[attr-defined]
    [started_event] = ledger.events.get(session.id)
    context: CommandContext = started_event.context  # type: ignore[attr-defined]
    assert context.actor == Actor.person(session.id, ADA, "admin")
    assert context.request == BROWSER
    stored = stored_payloads(ledger)
    assert not any(
        secret.encode() in state for state in stored for secret in (link.secret, session.secret)
    )


def test_a_link_works_once(ledger: Ledger) -> None:
    acme(ledger)
    link, _ = ledger.issue_sign_in_link("acme", ADA, OPERATOR, NOW)
    ledger.sign_in_with_link(link, BROWSER, NOW)
    with pytest.raises(SignInRefused, match="sign-in link already used"):
        ledger.sign_in_with_link(link, BROWSER, NOW)


def test_a_link_used_twice_at_once_opens_one_session(ledger: Ledger) -> None:
    acme(ledger)
    link, _ = ledger.issue_sign_in_link("acme", ADA, OPERATOR, NOW)
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def use() -> None:
        start.wait()
        try:
            ledger.sign_in_with_link(link, BROWSER, NOW)
            outcomes.append("in")
        except SignInRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["in", "refused", "refused", "refused"]


def test_a_link_with_another_secret_or_id_is_refused(ledger: Ledger) -> None:
    acme(ledger)
    link, _ = ledger.issue_sign_in_link("acme", ADA, OPERATOR, NOW)
    with pytest.raises(SignInRefused, match="wrong secret"):
        ledger.sign_in_with_link(Presented(link.id, "x" * 43), BROWSER, NOW)
    with pytest.raises(SignInRefused, match="unknown sign-in link"):
        ledger.sign_in_with_link(Presented(UNKNOWN, link.secret), BROWSER, NOW)
    ledger.sign_in_with_link(link, BROWSER, NOW)  # still unused


def test_a_link_is_refused_after_fifteen_minutes(ledger: Ledger) -> None:
    acme(ledger)
    link, _ = ledger.issue_sign_in_link("acme", ADA, OPERATOR, NOW)
    with pytest.raises(SignInRefused, match="sign-in link expired"):
        ledger.sign_in_with_link(link, BROWSER, NOW + LINK_LIFETIME)


def test_a_link_is_only_for_an_admin_or_reviewer(ledger: Ledger) -> None:
    acme(ledger)
    with pytest.raises(NotAnAdmin) as refused:
        ledger.issue_sign_in_link("acme", "bob@acme.example", OPERATOR, NOW)
    assert str(refused.value) == (
        "bob@acme.example is not an admin or reviewer of acme: add them first with"
        " `scimledger admins add bob@acme.example --org acme`"
    )


def test_a_link_issued_to_someone_removed_since_lets_nobody_in(ledger: Ledger) -> None:
    acme(ledger)
    link, _ = ledger.issue_sign_in_link("acme", ADA, OPERATOR, NOW)
    ledger.remove_admin("acme", ADA, OPERATOR, RequestInfo.local())
    with pytest.raises(SignInRefused, match="not an admin or reviewer"):
        ledger.sign_in_with_link(link, BROWSER, NOW)


def test_a_reviewer_signs_in_as_a_reviewer(ledger: Ledger) -> None:
    acme(ledger)
    session = signed_in_with_link(ledger, "rita@acme.example")
    assert ledger.signed_in(session, NOW).role == "reviewer"


def test_a_session_follows_its_persons_role_and_ends_when_they_are_removed(
    ledger: Ledger,
) -> None:
    acme(ledger)
    session = signed_in_with_link(ledger)
    ledger.add_admin("acme", ADA, OPERATOR, RequestInfo.local(), role="reviewer")
    assert ledger.signed_in(session, NOW).role == "reviewer"
    ledger.remove_admin("acme", ADA, OPERATOR, RequestInfo.local())
    with pytest.raises(SignInRefused) as refused:
        ledger.signed_in(session, NOW)
    assert str(refused.value) == "ada@acme.example is no longer an admin or reviewer"


def test_a_session_ends_when_signed_out_and_after_twelve_hours(ledger: Ledger) -> None:
    acme(ledger)
    session = signed_in_with_link(ledger)
    with pytest.raises(SignInRefused, match="session expired"):
        ledger.signed_in(session, NOW + SESSION_LIFETIME)
    who = ledger.signed_in(session, NOW)
    ledger.end_session(session.id, CommandContext(who.org_id, who.actor, BROWSER))
    with pytest.raises(SignInRefused, match="session ended"):
        ledger.signed_in(session, NOW)


def test_an_unknown_session_is_refused(ledger: Ledger) -> None:
    with pytest.raises(SignInRefused, match="unknown session"):
        ledger.signed_in(Presented(UNKNOWN, "s" * 43), NOW)
