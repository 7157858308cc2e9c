"""`projections rebuild`: a read model replayed from the log into new tables, then switched to.

The rebuilt rows must equal, to the last column, what the live projections built one write at
a time, and what a build that applies one event per transaction gives: the SCIM projection
folds a whole batch in memory, so this is the proof that batching changes nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.schemas import CORE_GROUP, CORE_USER
from scimledger.projections import audit, scim, scim_projection, tokens
from scimledger.projections.rebuild import PREFIX, Progress, RebuildConflict, rebuild
from scimledger.projections.registry import REBUILDABLE
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL, Cursor
from scimledger.scripts import cli
from scimledger.scripts.projections import ProgressMeter
from tests.conftest import issue
from tests.scim import PATCH_OP, Client

OPERATOR = Actor(kind="operator", id="tests", name="tester")
NAMES = sorted(REBUILDABLE)  # the order `--all` rebuilds them in

# Every table a rebuildable projection builds from events, with its primary key.
TABLES = {
    "scim_users": "id",
    "scim_groups": "id",
    "scim_group_members": "group_id, user_id",
    "scim_user_counts": "org_id",
    "audit_entries": "position",
    "audit_subjects": "subject_id",
    "tokens": "id",
    "org_admins": "org_id, email",
}
TABLES_OF = {
    scim.NAME: ("scim_users", "scim_groups", "scim_group_members", "scim_user_counts"),
    audit.NAME: ("audit_entries", "audit_subjects"),
    tokens.NAME: ("tokens", "org_admins"),
}
# A build of each projection that applies one event per transaction: the reference.
BY_EVENT = "byevent_"
REBUILD_TAG = re.compile(r"rebuild_[0-9a-f]{8}_")

Dump = dict[str, list[dict[str, Any]]]


# The database


def head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def dump(ledger: Ledger, prefix: str = "", tables: Iterable[str] = TABLES) -> Dump:
    """Every row of the tables, all columns, by primary key. PostgreSQL's JSONB `search`
    column comes back parsed (psycopg decodes it), SQLite's JSON text as it is stored."""
    out: Dump = {}
    with SQL(ledger).transaction(commit=False) as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {prefix}{table} ORDER BY {TABLES[table]}")
            out[table] = [dict(row) for row in cursor.fetchall()]
    return out


def build_by_event(ledger: Ledger, names: Iterable[str] = NAMES) -> Dump:
    """The reference: each projection built from the whole log, one event per batch, into
    tables of its own; returns their rows (under the live tables' names)."""
    tables: list[str] = []
    for name in names:
        Runner(ledger, REBUILDABLE[name](BY_EVENT), batch_size=1).run_once()
        tables += TABLES_OF[name]
    return dump(ledger, BY_EVENT, tables)


def tracking(ledger: Ledger) -> dict[str, int]:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute("SELECT name, position FROM projection_tracking ORDER BY name")
        return {str(row["name"]): int(row["position"]) for row in cursor.fetchall()}


def rebuild_rows(ledger: Ledger) -> dict[str, int]:
    return {name: at for name, at in tracking(ledger).items() if name.startswith(PREFIX)}


def table_names(ledger: Ledger) -> list[str]:
    with SQL(ledger).transaction(commit=False) as cursor:
        if cursor.dialect == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        else:
            cursor.execute(
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
                " ORDER BY tablename"
            )
        return [str(row["name"]) for row in cursor.fetchall()]


def raw_indexes(ledger: Ledger, table: str) -> list[tuple[str, str]]:
    """The table's indexes, primary key included: (name, definition)."""
    with SQL(ledger).transaction(commit=False) as cursor:
        if cursor.dialect == "sqlite":
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
                " ORDER BY name",
                (table,),
            )
        else:
            cursor.execute(
                "SELECT indexname AS name, indexdef AS sql FROM pg_indexes"
                " WHERE schemaname = 'public' AND tablename = ? ORDER BY indexname",
                (table,),
            )
        return [(str(row["name"]), str(row["sql"] or "")) for row in cursor.fetchall()]


def _normalized(text: str) -> str:
    # A rebuilt index keeps its build's prefix; SQLite quotes a renamed table in its index
    # definitions.
    return REBUILD_TAG.sub("", text).replace('"', "")


def indexes(ledger: Ledger) -> dict[str, list[tuple[str, str]]]:
    """Each live table's indexes, with the rebuild prefix they may carry taken out."""
    return {
        table: sorted(
            (_normalized(name), _normalized(sql)) for name, sql in raw_indexes(ledger, table)
        )
        for table in TABLES
    }


def token_usage(ledger: Ledger) -> list[dict[str, Any]]:
    with SQL(ledger).transaction(commit=False) as cursor:
        cursor.execute("SELECT * FROM token_usage ORDER BY token_id")
        return [dict(row) for row in cursor.fetchall()]


def catch_up(services: Services) -> None:
    services.scim.catch_up()
    services.audit.catch_up()
    services.tokens.catch_up()


# The workload


def post_user(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/scim/v2/Users", json={"schemas": [CORE_USER], **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def post_group(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/scim/v2/Groups", json={"schemas": [CORE_GROUP], **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def patch(
    client: Client,
    path: str,
    *operations: dict[str, Any],
) -> None:
    response = client.patch(path, json={"schemas": [PATCH_OP], "Operations": list(operations)})
    assert response.status_code == 200, response.text


def put(client: Client, path: str, body: dict[str, Any]) -> None:
    response = client.put(path, json=body)
    assert response.status_code == 200, response.text


def delete(client: Client, path: str) -> None:
    response = client.delete(path)
    assert response.status_code == 204, response.text


def members(value: str) -> list[dict[str, str]]:
    return [{"value": value}]


def workload(client: Client, services: Services) -> dict[str, str]:
    """Every kind of event the three read models apply; returns the ids by name."""
    ledger = services.ledger
    ledger.add_admin("acme", "boss@example.com", OPERATOR, RequestInfo("admin-1"))
    ledger.add_admin("acme", "gone@example.com", OPERATOR, RequestInfo("admin-2"))
    ledger.remove_admin("acme", "gone@example.com", OPERATOR, RequestInfo("admin-3"))
    ledger.change_settings("acme", {"departed_grace_seconds": 3600}, OPERATOR, RequestInfo("set"))
    revoked = issue(ledger, name="Azure")
    ledger.revoke_token(revoked.id, OPERATOR, RequestInfo("revoke"))
    rotated = issue(ledger, name="Entra")
    ledger.rotate_token(
        rotated.id,
        grace=timedelta(days=1),
        actor=OPERATOR,
        request=RequestInfo("rotate"),
        now=datetime(2030, 1, 1, tzinfo=UTC),
    )
    ledger.issue_token(
        org="acme",
        name="Boss's",
        expires_at=datetime(2031, 1, 1, tzinfo=UTC),
        actor=OPERATOR,
        request=RequestInfo("boss-token"),
        by="boss@example.com",
    )

    ids = {
        "alice": post_user(
            client,
            {
                "userName": "alice@example.com",
                "externalId": "ext-alice",
                "name": {"givenName": "Alice", "familyName": "Liddell"},
                "emails": [{"value": "Alice@Example.com", "type": "work", "primary": True}],
                "title": "Engineer",
                "password": "s3cret!",
            },
        ),
        "bob": post_user(client, {"userName": "bob@example.com", "displayName": "Bob"}),
        "boss": post_user(
            client,
            {"userName": "boss@example.com", "emails": [{"value": "boss@example.com"}]},
        ),
        "carol": post_user(client, {"userName": "carol@example.com", "active": False}),
        "dave": post_user(client, {"userName": "dave@example.com"}),
        "erin": post_user(client, {"userName": "erin@example.com", "externalId": "ext-erin"}),
    }
    users = "/scim/v2/Users/"
    put(
        client,
        users + ids["bob"],
        {
            "schemas": [CORE_USER],
            "userName": "Robert@Example.com",
            "externalId": "ext-bob",
            "name": {"givenName": "Robert"},
            "emails": [{"value": "rob@example.com", "type": "home"}],
            "active": True,
        },
    )
    patch(
        client,
        users + ids["alice"],
        {
            "op": "replace",
            "value": {
                "emails": [
                    {"value": "alice@wonderland.example", "type": "work", "primary": True},
                    {"value": "a@example.com", "type": "home"},
                ],
                "name": {"givenName": "Alicia", "familyName": "Liddell"},
                "externalId": "ext-alice-2",
            },
        },
    )
    patch(client, users + ids["alice"], {"op": "remove", "path": "title"})
    patch(client, users + ids["alice"], {"op": "replace", "path": "password", "value": "n3w!"})
    # The admin's own user leaves and comes back (AdminDeparted, AdminReturned).
    patch(client, users + ids["boss"], {"op": "replace", "value": {"active": False}})
    patch(client, users + ids["boss"], {"op": "replace", "value": {"active": True}})
    patch(client, users + ids["erin"], {"op": "replace", "path": "active", "value": False})
    patch(client, users + ids["carol"], {"op": "replace", "path": "active", "value": True})
    delete(client, users + ids["dave"])

    groups = "/scim/v2/Groups/"
    ids["eng"] = post_group(
        client,
        {"displayName": "Engineering", "members": members(ids["alice"]) + members(ids["bob"])},
    )
    ids["sales"] = post_group(client, {"displayName": "Sales", "externalId": "sales-1"})
    ids["temp"] = post_group(client, {"displayName": "Temp", "members": members(ids["carol"])})
    patch(client, groups + ids["eng"], {"op": "replace", "path": "displayName", "value": "Eng"})
    patch(client, groups + ids["sales"], {"op": "replace", "path": "externalId", "value": "s-2"})
    patch(
        client,
        groups + ids["sales"],
        {
            "op": "add",
            "path": "members",
            "value": members(ids["boss"]) + members(ids["erin"]) + members(ids["carol"]),
        },
    )
    patch(
        client, groups + ids["eng"], {"op": "remove", "path": f'members[value eq "{ids["bob"]}"]'}
    )
    # Added to a group, then deleted: the membership goes with the user.
    ids["frank"] = post_user(client, {"userName": "frank@example.com"})
    patch(
        client,
        groups + ids["eng"],
        {"op": "add", "path": "members", "value": members(ids["frank"])},
    )
    delete(client, users + ids["frank"])
    # Created, added and deleted in a row.
    ids["ghost"] = post_user(client, {"userName": "ghost@example.com"})
    patch(
        client,
        groups + ids["sales"],
        {"op": "add", "path": "members", "value": members(ids["ghost"])},
    )
    delete(client, users + ids["ghost"])
    delete(client, groups + ids["temp"])
    put(
        client,
        groups + ids["sales"],
        {
            "schemas": [CORE_GROUP],
            "displayName": "Sales EMEA",
            "externalId": "s-2",
            "members": members(ids["boss"]) + members(ids["alice"]),
        },
    )
    patch(client, groups + ids["eng"], {"op": "replace", "path": "externalId", "value": "eng-1"})
    patch(client, groups + ids["eng"], {"op": "remove", "path": "externalId"})
    several = [post_user(client, {"userName": f"user{n}@example.com"}) for n in range(4)]
    ids.update({f"user{n}": user_id for n, user_id in enumerate(several)})
    patch(
        client,
        groups + ids["eng"],
        {"op": "add", "path": "members", "value": [{"value": user_id} for user_id in several]},
    )
    patch(client, users + ids["user1"], {"op": "replace", "value": {"displayName": "One"}})
    delete(client, users + ids["user2"])
    return ids


def alive_users(ids: dict[str, str]) -> set[str]:
    return {
        ids[name] for name in ("alice", "bob", "boss", "carol", "erin", "user0", "user1", "user3")
    }


def check_workload(before: Dump, ids: dict[str, str]) -> None:
    """The live read model holds what the workload meant to leave."""
    assert {row["id"] for row in before["scim_users"]} == alive_users(ids)
    assert {
        (row["id"], row["display_name"], row["external_id"]) for row in before["scim_groups"]
    } == {
        (ids["eng"], "Eng", None),
        (ids["sales"], "Sales EMEA", "s-2"),
    }
    assert {(row["group_id"], row["user_id"]) for row in before["scim_group_members"]} == {
        (ids["eng"], ids["alice"]),
        (ids["eng"], ids["user0"]),
        (ids["eng"], ids["user1"]),
        (ids["eng"], ids["user3"]),
        (ids["sales"], ids["boss"]),
        (ids["sales"], ids["alice"]),
    }
    assert [(row["email"], row["removed_at"] is None) for row in before["org_admins"]] == [
        ("boss@example.com", True),
        ("gone@example.com", False),
    ]
    assert len(before["tokens"]) == 5  # Okta, Azure, Entra and its successor, Boss's
    assert {row["action"] for row in before["audit_entries"]} >= {
        "user.password_changed",
        "user.deleted",
        "group.members_removed",
        "group.external_id_changed",
        "admin.departed",
        "admin.returned",
        "token.rotated",
        "organization.settings_changed",
    }


def listed_users(client: Client) -> list[str]:
    response = client.get("/scim/v2/Users", params={"count": 500})
    assert response.status_code == 200, response.text
    body = response.json()
    ids = [str(resource["id"]) for resource in body["Resources"]]
    assert body["totalResults"] == len(ids)
    return ids


# 1. The rebuilt rows are the live ones


@pytest.mark.no_read_models
@pytest.mark.parametrize("batch_size", [1000, 3])
def test_a_rebuild_gives_exactly_the_rows_built_event_by_event(
    client: Client,
    services: Services,
    batch_size: int,
) -> None:
    ledger = services.ledger
    ids = workload(client, services)
    catch_up(services)
    before = dump(ledger)
    check_workload(before, ids)
    if ledger.database.kind == "postgresql":
        assert all(isinstance(row["search"], dict) for row in before["scim_users"])
    assert build_by_event(ledger) == before
    indexes_before = indexes(ledger)
    usage = token_usage(ledger)
    assert len(usage) == 1  # the client's token
    end = head(ledger)

    for name in NAMES:
        done = rebuild(ledger, name, batch_size=batch_size)
        assert (done.name, done.resumed_from, done.position, done.applied) == (name, 0, end, end)

    assert dump(ledger) == before
    assert token_usage(ledger) == usage  # not made from events: kept
    assert tracking(ledger) == {
        **{name: end for name in NAMES},
        **{BY_EVENT + name: end for name in NAMES},
    }
    assert [table for table in table_names(ledger) if table.startswith(PREFIX)] == []
    assert indexes(ledger) == indexes_before
    # scim_users: its primary key and its three secondary indexes (and on PostgreSQL the
    # people search's), now the rebuilt ones.
    postgresql = ledger.database.kind == "postgresql"
    assert [name for name, _ in indexes(ledger)["scim_users"]] == sorted(
        [
            *(["sqlite_autoindex_scim_users_1"] if not postgresql else []),
            *(["scim_users_pkey", "scim_users_people"] if postgresql else []),
            "scim_users_org_external",
            "scim_users_org_name",
            "scim_users_org_seq",
        ]
    )
    rebuilt = [name for name, _ in raw_indexes(ledger, "scim_users") if REBUILD_TAG.match(name)]
    assert len(rebuilt) == (5 if postgresql else 3)
    assert sorted(listed_users(client)) == sorted(alive_users(ids))
    # The people search's index was rebuilt too, and follows writes made after the switch.
    dora = post_user(client, {"userName": "dora@example.com", "displayName": "Dora"})
    catch_up(services)
    org_id = services.ledger.organization_id("acme")
    assert org_id is not None
    with services.sql.read() as cursor:
        for typed, found in (("robert@ex", [ids["bob"]]), ("dora@", [dora]), ("nobody", [])):
            rows = scim.users_by_name(
                cursor, org_id, None, search=typed, after=None, before=None, limit=10
            )
            assert [row.id for row in rows] == found, typed


@pytest.mark.no_read_models
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_rebuild_on_postgresql_leaves_its_tables_analyzed(
    client: Client, services: Services
) -> None:
    workload(client, services)
    catch_up(services)
    for name in NAMES:
        rebuild(services.ledger, name)
    with services.sql.read() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NULL"
            " AND relname IN (?, ?, ?)",
            ("audit_entries", "scim_users", "tokens"),
        )
        assert cursor.fetchall() == []
        cursor.execute(
            "SELECT count(*) AS n FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
            " AND relname IN (?, ?, ?)",
            ("audit_entries", "scim_users", "tokens"),
        )
        row = cursor.fetchone()
    assert row is not None
    assert row["n"] == 3


# 2. Twice in a row


@pytest.mark.no_read_models
def test_rebuilding_twice_in_a_row_gives_the_same_rows(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    workload(client, services)
    catch_up(services)
    before = dump(ledger)
    indexes_before = indexes(ledger)
    end = head(ledger)
    names_after: list[list[str]] = []

    for _ in range(2):
        for name in NAMES:
            assert rebuild(ledger, name, batch_size=4).position == end
        assert dump(ledger) == before
        assert tracking(ledger) == dict.fromkeys(NAMES, end)
        assert [table for table in table_names(ledger) if table.startswith(PREFIX)] == []
        assert indexes(ledger) == indexes_before
        names_after.append([name for table in TABLES for name, _ in raw_indexes(ledger, table)])

    # Each rebuild's indexes carry its own prefix: no name is shared by the two builds.
    first, second = ({n for n in names if REBUILD_TAG.match(n)} for names in names_after)
    # The 15 secondary indexes, and on PostgreSQL the 8 primary keys and the people search's.
    assert len(first) == len(second) == (24 if ledger.database.kind == "postgresql" else 15)
    assert first.isdisjoint(second)


# 3. Interrupted, then resumed


def test_an_interrupted_rebuild_continues_where_it_stopped(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    ids = workload(client, services)
    catch_up(services)
    before = dump(ledger)
    end = head(ledger)
    calls: list[Progress] = []

    def interrupt(progress: Progress) -> None:
        calls.append(progress)
        if len(calls) == 2:
            raise KeyboardInterrupt

    for name in NAMES:
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            rebuild(ledger, name, progress=interrupt, batch_size=2)
        [(row, stopped_at)] = rebuild_rows(ledger).items()
        prefix = row.removesuffix(name)
        assert re.fullmatch(r"rebuild_[0-9a-f]{8}_", prefix), row
        assert stopped_at == calls[1].position > calls[0].position > 0
        assert [(p.name, p.head, p.applied) for p in calls] == [
            (name, end, calls[0].position),
            (name, end, calls[1].position),
        ]
        # The half-built tables are there; the live ones keep serving, untouched.
        assert {prefix + table for table in TABLES_OF[name]} <= set(table_names(ledger))
        assert tracking(ledger)[name] == end
        assert dump(ledger) == before
        assert sorted(listed_users(client)) == sorted(alive_users(ids))

        done = rebuild(ledger, name, batch_size=2)

        assert (done.name, done.resumed_from, done.position, done.applied) == (
            name,
            stopped_at,
            end,
            end - stopped_at,
        )
        assert rebuild_rows(ledger) == {}
        assert tracking(ledger)[name] == end
        assert [table for table in table_names(ledger) if table.startswith(PREFIX)] == []
        # The switch happened: the live tables are those the interrupted rebuild started.
        live_indexes = [n for table in TABLES_OF[name] for n, _ in raw_indexes(ledger, table)]
        assert any(index.startswith(prefix) for index in live_indexes), live_indexes
        assert dump(ledger) == before

    assert sorted(listed_users(client)) == sorted(alive_users(ids))


# 4. Writes while it rebuilds


def test_writes_during_a_rebuild_are_in_the_read_model_it_switches_to(
    client: Client,
    services: Services,
) -> None:
    ledger = services.ledger
    ids = workload(client, services)
    catch_up(services)
    created: list[str] = []
    calls: list[Progress] = []

    def write(progress: Progress) -> None:
        calls.append(progress)
        if len(calls) in (1, 3, 5, 6):
            user_id = post_user(client, {"userName": f"during{len(calls)}@example.com"})
            created.append(user_id)
            # The live read model, still the old tables, has it at once.
            assert client.get(f"/scim/v2/Users/{user_id}").status_code == 200

    done = rebuild(ledger, scim.NAME, progress=write, batch_size=2)

    assert len(created) == 4
    assert done.position == head(ledger) == tracking(ledger)[scim.NAME]
    assert calls[-1].position == done.position
    listed = listed_users(client)
    assert len(listed) == len(set(listed))
    assert set(listed) == alive_users(ids) | set(created)
    live = dump(ledger, tables=TABLES_OF[scim.NAME])
    assert live == build_by_event(ledger, [scim.NAME])

    # The live runner goes on, on the new tables.
    after = post_user(client, {"userName": "after@example.com"})
    response = client.get(f"/scim/v2/Users/{after}")
    assert response.status_code == 200, response.text
    assert response.json()["userName"] == "after@example.com"
    found = client.get("/scim/v2/Users", params={"filter": 'userName eq "after@example.com"'})
    assert [resource["id"] for resource in found.json()["Resources"]] == [after]
    assert isinstance(services.scim, Runner)
    assert services.scim.position == head(ledger) == tracking(ledger)[scim.NAME]
    assert rebuild_rows(ledger) == {}
    assert [table for table in table_names(ledger) if table.startswith(PREFIX)] == []


def test_a_write_from_another_process_while_a_batch_is_read_does_not_break_the_rebuild(
    client: Client,
    services: Services,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rebuild runs in one process (the CLI), the server writes in another: a write that
    commits after a batch started, just before the batch claims its position (its first
    write), must not break the batch, as it does not when it comes a moment earlier."""
    ledger = services.ledger
    made = [post_user(client, {"userName": f"before{n}@example.com"}) for n in range(5)]
    catch_up(services)
    server = Ledger(DatabaseURL.parse(database_url))  # another process's connections
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    context = CommandContext(org_id=org_id, actor=OPERATOR, request=RequestInfo("during"))
    execute = Cursor.execute
    claims: list[Sequence[Any]] = []
    during: list[str] = []

    def write_before_the_claim(self: Cursor, statement: str, params: Sequence[Any] = ()) -> None:
        claiming = statement.startswith("UPDATE projection_tracking") and any(
            str(param).startswith(PREFIX) for param in params
        )
        if claiming:
            claims.append(params)
            if len(claims) == 2:
                written = server.create_user(
                    context, NewUser(attributes={"userName": "during@example.com"})
                )
                during.append(str(written.id))
        execute(self, statement, params)

    try:
        with monkeypatch.context() as patched:
            patched.setattr(Cursor, "execute", write_before_the_claim)
            done = rebuild(ledger, scim.NAME, batch_size=2)
    finally:
        server.close()

    assert len(during) == 1
    assert len(claims) > 2
    assert done.position == head(ledger) == tracking(ledger)[scim.NAME]
    assert sorted(listed_users(client)) == sorted(made + during)
    live = dump(ledger, tables=TABLES_OF[scim.NAME])
    assert live == build_by_event(ledger, [scim.NAME])


def test_the_live_runner_goes_on_when_another_process_switches_in_the_middle_of_its_batch(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server's runner has read its next batch when `scimledger projections rebuild`, in
    another process, switches the read model over: the batch is already in the rebuilt
    tables, so the runner must continue from the position the rebuild handed over."""
    server = Ledger(DatabaseURL.parse(database_url))
    operator = Ledger(DatabaseURL.parse(database_url))  # the CLI's process
    try:
        issue(server)
        org_id = server.organization_id("acme")
        assert org_id is not None
        context = CommandContext(org_id=org_id, actor=OPERATOR, request=RequestInfo("r"))
        runner = Runner(server, scim_projection.ScimProjection())
        runner.run_once()
        for n in range(3):
            server.create_user(context, NewUser(attributes={"userName": f"u{n}@example.com"}))
        runner.catch_up()
        late = server.create_user(context, NewUser(attributes={"userName": "late@example.com"}))
        execute = Cursor.execute
        armed = [True]

        def rebuild_before_the_claim(
            self: Cursor, statement: str, params: Sequence[Any] = ()
        ) -> None:
            claiming = statement.startswith("UPDATE projection_tracking") and (
                len(params) == 3 and params[1] == scim.NAME
            )
            if claiming and armed:
                armed.clear()
                rebuild(operator, scim.NAME)
            execute(self, statement, params)

        with monkeypatch.context() as patched:
            patched.setattr(Cursor, "execute", rebuild_before_the_claim)
            position = runner.catch_up()

        assert armed == []
        assert position == late.position == head(server) == tracking(server)[scim.NAME]
        live = dump(server, tables=TABLES_OF[scim.NAME])
        assert sorted(row["user_name_norm"] for row in live["scim_users"]) == [
            "late@example.com",
            "u0@example.com",
            "u1@example.com",
            "u2@example.com",
        ]
        assert live == build_by_event(server, [scim.NAME])
    finally:
        operator.close()
        server.close()


# 5. The command line


def rebuilt_line(name: str, position: int, applied: int, resumed_from: int = 0) -> str:
    resumed = f", continued from {resumed_from:,}" if resumed_from else ""
    return (
        rf"{re.escape(name)}: rebuilt to position {position:,}{resumed}: {applied:,} events"
        r" in \d+\.\d s \((?:[\d,]+ events/s|-)\); now serving the new tables"
    )


@pytest.mark.no_read_models
def test_the_cli_rebuilds_every_read_model_and_continues_an_interrupted_run(
    client: Client,
    services: Services,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = services.ledger
    workload(client, services)
    catch_up(services)
    before = dump(ledger)
    end = head(ledger)
    capsys.readouterr()

    assert cli.main(["projections", "rebuild", "--all", "--database", database_url]) == 0

    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3, out
    for line, name in zip(lines, NAMES, strict=True):
        assert re.fullmatch(rebuilt_line(name, end, end), line), line
    progress = err.splitlines()
    assert len(progress) == 3, err
    for line, name in zip(progress, NAMES, strict=True):
        pattern = (
            rf"{re.escape(name)}: {end:,}/{end:,} events \(100%\), (?:[\d,]+ events/s|-),"
            r" ETA (?:0:00:00|-)"
        )
        assert re.fullmatch(pattern, line), line
    assert dump(ledger) == before
    assert tracking(ledger) == dict.fromkeys(NAMES, end)

    # Ctrl-C during the first projection: exit 130, say how to continue; run again.
    def interrupted(self: ProgressMeter, progress: Progress) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(ProgressMeter, "show", interrupted)
        code = cli.main(
            ["projections", "rebuild", "--all", "--batch-size", "2", "--database", database_url]
        )
    assert code == 130
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{NAMES[0]}: interrupted; run the same command again to continue\n")
    [(_, stopped_at)] = rebuild_rows(ledger).items()
    assert stopped_at > 0

    assert cli.main(["projections", "rebuild", "--all", "--database", database_url]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(rebuilt_line(NAMES[0], end, end - stopped_at, stopped_at), lines[0]), lines
    for line, name in zip(lines[1:], NAMES[1:], strict=True):
        assert re.fullmatch(rebuilt_line(name, end, end), line), line
    assert rebuild_rows(ledger) == {}
    assert dump(ledger) == before


def test_the_cli_needs_a_name_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["projections", "rebuild"])
    assert exited.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith("error: one of the arguments name --all is required")
    )


def test_a_second_rebuild_of_the_same_projection_finishes_it_and_the_first_stops_cleanly(
    client: Client,
    services: Services,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two operators run the same rebuild: the second continues the first's tables and
    switches; the first then finds its position moved and stops with a clear error."""
    ledger = services.ledger
    workload(client, services)
    catch_up(services)
    before = dump(ledger)
    codes: list[int] = []

    def second_operator(progress: Progress) -> None:
        if not codes:
            command = ["projections", "rebuild", scim.NAME, "--database", database_url]
            codes.append(cli.main(command))

    with pytest.raises(RebuildConflict, match=f"another rebuild of {scim.NAME} is running"):
        rebuild(ledger, scim.NAME, progress=second_operator, batch_size=2)

    assert codes == [0]
    assert "continued from" in capsys.readouterr().out
    assert rebuild_rows(ledger) == {}
    assert tracking(ledger)[scim.NAME] == head(ledger)
    assert dump(ledger) == before


class _SlowAudit(audit.AuditProjection):
    """The audit trail, preparing its first event slowly (a slow machine's decoding)."""

    def __init__(self, prefix: str, seconds: float) -> None:
        super().__init__(prefix)
        self._seconds = seconds

    def prepare(self, event: Any) -> Any:
        if self._seconds:
            time.sleep(self._seconds)
            self._seconds = 0
        return super().prepare(event)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_replay_decodes_outside_the_transaction_that_read_the_log(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL ends a transaction left idle longer than the library's setting (5 s by
    default; 1 s here): a replay's reader decoded its batches inside the transaction that
    read them, so a rebuild failed ("the database is unreachable") where decoding took that
    long."""
    monkeypatch.setenv("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "1")
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        ledger.issue_token(
            org="acme", name="t", expires_at=None, actor=OPERATOR, request=RequestInfo("t")
        )
        org_id = ledger.organization_id("acme")
        assert org_id is not None
        context = CommandContext(org_id=org_id, actor=OPERATOR, request=RequestInfo("slow"))
        for n in range(3):
            ledger.create_user(context, NewUser({"userName": f"slow{n}@example.com"}))
        runner = Runner(ledger, _SlowAudit("slow_", 1.5), batch_size=2)
        runner.create_tables()
        head = ledger.recorder.max_notification_id()
        assert runner.replay() == head
        with SQL(ledger).transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT subject_name FROM slow_audit_entries WHERE action = ?", ("user.created",)
            )
            names = sorted(str(row["subject_name"]) for row in cursor.fetchall())
        assert names == [f"slow{n}@example.com" for n in range(3)]
    finally:
        ledger.close()
