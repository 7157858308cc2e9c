"""The SCIM read model written in the events' own transaction (projections.inline): exactly
once, with what other processes wrote without it, and left to the follower when it cannot."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import GroupUpdate, NewGroup, NewUser, UserReplacement
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.groups import Group
from scimledger.ledger.names import NameIndex
from scimledger.ledger.sealing import SEALED
from scimledger.ledger.transcoding import LEDGER_TRANSCODINGS
from scimledger.ledger.users import User
from scimledger.projections import inline, scim
from scimledger.projections.directory import ScimDirectory
from scimledger.projections.inline import InlineScim
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from tests.conftest import issue
from tests.integration.test_rebuild import TABLES_OF, build_by_event, dump


def acme(ledger: Ledger) -> CommandContext:
    if ledger.organization_id("acme") is None:
        issue(ledger)
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    return CommandContext(org_id, Actor(kind="token", id="t", name="Okta"), RequestInfo("r"))


def user(n: int) -> dict[str, Any]:
    return {"userName": f"user{n}@example.com", "displayName": f"User {n}"}


def names(ledger: Ledger) -> list[str]:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute("SELECT user_name_norm FROM scim_users ORDER BY seq")
        return [str(row["user_name_norm"]) for row in cursor.fetchall()]


@pytest.fixture
def inlined(ledger: Ledger) -> Runner:
    """The ledger with the SCIM read model inline; its runner never catches up by itself."""
    runner = Runner(ledger, ScimProjection())
    runner.run_once()
    ledger.project_inline(InlineScim(runner))
    return runner


def test_a_write_is_in_the_read_model_when_it_returns(ledger: Ledger, inlined: Runner) -> None:
    context = acme(ledger)
    written = ledger.create_user(context, NewUser(attributes=user(1)))
    head = ledger.recorder.max_notification_id()
    assert written.position == head
    assert inlined.position == head  # a wait for it returns at once
    assert inlined.stored_position() == head
    assert names(ledger) == ["user1@example.com"]
    ledger.update_user(
        context, written.id, lambda s: UserReplacement({**s.attributes, "title": "CTO"}, False)
    )
    with SQL(ledger).transaction(commit=False) as cursor:
        row = scim.get_user(cursor, context.org_id, str(written.id))
    assert row is not None
    assert (row.version, row.active) == (3, False)
    assert inlined.stored_position() == ledger.recorder.max_notification_id()


@pytest.fixture
def plain(database_url: str) -> Iterator[Ledger]:
    """Another process's ledger on the same database, without the projection (a CLI's)."""
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        yield ledger
    finally:
        ledger.close()


def test_events_written_without_it_are_applied_first(
    ledger: Ledger, inlined: Runner, plain: Ledger
) -> None:
    """Another process wrote users: the next inline write applies them, in log order,
    before its own."""
    context = acme(plain)
    for n in range(3):
        plain.create_user(context, NewUser(attributes=user(n)))
    assert names(ledger) == []
    written = ledger.create_user(context, NewUser(attributes=user(3)))
    assert names(ledger) == [f"user{n}@example.com" for n in range(4)]
    assert inlined.stored_position() == written.position


def test_a_long_gap_is_left_to_the_follower(
    ledger: Ledger, inlined: Runner, plain: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "MAX_GAP", 2)
    ledger.project_inline(InlineScim(inlined))  # built with the shorter gap
    context = acme(plain)
    before = inlined.stored_position()
    for n in range(3):
        plain.create_user(context, NewUser(attributes=user(n)))
    written = ledger.create_user(context, NewUser(attributes=user(3)))
    assert names(ledger) == []  # nothing applied: the write stands
    assert inlined.stored_position() == before
    assert written.position is not None
    inlined.wait_for(written.position)  # the follower's way, as before
    assert names(ledger) == [f"user{n}@example.com" for n in range(4)]
    assert inlined.stored_position() == written.position


def test_without_its_tables_a_write_stands_and_nothing_is_applied(ledger: Ledger) -> None:
    runner = Runner(ledger, ScimProjection())  # tables never created
    ledger.project_inline(InlineScim(runner))
    context = acme(ledger)
    written = ledger.create_user(context, NewUser(attributes=user(1)))
    assert written.position == ledger.recorder.max_notification_id()
    assert runner.position == 0
    runner.run_once()  # set up later: built from the log
    assert names(ledger) == ["user1@example.com"]


def test_concurrent_writers_and_a_follower_apply_each_event_once(
    ledger: Ledger, inlined: Runner
) -> None:
    """Writers in threads (group commit batches them), a follower catching up meanwhile,
    and a second process's ledger without the projection: the read model ends as a build of
    the whole log one event at a time."""
    context = acme(ledger)
    other = Ledger(ledger.database)
    stop = threading.Event()

    failed: list[BaseException] = []

    def follow() -> None:
        try:
            while not stop.is_set():
                inlined.catch_up()
        except BaseException as exc:
            failed.append(exc)

    def write(first: int) -> None:
        try:
            for n in range(first, first + 15):
                written = ledger.create_user(context, NewUser(attributes=user(n)))
                ledger.update_user(
                    context, written.id, lambda s: UserReplacement({**s.attributes, "title": "x"})
                )
        except BaseException as exc:
            failed.append(exc)

    follower = threading.Thread(target=follow)
    writers = [threading.Thread(target=write, args=(100 * t,)) for t in range(4)]
    try:
        follower.start()
        for thread in writers:
            thread.start()
        for n in range(10):
            other.create_user(context, NewUser(attributes=user(1000 + n)))
        for thread in writers:
            thread.join()
        stop.set()
        follower.join()
        inlined.catch_up()
        group = ledger.create_group(
            context, NewGroup("Everyone", members=()), ScimDirectory(SQL(ledger), inlined.catch_up)
        )
        ledger.update_group(
            context,
            group.id,
            GroupUpdate(add=set(_user_ids(ledger))),
            ScimDirectory(SQL(ledger), inlined.catch_up),
        )
    finally:
        other.close()
    assert failed == []
    live = dump(ledger, tables=TABLES_OF[scim.NAME])
    assert len(live["scim_users"]) == 70
    assert live == build_by_event(ledger, [scim.NAME])


def _user_ids(ledger: Ledger) -> list[str]:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute("SELECT id FROM scim_users ORDER BY seq")
        return [str(row["id"]) for row in cursor.fetchall()]


def test_the_log_stays_readable_by_the_library_alone(ledger: Ledger, inlined: Runner) -> None:
    """What the ledger's recorders store, a plain eventsourcing application reads back: its
    own recorder and mapper, every aggregate reconstructed as the ledger has it."""
    context = acme(ledger)
    directory = ScimDirectory(SQL(ledger), inlined.catch_up)
    users = [ledger.create_user(context, NewUser(attributes=user(n))) for n in range(3)]
    ledger.update_user(
        context, users[0].id, lambda s: UserReplacement({**s.attributes, "title": "CTO"})
    )
    group = ledger.create_group(context, NewGroup("Team", members=(users[1].id,)), directory)
    ledger.delete_user(context, users[2].id)
    plain = Plain(env={**ledger.database.eventsourcing_env(), **LIBRARY_OWN})
    try:
        assert "scimledger" not in type(plain.recorder).__module__
        notifications = plain.recorder.select_notifications(start=1, limit=1000)
        assert [n.id for n in notifications] == [
            n.id for n in ledger.recorder.select_notifications(start=1, limit=1000)
        ]
        seen = {UUID(str(n.originator_id)) for n in notifications}
        for originator_id in seen:
            mine: Aggregate = ledger.repository.get(originator_id)
            theirs: Aggregate = plain.repository.get(originator_id)
            assert type(theirs) is type(mine)
            assert_alike(theirs, mine)
        assert isinstance(plain.repository.get(group.id), Group)
        assert isinstance(plain.repository.get(users[0].id), User)
        assert any(isinstance(plain.repository.get(i), NameIndex) for i in seen)
    finally:
        plain.close()


def test_a_log_written_before_compression_reads_whole_by_the_ledger_and_the_library(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events stored uncompressed (before ledger.compression) and compressed ones, in one
    log: the ledger and a plain eventsourcing application reconstruct every aggregate."""
    url = DatabaseURL.parse(database_url)
    with_compression = DatabaseURL.eventsourcing_env
    monkeypatch.setattr(
        DatabaseURL,
        "eventsourcing_env",
        lambda self: {k: v for k, v in with_compression(self).items() if k != "COMPRESSOR_TOPIC"},
    )
    before = Ledger(url)
    old = [before.create_user(acme(before), NewUser(attributes=user(n))) for n in range(2)]
    before.close()
    monkeypatch.undo()
    ledger = Ledger(url)
    plain = Plain(env={**url.eventsourcing_env(), **LIBRARY_OWN})
    try:
        context = acme(ledger)
        new = ledger.create_user(context, NewUser(attributes=user(2)))
        ledger.update_user(
            context, old[0].id, lambda s: UserReplacement({**s.attributes, "title": "CTO"})
        )
        stored = ledger.recorder.select_notifications(start=1, limit=1000)
        compressed = [not n.state.startswith(b"{") for n in stored]
        assert compressed == [False] * (len(compressed) - 3) + [True] * 3
        for written in (*old, new):
            mine: Aggregate = ledger.repository.get(written.id)
            theirs: Aggregate = plain.repository.get(written.id)
            assert_alike(theirs, mine)
        assert ledger.repository.get(old[0].id).attributes["title"] == "CTO"
    finally:
        plain.close()
        ledger.close()


# A user's state made of their sealed events' personal fields (ledger.sealing).
SEALED_STATE = ("attributes", "password_hash")


def assert_alike(theirs: Aggregate, mine: Aggregate) -> None:
    """The library reconstructs the aggregate as the ledger does, but for a user's personal
    data, which it reads as stored: sealed, not one value in clear."""
    if not isinstance(mine, User):
        assert vars(theirs) == vars(mine)
        return
    assert {k: v for k, v in vars(theirs).items() if k not in SEALED_STATE} == {
        k: v for k, v in vars(mine).items() if k not in SEALED_STATE
    }
    assert SEALED in theirs.attributes  # type: ignore[attr-defined]
    for value in mine.attributes.values():
        assert str(value) not in str(vars(theirs))


# The library's own recorder (the default of its persistence module), on the ledger's tables.
LIBRARY_OWN = {"APPLICATION_RECORDER_TOPIC": "", "CREATE_TABLE": "n"}


class Plain(Application[UUID]):
    """An eventsourcing application of the library's own: its recorder, mapper and JSON
    transcoder, with the value types the ledger's events carry registered the library's way."""

    name = "Ledger"  # the same stored events table

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in LEDGER_TRANSCODINGS:
            transcoder.register(transcoding)


def test_on_postgresql_a_writes_check_reads_only_the_events_it_missed(
    postgres: DatabaseURL,
) -> None:
    """The check runs as a prepared statement, whose generic plan knows neither bound: a join
    on the tracking position read the log's whole index up to the write (13 ms at 12,000
    events). Its plan must seek both bounds on the index."""
    ledger = Ledger(postgres)
    try:
        runner = Runner(ledger, ScimProjection())
        runner.run_once()
        check = InlineScim(runner)._pending
        numbered = check
        for n in range(1, check.count("?") + 1):
            numbered = numbered.replace("?", f"${n}", 1)
        with SQL(ledger).transaction(commit=False) as cursor:
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE pending (text, bigint, bigint, text, bigint) AS {numbered}")
            cursor.execute(f"EXPLAIN EXECUTE pending ('{scim.NAME}', 10, 10, '{scim.NAME}', 10)")
            plan = "\n".join(str(row["QUERY PLAN"]) for row in cursor.fetchall())
            cursor.execute("DEALLOCATE pending")
    finally:
        ledger.close()
    assert "Join Filter" not in plan, plan
    assert re.search(
        r"Index Cond: \(\(notification_id > \$\d+\) AND \(notification_id < \$\d+\)\)", plan
    ), plan
