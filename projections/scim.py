"""The SCIM read model: its tables (users, groups, memberships) and the queries that serve
the SCIM API. `projections.scim_projection` writes them from the events. Filters compile to
SQL, so rows are never loaded to be filtered in Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

import msgspec

from scimledger.ledger.names import normalize_name
from scimledger.ledger.schemas import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE,
    GROUP,
    GROUP_SCHEMAS,
    USER,
    USER_SCHEMAS,
    Holders,
    ResourceSchemas,
)
from scimledger.projections.filters import AttrPath, Filter
from scimledger.projections.sql import SQL, Cursor, Row, prefixed
from scimledger.projections.sql_filters import (
    Column,
    Document,
    Membership,
    Target,
    compile_filter,
    filter_time,
    sort_expression,
)

NAME = "scim_read_model_v6"  # v3: user counts per organization; v4: the people search;
# v5: its text in the userName index (SQLite); v6: groups' extension values


class Tables(NamedTuple):
    """The read model's tables: the one place their names are written."""

    users: str = "scim_users"
    groups: str = "scim_groups"
    members: str = "scim_group_members"
    counts: str = "scim_user_counts"
    people: str = "scim_user_people"  # SQLite: the people search's trigram index (FTS5)


TABLES = Tables()


def ddl(dialect: str, prefix: str = "") -> tuple[str, ...]:
    """The read model's tables; `prefix` names another build of them (a rebuild's), indexes
    included, since index names are global to a database."""
    # `search` holds the attributes with every string case-folded, for filters: JSONB on
    # PostgreSQL, JSON text on SQLite.
    json_type = "JSONB" if dialect == "postgresql" else "TEXT"
    users, groups, members, counts, people = prefixed(TABLES, prefix)
    return (
        f"""CREATE TABLE IF NOT EXISTS {users} (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        user_name_norm TEXT NOT NULL,
        external_id TEXT,
        active BOOLEAN NOT NULL,
        version BIGINT NOT NULL,
        created TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        attributes TEXT NOT NULL,
        search {json_type} NOT NULL,
        people_text TEXT NOT NULL
    )""",
        # On SQLite the people search's text is in the userName index too: a search its
        # trigram index cannot serve (under three characters, or matching thousands) reads
        # names in order and tests the text in the index, reading only the rows it finds (a
        # two-letter search that finds no one among 100,000: 62 -> 29 ms). Not on PostgreSQL,
        # whose index entries are limited in size (its trigram index serves the search).
        f"CREATE INDEX IF NOT EXISTS {users}_org_name ON {users} (org_id, user_name_norm"
        f"{', people_text' if dialect == 'sqlite' else ''})",
        f"CREATE INDEX IF NOT EXISTS {users}_org_seq ON {users} (org_id, seq)",
        f"CREATE INDEX IF NOT EXISTS {users}_org_external ON {users} (org_id, external_id)",
        f"""CREATE TABLE IF NOT EXISTS {groups} (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        display_name TEXT NOT NULL,
        display_name_norm TEXT NOT NULL,
        external_id TEXT,
        version BIGINT NOT NULL,
        created TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        attributes TEXT NOT NULL,
        search {json_type} NOT NULL
    )""",
        f"CREATE INDEX IF NOT EXISTS {groups}_org_name ON {groups} (org_id, display_name_norm)",
        f"CREATE INDEX IF NOT EXISTS {groups}_org_seq ON {groups} (org_id, seq)",
        f"""CREATE TABLE IF NOT EXISTS {members} (
        group_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (group_id, user_id)
    )""",
        f"CREATE INDEX IF NOT EXISTS {members}_user ON {members} (user_id)",
        # An organization's users, for the total of unfiltered lists (an import walk's
        # pages), and how many were ever deleted (see PageMarks).
        f"""CREATE TABLE IF NOT EXISTS {counts} (
        org_id TEXT PRIMARY KEY,
        users BIGINT NOT NULL,
        deleted BIGINT NOT NULL
    )""",
        *_people_index(dialect, users, people),
    )


def _people_index(dialect: str, users: str, people: str) -> tuple[str, ...]:
    """A trigram index of `people_text`, so that a people search finds a few people among
    many without reading every row: on PostgreSQL a GIN index of pg_trgm (skipped where the
    extension cannot be created: a search then reads the rows); on SQLite a contentless FTS5
    table of trigrams keyed by `seq`, kept by triggers."""
    if dialect == "postgresql":
        return (
            "DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm;"
            " EXCEPTION WHEN OTHERS THEN NULL; END $$",
            "DO $$ BEGIN"
            f" CREATE INDEX IF NOT EXISTS {users}_people ON {users}"
            " USING gin (people_text gin_trgm_ops);"
            " EXCEPTION WHEN undefined_object THEN NULL; END $$",
        )
    forget = (
        f"INSERT INTO {people} ({people}, rowid, people_text)"
        " VALUES ('delete', old.seq, old.people_text)"
    )
    learn = f"INSERT INTO {people} (rowid, people_text) VALUES (new.seq, new.people_text)"
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {people} USING fts5"
        "(people_text, content='', tokenize='trigram')",
        f"CREATE TRIGGER IF NOT EXISTS {people}_insert AFTER INSERT ON {users} BEGIN {learn}; END",
        f"CREATE TRIGGER IF NOT EXISTS {people}_update AFTER UPDATE OF people_text ON {users}"
        f" WHEN old.people_text IS NOT new.people_text BEGIN {forget}; {learn}; END",
        f"CREATE TRIGGER IF NOT EXISTS {people}_delete AFTER DELETE ON {users} BEGIN {forget}; END",
    )


_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Member:
    """One member of a group, or one group of a user: its id and display name."""

    id: str
    display: str


@dataclass(frozen=True)
class UserRow:
    id: str
    attributes: dict[str, Any]
    active: bool
    version: int
    created: str
    last_modified: str
    groups: list[Member] = field(default_factory=list)  # read with the user when asked


@dataclass(frozen=True)
class GroupRow:
    id: str
    display_name: str
    external_id: str | None
    version: int
    created: str
    last_modified: str
    attributes: dict[str, Any] = field(default_factory=dict)  # extension values, by URN


def _user_row(row: Row) -> UserRow:
    groups = row["groups_"]
    return UserRow(
        id=row["id"],
        attributes=_decode(row["attributes"]),
        active=bool(row["active"]),
        version=int(row["version"]),
        created=row["created"],
        last_modified=row["last_modified"],
        groups=[Member(id, display) for id, display in _decode(groups)] if groups else [],
    )


def _group_row(row: Row) -> GroupRow:
    return GroupRow(
        id=row["id"],
        display_name=row["display_name"],
        external_id=row["external_id"],
        version=int(row["version"]),
        created=row["created"],
        last_modified=row["last_modified"],
        attributes=_decode(row["attributes"]),
    )


# Filter targets


_TIMES = {
    "meta.created": Column("created", "time", filter_time),
    "meta.lastmodified": Column("last_modified", "time", filter_time),
}

USERS = Target(
    table=TABLES.users,
    resource_urn=CORE_USER,
    document=Document("search", (USER, ENTERPRISE), exact="attributes"),
    multi_valued={"groups": Membership(TABLES.members, "user_id", "group_id")},
    columns={
        "username": Column("user_name_norm", "text", normalize_name),
        "externalid": Column("external_id", "text", nullable=True),
        "id": Column("id", "text", str.lower),
        "active": Column("active", "bool"),
        **_TIMES,
    },
)


@lru_cache(maxsize=256)
def target_of(schemas: ResourceSchemas) -> Target:
    """What an organization's users or groups can be filtered and sorted on: their core
    (and enterprise) attributes, and those of the extensions it declared (as their
    declarations have them)."""
    if schemas is USER_SCHEMAS:
        return USERS
    if schemas is GROUP_SCHEMAS:
        return GROUPS
    built_in = USERS if schemas.core is USER else GROUPS
    assert built_in.document is not None
    document = replace(
        built_in.document, schemas=(schemas.core, *(e.schema for e in schemas.extensions))
    )
    return replace(built_in, document=document)


GROUPS = Target(
    table=TABLES.groups,
    resource_urn=CORE_GROUP,
    document=Document("search", (GROUP,), exact="attributes"),
    columns={
        "displayname": Column("display_name_norm", "text", normalize_name),
        "externalid": Column("external_id", "text", nullable=True),
        "id": Column("id", "text", str.lower),
        **_TIMES,
    },
    multi_valued={"members": Membership(TABLES.members, "group_id", "user_id")},
)


# Queries


@dataclass(frozen=True)
class Query:
    """Which resources to list: filter, order (creation order unless sortBy), page."""

    where: Filter | None = None
    sort_by: AttrPath | None = None
    descending: bool = False
    start_index: int = 1
    count: int = 100


@dataclass(frozen=True)
class Page:
    total: int
    rows: list[Row]


def _page(
    cursor: Cursor,
    target: Target,
    columns: str,
    org_id: UUID,
    query: Query,
    *,
    joined: Callable[[str], str] | None = None,
) -> Page:
    """One page of an organization's resources, ordered, ties in creation order; `joined`
    gives more columns computed for the page's rows only (from the alias of their id).

    One statement: the total comes with the rows (a window count); a second one counts
    only when the page is empty past the first (or count=0 asks for the total alone)."""
    table = target.table
    condition, params = "", list[Any]()
    if query.where is not None:
        sql, params = compile_filter(query.where, target, cursor.dialect)
        condition = f" AND ({sql})"
    if query.count == 0:
        return Page(total=_count(cursor, table, condition, org_id, params), rows=[])
    order = "seq"
    if condition and cursor.dialect == "sqlite":
        # Ordered by an expression, not the column: else SQLite reads the organization's
        # (org_id, seq) index in order for the LIMIT and tests the filter on every row (a
        # `userName eq` lookup read every user of the organization), instead of the
        # filter's own index.
        # The window count reads every match anyway; the sort is of the matches only.
        order = "+seq"
    if query.sort_by is not None:
        key = sort_expression(query.sort_by, target, cursor.dialect)
        direction = "DESC" if query.descending else "ASC"
        # Resources without the attribute come last ascending, first descending.
        order = f"({key}) IS NULL {direction}, {key} {direction}, seq"
    extra = f", {joined('page.id')}" if joined is not None else ""
    cursor.execute(
        f"SELECT page.*{extra} FROM (SELECT {columns}, COUNT(*) OVER () AS total_,"
        f" ROW_NUMBER() OVER (ORDER BY {order}) AS row_ FROM {table}"
        f" WHERE org_id = ?{condition} ORDER BY {order} LIMIT ? OFFSET ?) AS page"
        " ORDER BY page.row_",
        (str(org_id), *params, query.count, query.start_index - 1),
    )
    rows = cursor.fetchall()
    if rows:
        return Page(total=int(rows[0]["total_"]), rows=rows)
    if query.start_index == 1:
        return Page(total=0, rows=[])
    return Page(total=_count(cursor, table, condition, org_id, params), rows=[])


class PageMarks:
    """Where recent pages of organizations' unfiltered user lists ended: the next page of
    a walk (an Okta import) seeks past the last `seq` instead of skipping `startIndex - 1`
    rows, so pages cost the same at the millionth user as at the first.

    A mark holds while the organization has had no deletion since (creations only add
    rows after every mark); otherwise the page is read by offset, as without a mark.
    Kept in this process, a bounded number of the most recent."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._marks: dict[tuple[UUID, int], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def get(self, org_id: UUID, start_index: int, deleted: int) -> int | None:
        """The seq after which the page starting at `start_index` starts, if known."""
        with self._lock:
            mark = self._marks.get((org_id, start_index))
        if mark is None or mark[1] != deleted:
            return None
        return mark[0]

    def put(self, org_id: UUID, start_index: int, deleted: int, seq: int) -> None:
        with self._lock:
            if len(self._marks) >= self._size:
                del self._marks[next(iter(self._marks))]  # the oldest
            self._marks[(org_id, start_index)] = (seq, deleted)


def _user_walk_page(
    cursor: Cursor,
    org_id: UUID,
    query: Query,
    joined: Callable[[str], str],
    marks: PageMarks,
) -> Page:
    """A page of an organization's users in creation order, unfiltered: the total from
    the organization's count, the rows by seeking from a mark when there is one."""
    cursor.execute(f"SELECT users, deleted FROM {TABLES.counts} WHERE org_id = ?", (str(org_id),))
    counts = cursor.fetchone()
    total, deleted = (int(counts["users"]), int(counts["deleted"])) if counts else (0, 0)
    if query.count == 0 or query.start_index > total:
        return Page(total=total, rows=[])
    after = marks.get(org_id, query.start_index, deleted)
    condition, params = ("", []) if after is None else (" AND seq > ?", [after])
    offset = 0 if after is not None else query.start_index - 1
    cursor.execute(
        f"SELECT page.*, {joined('page.id')} FROM (SELECT {_USER_COLUMNS}, seq AS seq_"
        f" FROM {TABLES.users} WHERE org_id = ?{condition} ORDER BY seq LIMIT ? OFFSET ?) AS page"
        " ORDER BY page.seq_",
        (str(org_id), *params, query.count, offset),
    )
    rows = cursor.fetchall()
    if rows:
        marks.put(org_id, query.start_index + len(rows), deleted, int(rows[-1]["seq_"]))
    return Page(total=total, rows=rows)


def _count(cursor: Cursor, table: str, condition: str, org_id: UUID, params: list[Any]) -> int:
    cursor.execute(
        f"SELECT COUNT(*) AS n FROM {table} WHERE org_id = ?{condition}",
        (str(org_id), *params),
    )
    found = cursor.fetchone()
    return int(found["n"]) if found is not None else 0


_USER_COLUMNS = "id, attributes, active, version, created, last_modified"
_GROUP_COLUMNS = "id, display_name, external_id, version, created, last_modified, attributes"
_NO_GROUPS = "NULL AS groups_"


def _groups_column(dialect: str) -> Callable[[str], str]:
    """A user's groups as a JSON array of [id, displayName], in the groups' creation order,
    computed in the same statement as the user (the read-only `groups` attribute)."""

    def column(user_id: str) -> str:
        if dialect == "postgresql":
            return (
                "(SELECT json_agg(json_build_array(g.id, g.display_name) ORDER BY g.seq)::text"
                f" FROM {TABLES.members} m JOIN {TABLES.groups} g ON g.id = m.group_id"
                f" WHERE m.user_id = {user_id}) AS groups_"
            )
        return (
            "(SELECT json_group_array(json_array(id, display_name)) FROM"
            f" (SELECT g.id, g.display_name FROM {TABLES.members} m"
            f" JOIN {TABLES.groups} g ON g.id = m.group_id"
            f" WHERE m.user_id = {user_id} ORDER BY g.seq)) AS groups_"
        )

    return column


def get_user(
    cursor: Cursor, org_id: UUID, user_id: str, *, with_groups: bool = True
) -> UserRow | None:
    groups = _groups_column(cursor.dialect)(f"{TABLES.users}.id") if with_groups else _NO_GROUPS
    cursor.execute(
        f"SELECT {_USER_COLUMNS}, {groups} FROM {TABLES.users} WHERE id = ? AND org_id = ?",
        (user_id, str(org_id)),
    )
    row = cursor.fetchone()
    return _user_row(row) if row is not None else None


def list_users(
    cursor: Cursor,
    org_id: UUID,
    query: Query,
    *,
    with_groups: bool = True,
    marks: PageMarks | None = None,
    schemas: ResourceSchemas = USER_SCHEMAS,
) -> tuple[int, list[UserRow]]:
    """A page of the organization's users (`schemas`: its own, which its filters may name);
    with `marks`, an unfiltered list in creation order is read from the organization's
    count and the last page's mark."""
    joined = _groups_column(cursor.dialect) if with_groups else (lambda _: _NO_GROUPS)
    if marks is not None and query.where is None and query.sort_by is None:
        page = _user_walk_page(cursor, org_id, query, joined, marks)
    else:
        target = target_of(schemas)
        page = _page(cursor, target, _USER_COLUMNS, org_id, query, joined=joined)
    return page.total, [_user_row(row) for row in page.rows]


def get_group(cursor: Cursor, org_id: UUID, group_id: str) -> GroupRow | None:
    cursor.execute(
        f"SELECT {_GROUP_COLUMNS} FROM {TABLES.groups} WHERE id = ? AND org_id = ?",
        (group_id, str(org_id)),
    )
    row = cursor.fetchone()
    return _group_row(row) if row is not None else None


def extension_holders(sql: SQL) -> Holders:
    """The values the organization's users (or groups) hold of one extension attribute, as
    stored (Ledger.declare_schema claims them when it becomes unique)."""

    def holders(org_id: UUID, resource_type: str, urn: str, name: str) -> list[tuple[str, Any]]:
        table = TABLES.users if resource_type == "User" else TABLES.groups
        found = []
        with sql.read() as cursor:
            cursor.execute(
                f"SELECT id, attributes FROM {table}"
                f" WHERE org_id = ? AND {_holds(cursor.dialect)} ORDER BY seq",
                (str(org_id), urn),
            )
            for row in cursor.fetchall():
                values = _decode(row["attributes"]).get(urn)
                if isinstance(values, dict) and values.get(name) is not None:
                    found.append((str(row["id"]), values[name]))
        return found

    return holders


def extension_values_counter(sql: SQL) -> Callable[[UUID, str], int]:
    """`extension_values` on a read of its own (Ledger.remove_schema asks)."""

    def count(org_id: UUID, urn: str) -> int:
        with sql.read() as cursor:
            return extension_values(cursor, org_id, urn)

    return count


def extension_values(cursor: Cursor, org_id: UUID, urn: str) -> int:
    """How many of the organization's users and groups hold values of the extension `urn`."""
    held = 0
    for table in (TABLES.users, TABLES.groups):
        cursor.execute(
            f"SELECT COUNT(*) AS n FROM {table} WHERE org_id = ? AND {_holds(cursor.dialect)}",
            (str(org_id), urn),
        )
        row = cursor.fetchone()
        held += int(row["n"]) if row is not None else 0
    return held


def _holds(dialect: str) -> str:
    """The condition that a row's `search` has values of the extension given as parameter."""
    if dialect == "postgresql":
        return "jsonb_exists(search, ?)"
    # A declared URN has no double quote (ledger.schemas), which would end the JSON key.
    return """json_type(search, '$."' || ? || '"') IS NOT NULL"""


def list_groups(
    cursor: Cursor, org_id: UUID, query: Query, schemas: ResourceSchemas = GROUP_SCHEMAS
) -> tuple[int, list[GroupRow]]:
    page = _page(cursor, target_of(schemas), _GROUP_COLUMNS, org_id, query)
    return page.total, [_group_row(row) for row in page.rows]


def members_of(cursor: Cursor, group_ids: Sequence[str]) -> dict[str, list[Member]]:
    """Each group's members in a stable order, with the users' displayName or userName."""
    members: dict[str, list[Member]] = {group_id: [] for group_id in group_ids}
    for row in cursor.fetch_in(
        f"SELECT m.group_id, u.id, u.attributes FROM {TABLES.members} m"
        f" JOIN {TABLES.users} u ON u.id = m.user_id",
        "m.group_id",
        group_ids,
        order_by="m.group_id, u.seq",
    ):
        attributes = _decode(row["attributes"])
        display = attributes.get("displayName") or attributes["userName"]
        members[row["group_id"]].append(Member(id=row["id"], display=display))
    return members


def members_among(cursor: Cursor, group_id: str, user_ids: Sequence[str]) -> set[str]:
    """Which of `user_ids` are members of the group: reads only those rows."""
    select = f"SELECT user_id FROM {TABLES.members}"
    found = cursor.fetch_in(select, "user_id", user_ids, where="group_id = ?", params=[group_id])
    return {row["user_id"] for row in found}


def all_members(cursor: Cursor, group_id: str) -> set[str]:
    cursor.execute(f"SELECT user_id FROM {TABLES.members} WHERE group_id = ?", (group_id,))
    return {row["user_id"] for row in cursor.fetchall()}


def users_among(cursor: Cursor, org_id: UUID, user_ids: Sequence[str]) -> set[str]:
    """Which of `user_ids` are users of the organization."""
    select = f"SELECT id FROM {TABLES.users}"
    found = cursor.fetch_in(select, "id", user_ids, where="org_id = ?", params=[str(org_id)])
    return {row["id"] for row in found}


def member_counts(cursor: Cursor, group_ids: Sequence[str]) -> dict[str, int]:
    """How many members each group has, counted on the membership key."""
    select = (
        f"SELECT g.id, (SELECT COUNT(*) FROM {TABLES.members} m WHERE m.group_id = g.id) AS n"
        f" FROM {TABLES.groups} g"
    )
    return {row["id"]: int(row["n"]) for row in cursor.fetch_in(select, "g.id", group_ids)}


def group_members(
    cursor: Cursor, group_id: str, *, after: str | None, before: str | None, limit: int
) -> list[UserRow]:
    """Up to `limit` members of a group in the order of their ids: the first after `after`,
    or the last before `before`. A page reads its own rows alone (a seek on the membership
    key), so it costs the same in a group of any size."""
    if before is not None:
        seek, bound = "user_id < ? ORDER BY user_id DESC", before
    else:
        seek, bound = "user_id > ? ORDER BY user_id", after or ""
    cursor.execute(
        f"SELECT {_USER_COLUMNS}, {_NO_GROUPS} FROM {TABLES.users} WHERE id IN"
        f" (SELECT user_id FROM {TABLES.members} WHERE group_id = ? AND {seek} LIMIT ?)"
        " ORDER BY id",
        (group_id, bound, limit),
    )
    return [_user_row(row) for row in cursor.fetchall()]


# The people search (the console's)

# What a search looks in: a user is found when one of these contains what was typed.
SEARCHED = (
    AttrPath("userName"),
    AttrPath("displayName"),
    AttrPath("name", "formatted"),
    AttrPath("name", "givenName"),
    AttrPath("name", "familyName"),
    AttrPath("emails", "value"),
)
# Up to this many users found by the trigram index (SQLite), the index's rows are sorted;
# past it, the names are walked in order: a search that finds that many finds a page soon.
INDEXED_MATCHES = 5000


def people_text(attributes: dict[str, Any]) -> str:
    """The SEARCHED values, case-folded, one a line: a search (never a line break) is in
    this text exactly when one of the values contains it."""
    found: list[str] = []
    for path in SEARCHED:
        value = attributes.get(path.attribute)
        items = value if isinstance(value, list) else [value]
        for item in items:
            part = item
            if path.sub_attribute is not None:
                part = item.get(path.sub_attribute) if isinstance(item, dict) else None
            if isinstance(part, str):
                found.append(normalize_name(part))
    return "\n".join(found)


def _search_condition(cursor: Cursor, text: str) -> tuple[str, list[Any], str]:
    """The condition a people search adds to the users it reads, its parameters,
    and the FTS5 table to read first when that is faster (SQLite: a few matches of three
    characters or more), or "" to read users in name order."""
    folded = normalize_name(text)
    if cursor.dialect == "postgresql":
        pattern = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{TABLES.users}.people_text LIKE ? ESCAPE '\\'", [f"%{pattern}%"], ""
    contains = (f"instr({TABLES.users}.people_text, ?) > 0", [folded], "")
    if len(folded) < 3 or "\n" in folded:
        return contains
    phrase = '"' + folded.replace('"', '""') + '"'
    cursor.execute(
        f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {TABLES.people} WHERE {TABLES.people} MATCH ?"
        " LIMIT ?) AS found",
        (phrase, INDEXED_MATCHES + 1),
    )
    counted = cursor.fetchone()
    if counted is None or int(counted["n"]) > INDEXED_MATCHES:
        return contains
    joined = f"{TABLES.people} MATCH ? AND {TABLES.users}.seq = {TABLES.people}.rowid"
    return joined, [phrase], TABLES.people


def users_by_name(
    cursor: Cursor,
    org_id: UUID,
    where: Filter | None,
    *,
    search: str = "",
    after: str | None,
    before: str | None,
    limit: int,
) -> list[UserRow]:
    """Up to `limit` of the organization's users a filter and a people search select, in
    userName order: the first after the user whose id is `after`, or the last before the one
    whose id is `before`. Without a search, or with one that finds many, the organization's
    userName index is read in order, so a page costs its own rows and those skipped, never a
    count or a sort of every match; a search that finds few reads them from its index."""
    users = TABLES.users
    conditions: list[str] = [f"{users}.org_id = ?"]
    params: list[Any] = [str(org_id)]
    first = ""
    if search:
        condition, found, first = _search_condition(cursor, search)
        conditions.append(condition)
        params.extend(found)
    if where is not None:
        sql, found = compile_filter(where, USERS, cursor.dialect)
        conditions.append(f"({sql})")
        params.extend(found)
    order = "ASC"
    if after is not None or before is not None:
        order = "DESC" if before is not None else "ASC"
        # userNames are unique in an organization (ledger.names): the name alone is the key.
        conditions.append(
            f"{users}.user_name_norm {'<' if before is not None else '>'}"
            f" (SELECT user_name_norm FROM {TABLES.users} WHERE id = ?)"
        )
        params.append(before if before is not None else after)
    # CROSS JOIN: SQLite reads the FTS5 table first (its plan would otherwise walk names).
    tables = f"{first} CROSS JOIN {users}" if first else users
    columns = ", ".join(f"{users}.{column}" for column in _USER_COLUMNS.split(", "))
    cursor.execute(
        f"SELECT {columns}, {_NO_GROUPS} FROM {tables} WHERE {' AND '.join(conditions)}"
        f" ORDER BY {users}.user_name_norm {order} LIMIT ?",
        (*params, limit),
    )
    rows = [_user_row(row) for row in cursor.fetchall()]
    return rows[::-1] if order == "DESC" else rows
