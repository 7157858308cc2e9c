"""Erasing a person (issue 21): their data key destroyed with the UserErased event, so that
every event of theirs reads `[erased]` where it held their data; the audit trail keeps its
entries with their values `[erased]`, and a rebuild ends with the same rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewGroup, NewUser, UserReplacement
from scimledger.ledger.context import CommandContext
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.errors import InvalidReason, UserIsActive, UserNotFound, UserWasErased
from scimledger.ledger.sealing import ERASED
from scimledger.ledger.users import User
from scimledger.projections import audit, chain
from scimledger.projections.audit import AuditProjection
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from tests.integration.test_ledger import context_for, head, loaded, stored
from tests.integration.test_rebuild import TABLES_OF, build_by_event, dump

ADA = {
    "userName": "ada@example.com",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada@example.com", "primary": True}],
    "title": "Analyst",
}


def keys_of(ledger: Ledger) -> set[str]:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute("SELECT owner_id FROM data_keys")
        return {str(row["owner_id"]) for row in cursor.fetchall()}


def deleted_ada(ledger: Ledger, context: CommandContext) -> UUID:
    user_id = ledger.create_user(context, NewUser(dict(ADA), password="s3cret-Passw0rd")).id
    ledger.update_user(
        context, user_id, lambda _state: UserReplacement({**ADA, "title": "Lead Analyst"})
    )
    ledger.delete_user(context, user_id)
    return user_id


def test_an_erased_users_events_read_erased_and_their_key_is_destroyed(ledger: Ledger) -> None:
    context = context_for(ledger)
    user_id = deleted_ada(ledger, context)
    kept = ledger.create_user(context, NewUser({"userName": "grace@example.com"})).id
    assert {str(user_id), str(kept)} <= keys_of(ledger)
    before = head(ledger)

    written = ledger.erase_user(context, user_id, "DSR-2026-0042")

    assert str(user_id) not in keys_of(ledger)
    assert str(kept) in keys_of(ledger)
    [erased] = stored(ledger, before)
    assert isinstance(erased, User.UserErased)
    assert (erased.originator_id, erased.reason, written.position) == (
        user_id,
        "DSR-2026-0042",
        before + 1,
    )
    events = [e for e in stored(ledger) if e.originator_id == user_id]
    created, password, updated = events[0], events[1], events[2]
    assert created.attributes == dict.fromkeys(ADA, ERASED)  # the names stay, not the values
    assert password.password_hash == ERASED
    assert updated.changes == {"title": ERASED}
    user = loaded(ledger, user_id)
    assert (user.deleted, user.erased, user.attributes["userName"]) == (True, True, ERASED)
    assert loaded(ledger, kept).attributes == {"userName": "grace@example.com"}


def test_an_erased_user_has_no_point_in_time_view(ledger: Ledger) -> None:
    context = context_for(ledger)
    user_id = deleted_ada(ledger, context)
    created_at = stored(ledger)[-4].timestamp  # UserCreated, before its password, update, deletion
    assert ledger.user_at(context.org_id, user_id, created_at) is not None
    ledger.erase_user(context, user_id, "DSR-1")
    with pytest.raises(UserWasErased, match=f"User {user_id} was erased at "):
        ledger.user_at(context.org_id, user_id, created_at)


def test_an_active_user_is_erased_only_when_forced_and_their_user_name_is_freed(
    ledger: Ledger,
) -> None:
    context = context_for(ledger)
    user_id = ledger.create_user(context, NewUser(dict(ADA))).id
    before = head(ledger)
    with pytest.raises(UserIsActive):
        ledger.erase_user(context, user_id, "DSR-1")
    assert head(ledger) == before

    ledger.erase_user(context, user_id, "DSR-1", force=True)

    kinds = [type(e).__name__ for e in stored(ledger, before)]
    assert sorted(kinds) == ["NameReleased", "UserDeleted", "UserErased"]
    again = ledger.create_user(context, NewUser(dict(ADA))).id  # the userName is free
    assert loaded(ledger, again).attributes["userName"] == "ada@example.com"


def test_a_deactivated_user_is_deleted_and_erased_at_once(ledger: Ledger) -> None:
    context = context_for(ledger)
    user_id = ledger.create_user(context, NewUser(dict(ADA), active=False)).id
    before = head(ledger)
    ledger.erase_user(context, user_id, "retention")
    kinds = sorted(type(e).__name__ for e in stored(ledger, before))
    assert kinds == ["NameReleased", "UserDeleted", "UserErased"]


def test_erasing_an_erased_user_again_records_nothing(ledger: Ledger) -> None:
    context = context_for(ledger)
    user_id = deleted_ada(ledger, context)
    ledger.erase_user(context, user_id, "DSR-1")
    before = head(ledger)
    written = ledger.erase_user(context, user_id, "DSR-1")
    assert (head(ledger), written.position) == (before, None)


def test_another_organizations_user_is_not_erased(ledger: Ledger) -> None:
    user_id = deleted_ada(ledger, context_for(ledger))
    globex = context_for(ledger, "globex")
    before = head(ledger)
    with pytest.raises(UserNotFound):
        ledger.erase_user(globex, user_id, "DSR-1")
    assert head(ledger) == before
    assert str(user_id) in keys_of(ledger)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("  ", "give the erasure's reason"),
        ("x" * 501, "at most 500 characters"),
        ("DSR\x1b[31m-1", "without control characters"),
        ("DSR\n-1", "without control characters"),
    ],
)
def test_an_erasures_reason_is_one_bounded_line(ledger: Ledger, reason: str, message: str) -> None:
    context = context_for(ledger)
    user_id = deleted_ada(ledger, context)
    before = head(ledger)
    with pytest.raises(InvalidReason, match=message):
        ledger.erase_user(context, user_id, reason)
    assert head(ledger) == before


def trail(ledger: Ledger, user_id: UUID) -> list[dict[str, Any]]:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT action, subject_name, subject_name_norm, changes, data, actor_name,"
            " client_address FROM audit_entries WHERE subject_id = ? ORDER BY position",
            (str(user_id),),
        )
        return [dict(row) for row in cursor.fetchall()]


def test_the_audit_trail_keeps_an_erased_users_entries_with_their_values_erased(
    ledger: Ledger, services: Services
) -> None:
    context = context_for(ledger)
    user_id = deleted_ada(ledger, context)
    services.audit.catch_up()  # the trail has their values, as it had before the erasure
    assert "Lovelace" in str(trail(ledger, user_id))

    ledger.erase_user(context, user_id, "DSR-2026-0042")
    services.audit.catch_up()

    entries = trail(ledger, user_id)
    assert [e["action"] for e in entries] == [
        "user.created",
        "user.password_changed",
        "user.updated",
        "user.deleted",
        "user.erased",
    ]
    assert {(e["subject_name"], e["subject_name_norm"], e["data"]) for e in entries} == {
        (ERASED, ERASED, None)
    }
    assert {(e["actor_name"], e["client_address"]) for e in entries} == {("Okta", "203.0.113.7")}
    changes = [audit._decode(e["changes"]) for e in entries]
    assert changes == [
        {
            "userName": {"before": None, "after": ERASED},
            "name": {"before": None, "after": ERASED},
            "emails": {"before": None, "after": ERASED},
            "title": {"before": None, "after": ERASED},
            "active": {"before": None, "after": True},
        },
        {"password": "changed"},
        {"title": {"before": ERASED, "after": ERASED}},
        {},
        {"reason": "DSR-2026-0042"},
    ]
    for value in ("Ada", "Lovelace", "ada@example.com", "Analyst"):
        assert value not in str(entries)
    # A rebuild reads the events erased: it ends with the same rows.
    live = dump(ledger, tables=TABLES_OF[audit.NAME])
    assert build_by_event(ledger, [audit.NAME]) == live


@pytest.mark.sqlite_only
def test_an_erased_users_key_leaves_no_trace_in_the_sqlite_file(ledger: Ledger) -> None:
    """Deleted rows stay in a SQLite file's free space unless it zeroes them
    (`secure_delete`): the wrapped key would still be there for whoever has the master key."""
    context = context_for(ledger)
    user_id = deleted_ada(ledger, context)
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute("SELECT wrapped FROM data_keys WHERE owner_id = ?", (str(user_id),))
        [row] = cursor.fetchall()
        wrapped = str(row["wrapped"]).encode()
    path = Path(ledger.database.path)

    def in_files() -> bool:
        with SQL(ledger).transaction(commit=True) as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        files = [path, Path(f"{path}-wal")]
        return any(wrapped in f.read_bytes() for f in files if f.exists())

    assert in_files()
    ledger.erase_user(context, user_id, "DSR-1")
    assert not in_files()
    with SQL(ledger).transaction(commit=False) as cursor:  # set, whatever SQLite's default
        cursor.execute("SELECT secure_delete FROM pragma_secure_delete")
        assert [row["secure_delete"] for row in cursor.fetchall()] == [1]


def test_after_an_erasure_the_chain_verifies_and_every_rebuild_gives_the_same_rows(
    ledger: Ledger, services: Services
) -> None:
    context = context_for(ledger)
    erased = deleted_ada(ledger, context)
    kept = ledger.create_user(context, NewUser({"userName": "grace@example.com"})).id
    group = ledger.create_group(context, NewGroup("Staff", members=[kept]), services.directory)
    assert group.position is not None
    chain.extend_and_verify(ledger)  # the chain covered the events before the erasure
    ledger.erase_user(context, erased, "DSR-1")
    services.scim.catch_up()
    services.audit.catch_up()
    services.tokens.catch_up()

    verified = chain.extend_and_verify(ledger)
    assert verified.ok, verified.problem
    live = dump(ledger)
    assert build_by_event(ledger) == live


def test_a_projection_reads_a_batchs_keys_in_one_query(database_url: str) -> None:
    """A rebuild in a process that has no key in memory: one query for its batch's keys,
    not one per person."""
    writer = Ledger(DatabaseURL.parse(database_url))
    try:
        context = context_for(writer)
        for n in range(20):
            writer.create_user(context, NewUser({"userName": f"u{n}@example.com"}))
    finally:
        writer.close()
    reader = Ledger(DatabaseURL.parse(database_url))
    try:
        queries: list[str] = []
        asked: list[list[Any]] = []
        query = reader.keys._query

        def counted(statement: str, params: list[Any]) -> list[tuple[str, str]]:
            queries.append(statement)
            asked.append(params)
            return query(statement, params)

        reader.keys._query = counted  # type: ignore[method-assign]
        Runner(reader, AuditProjection("counted_"), batch_size=1000).run_once()
        assert len(queries) == 1
        # PostgreSQL is asked with one array of the ids, SQLite with a parameter each.
        ids = asked[0][0] if reader.database.kind == "postgresql" else asked[0]
        # In the order of the ids, the table's: neighbours in its b-tree.
        assert len(ids) == 20
        assert ids == sorted(ids)
        with SQL(reader).transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT subject_name FROM counted_audit_entries WHERE action = ?", ("user.created",)
            )
            names = sorted(str(row["subject_name"]) for row in cursor.fetchall())
        assert names == sorted(f"u{n}@example.com" for n in range(20))
    finally:
        reader.close()
