"""The write side on real databases: events recorded, uniqueness, concurrency, secrets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser, UserReplacement, UserState
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.errors import UserNameTaken, UserNotFound
from scimledger.ledger.listener import LogListener
from scimledger.ledger.names import NameIndex
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import Token, parse_token
from scimledger.ledger.users import User
from tests.conftest import all_stored, issue

ACTOR = Actor(kind="token", id="t-1", name="Okta", issued_by="operator:admin")
REQUEST = RequestInfo(request_id="r-1", client_address="203.0.113.7", user_agent="Okta SCIM")


def loaded(ledger: Ledger, user_id: UUID) -> User:
    """The user as the ledger loads it from its events."""
    user: Aggregate = ledger.repository.get(user_id)
    assert isinstance(user, User)
    return user


def context_for(ledger: Ledger, org: str = "acme") -> CommandContext:
    if ledger.organization_id(org) is None:
        issue(ledger, org=org)
    org_id = ledger.organization_id(org)
    assert org_id is not None
    return CommandContext(org_id=org_id, actor=ACTOR, request=REQUEST)


def bjensen(user_name: str = "bjensen@example.com") -> dict[str, Any]:
    return {"userName": user_name, "name": {"givenName": "Barbara", "familyName": "Jensen"}}


def stored(ledger: Ledger, after: int = 0) -> list[Any]:
    """Every event recorded after log position `after`, decoded."""
    notifications = ledger.recorder.select_notifications(start=after + 1, limit=10_000)
    return [ledger.mapper.to_domain_event(n) for n in notifications]


def head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def replace_with(attributes: dict[str, Any], **kw: Any) -> Callable[[UserState], UserReplacement]:
    return lambda _state: UserReplacement(attributes=attributes, **kw)


def test_create_records_user_created_with_actor_request_and_organization(
    ledger: Ledger,
) -> None:
    context = context_for(ledger)
    before = head(ledger)
    written = ledger.create_user(context, NewUser(attributes=bjensen()))
    events = stored(ledger, before)
    assert [type(e) for e in events] == [User.UserCreated, NameIndex.NameClaimed]
    created = events[0]
    assert created.originator_id == written.id
    assert created.org_id == context.org_id
    assert created.attributes == bjensen()
    assert created.active is True
    assert created.context == context
    assert written.version == 1
    assert written.position == head(ledger)


def test_profile_updated_records_only_what_changed(ledger: Ledger) -> None:
    context = context_for(ledger)
    written = ledger.create_user(context, NewUser(attributes={**bjensen(), "title": "CEO"}))
    before = head(ledger)
    changed = {**bjensen(), "name": {"givenName": "Babs", "familyName": "Jensen"}, "locale": "en"}
    ledger.update_user(context, written.id, replace_with(changed))
    [event] = stored(ledger, before)
    assert type(event) is User.ProfileUpdated
    assert event.changes == {
        "name": {"givenName": "Babs", "familyName": "Jensen"},
        "locale": "en",
        "title": None,
    }


def test_update_that_changes_nothing_records_nothing(ledger: Ledger) -> None:
    context = context_for(ledger)
    written = ledger.create_user(context, NewUser(attributes=bjensen()))
    before = head(ledger)
    again = ledger.update_user(context, written.id, replace_with(bjensen(), active=True))
    assert again.position is None
    assert again.version == written.version
    assert head(ledger) == before


def test_deactivate_and_reactivate_record_their_events(ledger: Ledger) -> None:
    context = context_for(ledger)
    written = ledger.create_user(context, NewUser(attributes=bjensen()))
    before = head(ledger)
    ledger.update_user(context, written.id, replace_with(bjensen(), active=False))
    ledger.update_user(context, written.id, replace_with(bjensen(), active=False))
    ledger.update_user(context, written.id, replace_with(bjensen(), active=True))
    assert [type(e) for e in stored(ledger, before)] == [
        User.UserDeactivated,
        User.UserReactivated,
    ]


def test_duplicate_user_name_is_rejected_case_insensitively_and_records_nothing(
    ledger: Ledger,
) -> None:
    context = context_for(ledger)
    ledger.create_user(context, NewUser(attributes=bjensen("bjensen@example.com")))
    before = head(ledger)
    with pytest.raises(UserNameTaken):
        ledger.create_user(context, NewUser(attributes=bjensen("BJensen@Example.COM")))
    assert head(ledger) == before


def test_deactivated_user_keeps_its_user_name(ledger: Ledger) -> None:
    context = context_for(ledger)
    written = ledger.create_user(context, NewUser(attributes=bjensen(), active=False))
    assert written.version == 1
    with pytest.raises(UserNameTaken):
        ledger.create_user(context, NewUser(attributes=bjensen()))


def test_deleted_user_frees_its_user_name(ledger: Ledger) -> None:
    context = context_for(ledger)
    first = ledger.create_user(context, NewUser(attributes=bjensen()))
    ledger.delete_user(context, first.id)
    second = ledger.create_user(context, NewUser(attributes=bjensen()))
    assert second.id != first.id
    with pytest.raises(UserNotFound):
        ledger.update_user(context, first.id, replace_with(bjensen()))


def test_renaming_frees_the_old_user_name_and_claims_the_new_one(ledger: Ledger) -> None:
    context = context_for(ledger)
    renamed = ledger.create_user(context, NewUser(attributes=bjensen("old@example.com")))
    ledger.update_user(context, renamed.id, replace_with(bjensen("new@example.com")))
    ledger.create_user(context, NewUser(attributes=bjensen("old@example.com")))
    with pytest.raises(UserNameTaken):
        ledger.create_user(context, NewUser(attributes=bjensen("NEW@example.com")))


def test_renaming_to_a_taken_user_name_is_rejected_and_records_nothing(ledger: Ledger) -> None:
    context = context_for(ledger)
    ledger.create_user(context, NewUser(attributes=bjensen("taken@example.com")))
    other = ledger.create_user(context, NewUser(attributes=bjensen("other@example.com")))
    before = head(ledger)
    with pytest.raises(UserNameTaken):
        ledger.update_user(context, other.id, replace_with(bjensen("Taken@example.com")))
    assert head(ledger) == before


def test_changing_only_the_case_of_the_user_name_keeps_the_claim(ledger: Ledger) -> None:
    context = context_for(ledger)
    written = ledger.create_user(context, NewUser(attributes=bjensen("bjensen@example.com")))
    before = head(ledger)
    ledger.update_user(context, written.id, replace_with(bjensen("BJensen@example.com")))
    [event] = stored(ledger, before)
    assert event.changes == {"userName": "BJensen@example.com"}


def test_user_names_are_unique_per_organization_only(ledger: Ledger) -> None:
    acme, globex = context_for(ledger, "acme"), context_for(ledger, "globex")
    first = ledger.create_user(acme, NewUser(attributes=bjensen()))
    second = ledger.create_user(globex, NewUser(attributes=bjensen()))
    assert first.id != second.id
    assert [
        (u.org_id, u.attributes["userName"])
        for u in map(partial(loaded, ledger), (first.id, second.id))
    ] == [
        (acme.org_id, "bjensen@example.com"),
        (globex.org_id, "bjensen@example.com"),
    ]
    with pytest.raises(UserNameTaken):  # within one organization it is taken
        ledger.create_user(globex, NewUser(attributes=bjensen("BJensen@Example.com")))


def test_another_organizations_user_is_not_found(ledger: Ledger) -> None:
    written = ledger.create_user(context_for(ledger, "acme"), NewUser(attributes=bjensen()))
    globex = context_for(ledger, "globex")
    with pytest.raises(UserNotFound):
        ledger.update_user(globex, written.id, replace_with(bjensen()))
    with pytest.raises(UserNotFound):
        ledger.delete_user(globex, written.id)


def test_concurrent_creates_of_one_user_name_yield_exactly_one_user(ledger: Ledger) -> None:
    context = context_for(ledger)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def create(n: int) -> None:
        barrier.wait()
        try:
            ledger.create_user(context, NewUser(attributes=bjensen(f"Same.{'X' * (n % 2)}")))
        except UserNameTaken:
            outcomes.append("taken")
        else:
            outcomes.append("created")

    # Names "Same." and "Same.X" alternate: exactly one create of each may win.
    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] * 2 + ["taken"] * 6
    created = [e for e in stored(ledger) if type(e) is User.UserCreated]
    assert sorted(e.attributes["userName"] for e in created) == ["Same.", "Same.X"]


def test_concurrent_edits_of_one_user_lose_no_update(ledger: Ledger) -> None:
    context = context_for(ledger)
    written = ledger.create_user(context, NewUser(attributes=bjensen()))
    barrier = threading.Barrier(6)

    def add_email(n: int) -> None:
        def edit(state: UserState) -> UserReplacement:
            emails = [*state.attributes.get("emails", []), {"value": f"{n}@example.com"}]
            return UserReplacement(attributes={**state.attributes, "emails": emails})

        barrier.wait()
        ledger.update_user(context, written.id, edit)

    threads = [threading.Thread(target=add_email, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    user = loaded(ledger, written.id)
    assert sorted(e["value"] for e in user.attributes["emails"]) == [
        f"{n}@example.com" for n in range(6)
    ]
    assert user.version == 7


def test_password_is_stored_only_as_a_salted_hash(ledger: Ledger) -> None:
    context = context_for(ledger)
    password = "correct horse battery staple"
    written = ledger.create_user(context, NewUser(attributes=bjensen(), password=password))
    other = ledger.create_user(
        context, NewUser(attributes=bjensen("other@example.com"), password=password)
    )
    hashes = [e.password_hash for e in stored(ledger) if type(e) is User.PasswordChanged]
    assert len(hashes) == 2
    assert hashes[0] != hashes[1]  # salted
    assert all(h.startswith("scrypt$16384$8$1$") for h in hashes)
    assert written.version == other.version == 2
    raw = all_stored(ledger)
    assert password.encode() not in raw


def test_setting_the_same_password_again_records_nothing(ledger: Ledger) -> None:
    context = context_for(ledger)
    written = ledger.create_user(context, NewUser(attributes=bjensen(), password="s3cret-1"))
    before = head(ledger)
    ledger.update_user(context, written.id, replace_with(bjensen(), password="s3cret-1"))
    assert head(ledger) == before
    ledger.update_user(context, written.id, replace_with(bjensen(), password="s3cret-2"))
    assert [type(e) for e in stored(ledger, before)] == [User.PasswordChanged]


def test_issuing_a_token_creates_the_organization_once_and_stores_no_secret(
    ledger: Ledger,
) -> None:
    first = issue(ledger, org="acme")
    second = issue(ledger, org="ACME")
    events = stored(ledger)
    assert [type(e) for e in events] == [
        Organization.OrganizationCreated,
        Token.TokenIssued,
        Token.TokenIssued,
    ]
    issued = events[1]
    assert issued.org_slug == "acme"
    assert issued.name == "Okta"
    assert issued.expires_at is None
    assert issued.context.actor == Actor(kind="operator", id="tests", name="tester")
    raw = all_stored(ledger)
    for token in (first.token, second.token):
        secret = parse_token(token).secret
        assert secret.encode() not in raw


def test_authenticate_returns_the_tokens_organization_and_actor(ledger: Ledger) -> None:
    issued = issue(ledger, org="acme", name="Okta prod")
    principal = ledger.authenticate(issued.token, datetime.now(UTC))
    assert principal.org_id == ledger.organization_id("acme")
    assert principal.actor == Actor(
        kind="token", id=str(issued.id), name="Okta prod", issued_by="operator:tester"
    )
    assert principal.scopes == ("scim",)


def test_user_ids_are_uuids(ledger: Ledger) -> None:
    written = ledger.create_user(context_for(ledger), NewUser(attributes=bjensen()))
    assert isinstance(written.id, UUID)


def test_a_user_created_with_a_password_was_never_modified(ledger: Ledger) -> None:
    written = ledger.create_user(context_for(ledger), NewUser(bjensen(), password="s3cret!"))
    user = loaded(ledger, written.id)
    assert user.version == 2
    assert user.modified_on == user.created_on


def test_a_create_takes_a_name_a_deleted_or_renamed_user_gave_up(ledger: Ledger) -> None:
    """A create claims its name without reading the index first (assume_new); a name that
    was used before fails that first attempt on the index's version, and the next attempt
    reclaims it: the outcome is the same as for a name never used."""
    context = context_for(ledger)
    first = ledger.create_user(context, NewUser(attributes=bjensen(), active=True))
    ledger.delete_user(context, first.id)
    again = ledger.create_user(context, NewUser(attributes=bjensen(), active=True))
    index: Aggregate = ledger.repository.get(
        ledger.name_index_id(context.org_id, "userName", "bjensen@example.com")
    )
    assert isinstance(index, NameIndex)
    assert (index.owner_id, index.version) == (again.id, 3)  # claimed, released, reclaimed
    ledger.update_user(context, again.id, replace_with(bjensen("babs@example.com")))
    third = ledger.create_user(
        context, NewUser(attributes=bjensen("BJensen@Example.com"), active=True)
    )
    index = ledger.repository.get(index.id)
    assert isinstance(index, NameIndex)
    assert (index.owner_id, index.version) == (third.id, 5)
    with pytest.raises(UserNameTaken):
        ledger.create_user(context, NewUser(attributes=bjensen("babs@example.com"), active=True))
    assert [user.id for user in (loaded(ledger, again.id), loaded(ledger, third.id))] == [
        again.id,
        third.id,
    ]


def add_emails_at_once(
    ledgers: list[Ledger], context: CommandContext, user_id: UUID, writers: int, edits: int
) -> list[BaseException]:
    """`writers` threads, started together, each adding `edits` emails to the user one
    update at a time, through the ledgers in turn; the exceptions they met."""
    barrier = threading.Barrier(writers)
    failures: list[BaseException] = []

    def add_emails(n: int) -> None:
        barrier.wait()
        for k in range(edits):

            def edit(state: UserState, value: str = f"{n}-{k}@example.com") -> UserReplacement:
                emails = [*state.attributes.get("emails", []), {"value": value}]
                return UserReplacement(attributes={**state.attributes, "emails": emails})

            try:
                ledgers[n % len(ledgers)].update_user(context, user_id, edit)
            except Exception as exc:
                failures.append(exc)

    threads = [threading.Thread(target=add_emails, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return failures


def test_many_concurrent_edits_of_one_user_in_one_process_all_succeed(ledger: Ledger) -> None:
    """Within a process, writers to one resource take turns instead of racing: 24 at once
    used to exhaust their retries (ConcurrentModification, a 409 to Okta)."""
    context = context_for(ledger)
    written = ledger.create_user(context, NewUser(attributes=bjensen()))
    writers, edits = 24, 4
    assert add_emails_at_once([ledger], context, written.id, writers, edits) == []
    user = loaded(ledger, written.id)
    assert len(user.attributes["emails"]) == writers * edits
    assert user.version == 1 + writers * edits


def test_concurrent_edits_of_one_user_from_two_processes_all_succeed(
    postgres: DatabaseURL,
) -> None:
    """Two ledgers on one PostgreSQL database, as two server processes have: once they hear
    of each other, their writers to one resource take turns too (an advisory lock per
    resource). Racing, the ledger that kept writing starved the other's writers:
    ConcurrentModification after 8 attempts."""
    ledgers = [Ledger(postgres), Ledger(postgres)]
    listeners = [LogListener(ledger) for ledger in ledgers]  # as each server has
    for listener in listeners:
        listener.start()
        assert listener.connected.wait(10)
    try:
        context = context_for(ledgers[0])
        written = ledgers[0].create_user(context, NewUser(attributes=bjensen()))
        ledgers[1].create_user(context, NewUser(attributes=bjensen("other@example.com")))
        # Each hears the other's append: from now on they take turns with each other.
        deadline = time.monotonic() + 5
        while not all(ledger.turns.shared for ledger in ledgers):
            assert time.monotonic() < deadline, "the ledgers never heard of each other"
            time.sleep(0.01)
        writers, edits = 16, 5
        assert add_emails_at_once(ledgers, context, written.id, writers, edits) == []
        user = loaded(ledgers[1], written.id)
        assert len(user.attributes["emails"]) == writers * edits
        assert user.version == 1 + writers * edits
    finally:
        for listener in listeners:
            listener.stop()
        for ledger in ledgers:
            ledger.close()
