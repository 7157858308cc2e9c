"""Group commit under the Ledger, on both databases: bursts of concurrent commands keep
every outcome exact (one user per create, one owner per userName, no lost update), and saves
queued behind a write really are written together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Aggregate

from scimledger.ledger import application
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser, UserReplacement, UserState, Written
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.errors import UserNameTaken
from scimledger.ledger.names import NameIndex, normalize_name
from scimledger.ledger.users import User
from tests.conftest import issue
from tests.scim import CORE_USER

THREADS = 16
TIMEOUT = 8.0  # seconds: a thread still running after this is a hang


def loaded(ledger: Ledger, user_id: UUID) -> User:
    """The user as the ledger loads it from its events."""
    user: Aggregate = ledger.repository.get(user_id)
    assert isinstance(user, User)
    return user


def org_context(ledger: Ledger) -> CommandContext:
    issue(ledger)  # creates the organization "acme"
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    return CommandContext(
        org_id, Actor(kind="token", id="t", name="Okta"), RequestInfo("r", "203.0.113.7", "Okta")
    )


def new_user(user_name: str) -> NewUser:
    return NewUser(
        attributes={"schemas": [CORE_USER], "userName": user_name}, active=True, password=None
    )


def head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def stored(ledger: Ledger, after: int) -> list[Any]:
    """Every event recorded after log position `after`, decoded."""
    notifications = ledger.recorder.select_notifications(start=after + 1, limit=10_000)
    return [ledger.mapper.to_domain_event(n) for n in notifications]


def at(ledger: Ledger, position: int) -> Any:
    [notification] = ledger.recorder.select_notifications(start=position, limit=1)
    assert notification.id == position
    return ledger.mapper.to_domain_event(notification)


def burst(calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs the calls at once, a thread each; what each returned or raised, in call order."""
    outcomes: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(n: int) -> None:
        try:
            barrier.wait(TIMEOUT)
            outcomes[n] = calls[n]()
        except Exception as exc:
            outcomes[n] = exc

    threads = [
        threading.Thread(target=run, args=(n,), daemon=True, name=f"burst-{n}")
        for n in range(len(calls))
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), f"{thread.name} never finished: a deadlock"
    return outcomes


def creates(ledger: Ledger, context: CommandContext, names: list[str]) -> list[Any]:
    def create(name: str) -> Written:
        return ledger.create_user(context, new_user(name))

    return burst([partial(create, name) for name in names])


def assert_created(
    ledger: Ledger, context: CommandContext, written: Written, user_name: str
) -> None:
    """The user exists with exactly its creation event, and the write's position is its
    own: the userName claim, right after the user's creation (one save, contiguous)."""
    assert written.version == 1
    assert written.position is not None
    user = loaded(ledger, written.id)
    assert user.user_name == user_name
    assert user.version == 1
    assert [type(e) for e in ledger.events.get(written.id)] == [User.UserCreated]
    claim = at(ledger, written.position)
    assert type(claim) is NameIndex.NameClaimed
    assert claim.originator_id == ledger.name_index_id(context.org_id, "userName", user_name)
    assert claim.owner_id == written.id
    creation = at(ledger, written.position - 1)
    assert type(creation) is User.UserCreated
    assert creation.originator_id == written.id


def owner_of(ledger: Ledger, context: CommandContext, user_name: str) -> UUID | None:
    index: Aggregate = ledger.repository.get(
        ledger.name_index_id(context.org_id, "userName", user_name)
    )
    assert isinstance(index, NameIndex)
    return index.owner_id


class Gate:
    """Wraps the ledger's group commit write: counts the events of every write, and holds
    the first write until `waiting` other saves have queued behind it, so that a burst is
    batched whatever the machine's scheduling."""

    def __init__(self, ledger: Ledger, waiting: int) -> None:
        self.committer = ledger._group_commit
        self.write = self.committer._record
        self.waiting = waiting
        self.lock = threading.Lock()
        self.calls: list[int] = []  # events per write, in order
        self.reached: bool | None = None

    def queued(self) -> int:
        with self.committer._lock:
            return len(self.committer._queue)

    def __call__(self, processing_event: ProcessingEvent[UUID]) -> Any:
        with self.lock:
            first = not self.calls
            self.calls.append(len(processing_event.events))
        if first:
            deadline = time.monotonic() + TIMEOUT / 2
            while self.queued() < self.waiting and time.monotonic() < deadline:
                time.sleep(0.002)
            self.reached = self.queued() == self.waiting
        return self.write(processing_event)


def hold_first_write(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Gate:
    """The ledger's first write held until the 15 other saves of a burst queue behind it."""
    gate = Gate(ledger, waiting=THREADS - 1)
    monkeypatch.setattr(ledger._group_commit, "_record", gate)
    return gate


def test_concurrent_creates_each_write_one_user_with_its_own_position(ledger: Ledger) -> None:
    context = org_context(ledger)
    before = head(ledger)
    names = [f"user{n}@example.com" for n in range(THREADS)]
    outcomes = creates(ledger, context, names)
    assert all(isinstance(o, Written) for o in outcomes), outcomes
    assert len({o.id for o in outcomes}) == THREADS
    assert len({o.position for o in outcomes}) == THREADS
    for written, name in zip(outcomes, names, strict=True):
        assert_created(ledger, context, written, name)
        assert owner_of(ledger, context, name) == written.id
    events = stored(ledger, before)
    assert len(events) == 2 * THREADS
    created = [e for e in events if type(e) is User.UserCreated]
    assert sorted(e.originator_id for e in created) == sorted(o.id for o in outcomes)
    assert max(o.position for o in outcomes) == head(ledger)


def test_concurrent_creates_of_one_user_name_make_exactly_one_user(ledger: Ledger) -> None:
    context = org_context(ledger)
    before = head(ledger)
    outcomes = creates(ledger, context, ["bjensen@example.com"] * THREADS)
    won = [o for o in outcomes if isinstance(o, Written)]
    assert len(won) == 1, outcomes
    assert sum(isinstance(o, UserNameTaken) for o in outcomes) == THREADS - 1, outcomes
    assert_created(ledger, context, won[0], "bjensen@example.com")
    assert owner_of(ledger, context, "bjensen@example.com") == won[0].id
    # Nothing of the losers was written.
    assert [type(e) for e in stored(ledger, before)] == [User.UserCreated, NameIndex.NameClaimed]


def test_a_burst_of_unique_and_duplicated_names_creates_one_user_per_name(
    ledger: Ledger,
) -> None:
    context = org_context(ledger)
    before = head(ledger)
    unique = [f"solo{n}@example.com" for n in range(4)]
    # userName is caseExact=false: case variants are the same name.
    duplicated = {
        "dup.a@example.com": ["dup.a@example.com", "Dup.A@example.com", "DUP.A@example.com"] * 2,
        "dup.b@example.com": ["dup.b@example.com", "Dup.B@Example.com"] * 2,
        "dup.c@example.com": ["dup.c@example.com"] * 2,
    }
    names = unique + [name for variants in duplicated.values() for name in variants]
    assert len(names) == THREADS
    names = names[::2] + names[1::2]  # interleaved: duplicates race each other and the rest
    outcomes = creates(ledger, context, names)
    won = {
        normalize_name(name): outcome
        for name, outcome in zip(names, outcomes, strict=True)
        if isinstance(outcome, Written)
    }
    assert sorted(won) == sorted(unique + list(duplicated))
    assert sum(isinstance(o, Written) for o in outcomes) == len(unique) + len(duplicated)
    taken = [o for o in outcomes if not isinstance(o, Written)]
    assert all(isinstance(o, UserNameTaken) for o in taken), taken
    assert len(taken) == THREADS - len(unique) - len(duplicated)
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, Written):
            assert_created(ledger, context, outcome, name)
            assert owner_of(ledger, context, name) == outcome.id
    created = [e for e in stored(ledger, before) if type(e) is User.UserCreated]
    assert sorted(normalize_name(e.attributes["userName"]) for e in created) == sorted(won)
    assert len(stored(ledger, before)) == 2 * len(won)


def test_concurrent_updates_of_one_user_lose_no_update(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A command's attempt fails only because another command's save of the user succeeded
    # in between, and each command succeeds once: n concurrent commands need n attempts.
    monkeypatch.setattr(application, "MAX_ATTEMPTS", THREADS)
    context = org_context(ledger)
    user_id = ledger.create_user(context, new_user("bjensen@example.com")).id

    def add_email(n: int) -> Written:
        def edit(state: UserState) -> UserReplacement:
            emails = [*state.attributes.get("emails", []), {"value": f"{n}@example.com"}]
            return UserReplacement(attributes={**state.attributes, "emails": emails})

        return ledger.update_user(context, user_id, edit)

    outcomes = burst([partial(add_email, n) for n in range(THREADS)])
    assert all(isinstance(o, Written) for o in outcomes), outcomes
    assert sorted(o.version for o in outcomes) == list(range(2, THREADS + 2))
    assert len({o.position for o in outcomes}) == THREADS
    user = loaded(ledger, user_id)
    assert user.version == THREADS + 1
    assert sorted(e["value"] for e in user.attributes["emails"]) == sorted(
        f"{n}@example.com" for n in range(THREADS)
    )
    # The history: each update added exactly one email to the previous list.
    events = list(ledger.events.get(user_id))
    assert [type(e) for e in events] == [User.UserCreated] + [User.ProfileUpdated] * THREADS
    assert [e.originator_version for e in events] == list(range(1, THREADS + 2))
    previous: list[dict[str, str]] = []
    added = []
    for event in events[1:]:
        assert isinstance(event, User.ProfileUpdated)
        assert set(event.changes) == {"emails"}
        emails = event.changes["emails"]
        assert emails[:-1] == previous
        added.append(emails[-1]["value"])
        previous = emails
    assert sorted(added) == sorted(f"{n}@example.com" for n in range(THREADS))
    # Each command's position is its own update's.
    for written in outcomes:
        event = at(ledger, written.position)
        assert (event.originator_id, event.originator_version) == (user_id, written.version)


def test_saves_queued_behind_a_write_are_written_in_one_transaction(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = org_context(ledger)
    gate = hold_first_write(ledger, monkeypatch)
    before = head(ledger)
    names = [f"user{n}@example.com" for n in range(THREADS)]
    outcomes = creates(ledger, context, names)
    assert gate.reached, f"only {gate.queued()} saves queued"
    assert all(isinstance(o, Written) for o in outcomes), outcomes
    # The first create alone, then the 15 others together: 2 transactions for 16 saves.
    assert gate.calls == [2, 2 * (THREADS - 1)]
    for written, name in zip(outcomes, names, strict=True):
        assert_created(ledger, context, written, name)
    positions = sorted(o.position for o in outcomes)
    assert positions == list(range(before + 2, before + 2 * THREADS + 1, 2))
    assert head(ledger) == before + 2 * THREADS


def test_the_data_keys_of_creates_written_together_are_each_stored(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a group commit's keys are inserted by the statement that inserts its
    events (ledger.recorders); on SQLite, beside them."""
    context = org_context(ledger)
    gate = hold_first_write(ledger, monkeypatch)
    ledger.keys.index_key()  # the index key's row, made with the first userName
    keys_before = ledger.keys.count()
    names = [f"sealed{n}@example.com" for n in range(THREADS)]
    outcomes = creates(ledger, context, names)
    assert gate.calls == [2, 2 * (THREADS - 1)]
    assert ledger.keys.count() == keys_before + THREADS
    for written, name in zip(outcomes, names, strict=True):
        ledger.keys.forget(written.id)  # read back from the table, not from memory
        assert loaded(ledger, written.id).user_name == name


def test_a_batch_of_conflicting_creates_fails_each_alone_and_reports_the_name_taken(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = org_context(ledger)
    gate = hold_first_write(ledger, monkeypatch)
    before = head(ledger)
    outcomes = creates(ledger, context, ["bjensen@example.com"] * THREADS)
    assert gate.reached, f"only {gate.queued()} saves queued"
    won = [o for o in outcomes if isinstance(o, Written)]
    assert len(won) == 1
    assert sum(isinstance(o, UserNameTaken) for o in outcomes) == THREADS - 1, outcomes
    # The first create; the batch of the 15 others, refused by the database; each of them
    # again alone, refused; then each finds the name taken and writes nothing more.
    assert gate.calls == [2, 2 * (THREADS - 1)] + [2] * (THREADS - 1)
    assert_created(ledger, context, won[0], "bjensen@example.com")
    assert [type(e) for e in stored(ledger, before)] == [User.UserCreated, NameIndex.NameClaimed]
