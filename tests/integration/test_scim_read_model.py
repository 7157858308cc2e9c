"""The SCIM read model on real databases: built from events, exactly once, resumable."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewGroup, NewUser, UserReplacement
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.projections import scim
from scimledger.projections.filters import parse_filter
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from tests.conftest import issue
from tests.polling import PollingRunner


def acme(ledger: Ledger) -> CommandContext:
    if ledger.organization_id("acme") is None:
        issue(ledger)
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    return CommandContext(
        org_id=org_id,
        actor=Actor(kind="token", id="t", name="Okta"),
        request=RequestInfo(request_id="r"),
    )


def rows(ledger: Ledger) -> list[dict[str, Any]]:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT id, user_name_norm, external_id, active, version, attributes"
            " FROM scim_users ORDER BY seq"
        )
        return [
            {**dict(row), "active": bool(row["active"]), "version": int(row["version"])}
            for row in cursor.fetchall()
        ]


def user(n: int) -> dict[str, Any]:
    return {"userName": f"User{n}@Example.com", "externalId": f"ext-{n}"}


def test_read_model_follows_creates_updates_deactivations_and_deletes(
    services: Services,
) -> None:
    ledger = services.ledger
    context = acme(ledger)
    kept = ledger.create_user(context, NewUser(attributes=user(1)))
    gone = ledger.create_user(context, NewUser(attributes=user(2)))
    ledger.update_user(
        context,
        kept.id,
        lambda s: UserReplacement(attributes={**s.attributes, "title": "CTO"}, active=False),
    )
    last = ledger.delete_user(context, gone.id)
    services.scim.wait_for(last.position)
    assert rows(ledger) == [
        {
            "id": str(kept.id),
            "user_name_norm": "user1@example.com",
            "external_id": "ext-1",
            "active": False,
            "version": 3,
            "attributes": '{"userName":"User1@Example.com","externalId":"ext-1","title":"CTO"}',
        }
    ]
    with services.sql.transaction(commit=False) as cursor:
        found = scim.get_user(cursor, context.org_id, str(kept.id))
    assert found is not None
    assert (found.active, found.version) == (False, 3)


def test_a_restarted_runner_resumes_from_its_stored_position(database_url: str) -> None:
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        context = acme(ledger)
        runner = PollingRunner(ledger, ScimProjection())
        runner.start()
        ledger.create_user(context, NewUser(attributes=user(1)))
        runner.catch_up()
        runner.stop()
        ledger.create_user(context, NewUser(attributes=user(2)))
        restarted = PollingRunner(ledger, ScimProjection())
        restarted.start()
        restarted.stop()
        assert [r["user_name_norm"] for r in rows(ledger)] == [
            "user1@example.com",
            "user2@example.com",
        ]
        assert (
            restarted.position
            == restarted.stored_position()
            == ledger.recorder.max_notification_id()
        )
    finally:
        ledger.close()


def test_two_runners_on_one_database_apply_each_event_exactly_once(database_url: str) -> None:
    # Two processes' worth of ledger and runner, sharing one database.
    ledgers = [Ledger(DatabaseURL.parse(database_url)) for _ in range(2)]
    try:
        context = acme(ledgers[0])
        runners = [Runner(ledger, ScimProjection(), batch_size=7) for ledger in ledgers]
        for runner in runners:
            runner.create_tables()
        for n in range(60):
            ledgers[n % 2].create_user(context, NewUser(attributes=user(n)))
        threads = [threading.Thread(target=runner.catch_up) for runner in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        head = ledgers[0].recorder.max_notification_id()
        for runner in runners:
            runner.catch_up()
            assert runner.position == head
        assert sorted(r["user_name_norm"] for r in rows(ledgers[0])) == sorted(
            f"user{n}@example.com" for n in range(60)
        )
    finally:
        for ledger in ledgers:
            ledger.close()


def test_wait_for_returns_once_the_write_is_readable(services: Services) -> None:
    context = acme(services.ledger)
    written = services.ledger.create_user(context, NewUser(attributes=user(7)))
    services.scim.wait_for(written.position)
    runner = services.scim
    assert isinstance(runner, Runner)  # the services fixture's (tests/conftest.py)
    assert runner.position >= (written.position or 0)
    with services.sql.transaction(commit=False) as cursor:
        assert scim.get_user(cursor, context.org_id, str(written.id)) is not None


@pytest.mark.no_read_models
def test_a_new_read_model_version_is_rebuilt_from_the_log(database_url: str) -> None:
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        context = acme(ledger)
        runner = PollingRunner(ledger, ScimProjection())
        runner.start()
        ledger.create_user(context, NewUser(attributes=user(1)))
        runner.catch_up()
        runner.stop()
        # As an older version would leave it: its rows, tracked under its own name. Replaying
        # into those tables without dropping them would insert user 1 twice.
        with SQL(ledger).transaction(commit=True) as cursor:
            cursor.execute("UPDATE projection_tracking SET name = 'scim_read_model_v0'")
        upgraded = PollingRunner(ledger, ScimProjection())
        upgraded.start()
        upgraded.stop()
        assert [r["user_name_norm"] for r in rows(ledger)] == ["user1@example.com"]
    finally:
        ledger.close()


def test_a_groups_members_are_read_a_page_at_a_time_and_counted(services: Services) -> None:
    ledger = services.ledger
    context = acme(ledger)
    ids = sorted(str(ledger.create_user(context, NewUser(attributes=user(n))).id) for n in range(7))
    everyone = ledger.create_group(context, NewGroup("Everyone", members=ids), services.directory)
    empty = ledger.create_group(context, NewGroup("Nobody"), services.directory)
    services.scim.wait_for(empty.position)
    group_id = str(everyone.id)

    def members(after: str | None = None, before: str | None = None) -> list[str]:
        with services.sql.transaction(commit=False) as cursor:
            found = scim.group_members(cursor, group_id, after=after, before=before, limit=3)
        return [row.id for row in found]

    assert members() == ids[:3]
    assert members(after=ids[2]) == ids[3:6]
    assert members(after=ids[5]) == ids[6:]
    assert members(before=ids[5]) == ids[2:5]
    assert members(before=ids[1]) == ids[:1]
    with services.sql.transaction(commit=False) as cursor:
        counts = scim.member_counts(cursor, [group_id, str(empty.id)])
    assert counts == {group_id: 7, str(empty.id): 0}


@pytest.mark.sqlite_only
def test_a_lookup_by_username_reads_its_index_whatever_the_number_of_users(
    services: Services,
) -> None:
    """SQLite's planner read the (org_id, seq) index in order and tested `userName eq` on
    every user of the organization; a lookup must cost the same with 40 or 400 users."""
    ledger = services.ledger
    context = acme(ledger)
    sql = services.sql

    def work(name: str) -> int:
        """SQLite virtual machine steps (in hundreds) of one filtered list."""
        steps = [0]
        where = parse_filter(f'userName eq "{name}"')
        with sql.read() as cursor:
            raw = cursor._cursor.sqlite_cursor.connection  # the sqlite3 connection
            raw.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 100)
            try:
                total, rows = scim.list_users(cursor, context.org_id, scim.Query(where=where))
            finally:
                raw.set_progress_handler(None, 0)
        assert (total, [row.attributes["userName"] for row in rows]) == (1, [name])
        return steps[0]

    for n in range(40):
        ledger.create_user(context, NewUser(attributes=user(n)))
    few = work("User7@Example.com")
    for n in range(40, 400):
        ledger.create_user(context, NewUser(attributes=user(n)))
    assert work("User7@Example.com") <= few + 1
