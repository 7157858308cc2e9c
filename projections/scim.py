"""The SCIM read model: users, groups and memberships, kept up to date from the ledger.

The projection writes rows and its tracking position in one transaction (see
`projections.runner`). Queries serve the SCIM API; filters compile to SQL, so rows are never
loaded to be filtered in Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple
from uuid import UUID

import msgspec

from scimledger.ledger.groups import Group
from scimledger.ledger.names import normalize_name
from scimledger.ledger.schemas import CORE_GROUP, CORE_USER, ENTERPRISE, USER
from scimledger.ledger.users import User, apply_changes
from scimledger.projections.filters import AttrPath, Filter
from scimledger.projections.sql import Cursor, Row
from scimledger.projections.sql_filters import (
    Column,
    Document,
    Membership,
    Target,
    compile_filter,
    filter_time,
    scim_datetime,
    sort_expression,
)

NAME = "scim_read_model_v3"  # v3: user counts per organization
TABLES = ("scim_users", "scim_groups", "scim_group_members", "scim_user_counts")


def ddl(dialect: str, prefix: str = "") -> tuple[str, ...]:
    """The read model's tables; `prefix` names another build of them (a rebuild's), indexes
    included, since index names are global to a database."""
    # `search` holds the attributes with every string case-folded, for filters: JSONB on
    # PostgreSQL, JSON text on SQLite.
    json_type = "JSONB" if dialect == "postgresql" else "TEXT"
    users, groups, members, counts = (prefix + table for table in TABLES)
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
        search {json_type} NOT NULL
    )""",
        f"CREATE INDEX IF NOT EXISTS {users}_org_name ON {users} (org_id, user_name_norm)",
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
        last_modified TEXT NOT NULL
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
    )


_encode = msgspec.json.Encoder().encode
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
    )


_USER_FIELDS = (
    "id",
    "org_id",
    "seq",
    "user_name_norm",
    "external_id",
    "active",
    "version",
    "created",
    "last_modified",
    "attributes",
)
_GROUP_FIELDS = (
    "id",
    "org_id",
    "seq",
    "display_name",
    "display_name_norm",
    "external_id",
    "version",
    "created",
    "last_modified",
)


def _upsert(table: str, fields: Sequence[str]) -> str:
    updates = ", ".join(f"{field} = excluded.{field}" for field in fields[1:])
    return (
        f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})"
        f" ON CONFLICT (id) DO UPDATE SET {updates}"
    )


def _folded(value: Any) -> Any:
    """The value with every string case-folded: every User attribute kept in the document is
    caseExact=false (externalId, the exception, has its own column)."""
    if isinstance(value, str):
        return normalize_name(value)
    if isinstance(value, list):
        return [_folded(item) for item in value]
    if isinstance(value, dict):
        return {key: _folded(item) for key, item in value.items()}
    return value


# Events that change a row written before.
_USER_CHANGES = (
    User.ProfileUpdated,
    User.UserDeactivated,
    User.UserReactivated,
    User.PasswordChanged,
)
_GROUP_CHANGES = (
    Group.GroupRenamed,
    Group.GroupExternalIdChanged,
    Group.MembersAdded,
    Group.MembersRemoved,
)


class _Change(NamedTuple):
    event: Any
    key: str  # the resource's id
    stamp: str  # the event's time, as stored


class _Batch:
    """One batch's effect on the read model, folded in memory and written at its end with one
    statement per kind of change: a round trip per event would bound a rebuild on
    PostgreSQL at a few thousand events a second."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}  # rows as they will be written
        self.new_users: set[str] = set()  # created in this batch: not in the table yet
        self.deleted_users: set[str] = set()
        self.deleted_unwritten: dict[str, int] = {}  # org -> users created and deleted in it
        self.groups: dict[str, dict[str, Any]] = {}
        self.deleted_groups: set[str] = set()
        self.members: dict[str, dict[str, bool]] = {}  # group -> user -> member afterwards


class ScimProjection:
    """Applies user and group events to the SCIM read model's tables."""

    raw = False

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.name = prefix + NAME
        self.tables: tuple[str, ...] = tuple(prefix + table for table in TABLES)
        users, groups, members, counts = self.tables
        self._users, self._groups, self._members = users, groups, members
        self._counts = counts
        self._handlers: dict[type, Callable[[_Batch, _Change, int], None]] = {
            User.UserCreated: self._user_created,
            User.ProfileUpdated: self._profile_updated,
            User.UserDeactivated: partial(self._set_active, False),
            User.UserReactivated: partial(self._set_active, True),
            User.PasswordChanged: self._user_touched,
            User.UserDeleted: self._user_deleted,
            Group.GroupCreated: self._group_created,
            Group.GroupRenamed: self._group_renamed,
            Group.GroupExternalIdChanged: self._group_external_id_changed,
            Group.MembersAdded: self._members_added,
            Group.MembersRemoved: self._members_removed,
            Group.GroupDeleted: self._group_deleted,
        }
        self.topics: tuple[type, ...] = tuple(self._handlers)
        self._changes: list[tuple[_Change, int]] = []

    def ddl(self, dialect: str) -> tuple[str, ...]:
        return ddl(dialect, self.prefix)

    def prepare(self, event: Any) -> _Change:
        # What does not depend on the batch is worked out here: a replay runs it in its
        # reading thread, beside the thread that writes.
        return _Change(event, str(event.originator_id), scim_datetime(event.timestamp))

    def begin(self, cursor: Cursor) -> None:
        self._changes = []

    def add(self, cursor: Cursor, change: _Change, position: int) -> None:
        self._changes.append((change, position))

    def end(self, cursor: Cursor) -> None:
        changes, self._changes = self._changes, []
        batch = _Batch()
        self._load(cursor, batch, changes)
        for change, position in changes:
            self._handlers[type(change.event)](batch, change, position)
        self._write(cursor, batch)

    def _load(self, cursor: Cursor, batch: _Batch, changes: list[tuple[_Change, int]]) -> None:
        """Reads the rows the batch changes but does not create, in one query per table."""
        users: set[str] = set()
        groups: set[str] = set()
        created: set[str] = set()  # earlier in this batch: nothing to read
        for change, _ in changes:
            event, key = change.event, change.key
            if isinstance(event, User.UserCreated | Group.GroupCreated):
                created.add(key)
            elif key in created:
                continue
            elif isinstance(event, _USER_CHANGES):
                users.add(key)
            elif isinstance(event, _GROUP_CHANGES):
                groups.add(key)
        for row in cursor.fetch_in(
            f"SELECT {', '.join(_USER_FIELDS)} FROM {self._users}",
            "id",
            sorted(users),
        ):
            user = dict(row)
            user["attributes"] = _decode(user["attributes"])
            batch.users[user["id"]] = user
        for row in cursor.fetch_in(
            f"SELECT {', '.join(_GROUP_FIELDS)} FROM {self._groups}",
            "id",
            sorted(groups),
        ):
            batch.groups[row["id"]] = dict(row)

    def _count(self, cursor: Cursor, batch: _Batch) -> None:
        """Keeps each organization's counts (before the deleted users' rows go)."""
        added: dict[str, int] = {}
        for user_id in batch.new_users:
            org_id = batch.users[user_id]["org_id"]
            added[org_id] = added.get(org_id, 0) + 1
        gone: dict[str, int] = {}  # rows about to be deleted
        for row in cursor.fetch_in(
            f"SELECT org_id FROM {self._users}", "id", sorted(batch.deleted_users)
        ):
            gone[row["org_id"]] = gone.get(row["org_id"], 0) + 1
        unwritten = batch.deleted_unwritten
        cursor.executemany(
            f"INSERT INTO {self._counts} AS c (org_id, users, deleted) VALUES (?, ?, ?)"
            " ON CONFLICT (org_id) DO UPDATE"
            " SET users = c.users + excluded.users, deleted = c.deleted + excluded.deleted",
            [
                (
                    org_id,
                    added.get(org_id, 0) - gone.get(org_id, 0),
                    gone.get(org_id, 0) + unwritten.get(org_id, 0),
                )
                for org_id in sorted(added.keys() | gone.keys() | unwritten.keys())
            ],
        )

    def _write(self, cursor: Cursor, batch: _Batch) -> None:
        # Users first: a membership is only written for a user who exists afterwards.
        new: list[tuple[Any, ...]] = []
        changed: list[tuple[Any, ...]] = []
        for user_id, user in batch.users.items():
            row = (
                *(user[field] for field in _USER_FIELDS[:7]),
                user["created"],
                user["last_modified"],
                _encode(user["attributes"]).decode(),
                _encode(_folded(user["attributes"])).decode(),
            )
            (new if user_id in batch.new_users else changed).append(row)
        cursor.insert_rows(self._users, (*_USER_FIELDS, "search"), new)
        cursor.executemany(_upsert(self._users, (*_USER_FIELDS, "search")), changed)
        self._count(cursor, batch)
        deleted = [(user_id,) for user_id in sorted(batch.deleted_users)]
        cursor.executemany(f"DELETE FROM {self._users} WHERE id = ?", deleted)
        # A deleted user leaves every group (a deactivated one stays a member).
        cursor.executemany(f"DELETE FROM {self._members} WHERE user_id = ?", deleted)
        cursor.executemany(
            _upsert(self._groups, _GROUP_FIELDS),
            [
                (
                    *(group[field] for field in _GROUP_FIELDS[:7]),
                    group["created"],
                    group["last_modified"],
                )
                for group in batch.groups.values()
            ],
        )
        deleted = [(group_id,) for group_id in sorted(batch.deleted_groups)]
        cursor.executemany(f"DELETE FROM {self._groups} WHERE id = ?", deleted)
        cursor.executemany(f"DELETE FROM {self._members} WHERE group_id = ?", deleted)
        changes = [
            (group_id, user_id, member)
            for group_id, users in batch.members.items()
            for user_id, member in users.items()
        ]
        cursor.executemany(
            f"DELETE FROM {self._members} WHERE group_id = ? AND user_id = ?",
            [(group_id, user_id) for group_id, user_id, member in changes if not member],
        )
        # A user deleted before this event was applied is not a member.
        cursor.executemany(
            f"INSERT INTO {self._members} (group_id, user_id)"
            f" SELECT ?, id FROM {self._users} WHERE id = ? ON CONFLICT DO NOTHING",
            [(group_id, user_id) for group_id, user_id, member in changes if member],
        )

    # Users

    def _user_created(self, batch: _Batch, change: _Change, position: int) -> None:
        event, key, stamp = change.event, change.key, change.stamp
        attributes = event.attributes
        batch.new_users.add(key)
        batch.users[key] = {
            "id": key,
            "org_id": str(event.org_id),
            "seq": position,
            "user_name_norm": normalize_name(attributes["userName"]),
            "external_id": attributes.get("externalId"),
            "active": bool(event.active),
            "version": event.originator_version,
            "created": stamp,
            "last_modified": stamp,
            "attributes": attributes,
        }

    def _user(self, batch: _Batch, change: _Change) -> dict[str, Any] | None:
        user = batch.users.get(change.key)
        if user is not None:
            user["version"] = change.event.originator_version
            user["last_modified"] = change.stamp
        return user

    def _profile_updated(self, batch: _Batch, change: _Change, position: int) -> None:
        user = self._user(batch, change)
        if user is None:
            return
        attributes = apply_changes(user["attributes"], change.event.changes)
        user["attributes"] = attributes
        user["user_name_norm"] = normalize_name(attributes["userName"])
        user["external_id"] = attributes.get("externalId")

    def _set_active(self, active: bool, batch: _Batch, change: _Change, position: int) -> None:
        user = self._user(batch, change)
        if user is not None:
            user["active"] = active

    def _user_touched(self, batch: _Batch, change: _Change, position: int) -> None:
        self._user(batch, change)

    def _user_deleted(self, batch: _Batch, change: _Change, position: int) -> None:
        key = change.key
        user = batch.users.pop(key, None)
        if key in batch.new_users:
            batch.new_users.discard(key)
            assert user is not None
            org_id = user["org_id"]
            batch.deleted_unwritten[org_id] = batch.deleted_unwritten.get(org_id, 0) + 1
        else:
            batch.deleted_users.add(key)

    # Groups

    def _group_created(self, batch: _Batch, change: _Change, position: int) -> None:
        event, stamp = change.event, change.stamp
        batch.groups[change.key] = {
            "id": change.key,
            "org_id": str(event.org_id),
            "seq": position,
            "display_name": event.display_name,
            "display_name_norm": normalize_name(event.display_name),
            "external_id": event.external_id,
            "version": event.originator_version,
            "created": stamp,
            "last_modified": stamp,
        }

    def _group(self, batch: _Batch, change: _Change) -> dict[str, Any] | None:
        group = batch.groups.get(change.key)
        if group is not None:
            group["version"] = change.event.originator_version
            group["last_modified"] = change.stamp
        return group

    def _group_renamed(self, batch: _Batch, change: _Change, position: int) -> None:
        group = self._group(batch, change)
        if group is not None:
            group["display_name"] = change.event.display_name
            group["display_name_norm"] = normalize_name(change.event.display_name)

    def _group_external_id_changed(self, batch: _Batch, change: _Change, position: int) -> None:
        group = self._group(batch, change)
        if group is not None:
            group["external_id"] = change.event.external_id

    def _members_added(self, batch: _Batch, change: _Change, position: int) -> None:
        self._group(batch, change)
        members = batch.members.setdefault(change.key, {})
        for user_id in change.event.user_ids:
            members[str(user_id)] = True

    def _members_removed(self, batch: _Batch, change: _Change, position: int) -> None:
        self._group(batch, change)
        members = batch.members.setdefault(change.key, {})
        for user_id in change.event.user_ids:
            members[str(user_id)] = False

    def _group_deleted(self, batch: _Batch, change: _Change, position: int) -> None:
        batch.groups.pop(change.key, None)
        batch.members.pop(change.key, None)
        batch.deleted_groups.add(change.key)


# Filter targets


def _lower(text: str) -> str:
    return text.lower()


_TIMES = {
    "meta.created": Column("created", "time", filter_time),
    "meta.lastmodified": Column("last_modified", "time", filter_time),
}

USERS = Target(
    table="scim_users",
    resource_urn=CORE_USER,
    document=Document("search", (USER, ENTERPRISE)),
    multi_valued={"groups": Membership("scim_group_members", "user_id", "group_id")},
    columns={
        "username": Column("user_name_norm", "text", normalize_name),
        "externalid": Column("external_id", "text", nullable=True),
        "id": Column("id", "text", _lower),
        "active": Column("active", "bool"),
        **_TIMES,
    },
)

GROUPS = Target(
    table="scim_groups",
    resource_urn=CORE_GROUP,
    columns={
        "displayname": Column("display_name_norm", "text", normalize_name),
        "externalid": Column("external_id", "text", nullable=True),
        "id": Column("id", "text", _lower),
        **_TIMES,
    },
    multi_valued={"members": Membership("scim_group_members", "group_id", "user_id")},
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
    cursor.execute("SELECT users, deleted FROM scim_user_counts WHERE org_id = ?", (str(org_id),))
    counts = cursor.fetchone()
    total, deleted = (int(counts["users"]), int(counts["deleted"])) if counts else (0, 0)
    if query.count == 0 or query.start_index > total:
        return Page(total=total, rows=[])
    after = marks.get(org_id, query.start_index, deleted)
    condition, params = ("", []) if after is None else (" AND seq > ?", [after])
    offset = 0 if after is not None else query.start_index - 1
    cursor.execute(
        f"SELECT page.*, {joined('page.id')} FROM (SELECT {_USER_COLUMNS}, seq AS seq_"
        f" FROM scim_users WHERE org_id = ?{condition} ORDER BY seq LIMIT ? OFFSET ?) AS page"
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
_GROUP_COLUMNS = "id, display_name, external_id, version, created, last_modified"
_NO_GROUPS = "NULL AS groups_"


def _groups_column(dialect: str) -> Callable[[str], str]:
    """A user's groups as a JSON array of [id, displayName], in the groups' creation order,
    computed in the same statement as the user (the read-only `groups` attribute)."""

    def column(user_id: str) -> str:
        if dialect == "postgresql":
            return (
                "(SELECT json_agg(json_build_array(g.id, g.display_name) ORDER BY g.seq)::text"
                " FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id"
                f" WHERE m.user_id = {user_id}) AS groups_"
            )
        return (
            "(SELECT json_group_array(json_array(id, display_name)) FROM"
            " (SELECT g.id, g.display_name FROM scim_group_members m"
            " JOIN scim_groups g ON g.id = m.group_id"
            f" WHERE m.user_id = {user_id} ORDER BY g.seq)) AS groups_"
        )

    return column


def get_user(
    cursor: Cursor, org_id: UUID, user_id: str, *, with_groups: bool = True
) -> UserRow | None:
    groups = _groups_column(cursor.dialect)("scim_users.id") if with_groups else _NO_GROUPS
    cursor.execute(
        f"SELECT {_USER_COLUMNS}, {groups} FROM scim_users WHERE id = ? AND org_id = ?",
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
) -> tuple[int, list[UserRow]]:
    """A page of the organization's users; with `marks`, an unfiltered list in creation
    order is read from the organization's count and the last page's mark."""
    joined = _groups_column(cursor.dialect) if with_groups else (lambda _: _NO_GROUPS)
    if marks is not None and query.where is None and query.sort_by is None:
        page = _user_walk_page(cursor, org_id, query, joined, marks)
    else:
        page = _page(cursor, USERS, _USER_COLUMNS, org_id, query, joined=joined)
    return page.total, [_user_row(row) for row in page.rows]


def get_group(cursor: Cursor, org_id: UUID, group_id: str) -> GroupRow | None:
    cursor.execute(
        f"SELECT {_GROUP_COLUMNS} FROM scim_groups WHERE id = ? AND org_id = ?",
        (group_id, str(org_id)),
    )
    row = cursor.fetchone()
    return _group_row(row) if row is not None else None


def list_groups(cursor: Cursor, org_id: UUID, query: Query) -> tuple[int, list[GroupRow]]:
    page = _page(cursor, GROUPS, _GROUP_COLUMNS, org_id, query)
    return page.total, [_group_row(row) for row in page.rows]


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def members_of(cursor: Cursor, group_ids: Sequence[str]) -> dict[str, list[Member]]:
    """Each group's members in a stable order, with the users' displayName or userName."""
    members: dict[str, list[Member]] = {group_id: [] for group_id in group_ids}
    for chunk in _chunks(group_ids):
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            "SELECT m.group_id, u.id, u.attributes FROM scim_group_members m"
            f" JOIN scim_users u ON u.id = m.user_id WHERE m.group_id IN ({marks})"
            " ORDER BY m.group_id, u.seq",
            tuple(chunk),
        )
        for row in cursor.fetchall():
            attributes = _decode(row["attributes"])
            display = attributes.get("displayName") or attributes["userName"]
            members[row["group_id"]].append(Member(id=row["id"], display=display))
    return members


def members_among(cursor: Cursor, group_id: str, user_ids: Sequence[str]) -> set[str]:
    """Which of `user_ids` are members of the group: reads only those rows."""
    found: set[str] = set()
    for chunk in _chunks(user_ids):
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            f"SELECT user_id FROM scim_group_members WHERE group_id = ? AND user_id IN ({marks})",
            (group_id, *chunk),
        )
        found.update(row["user_id"] for row in cursor.fetchall())
    return found


def all_members(cursor: Cursor, group_id: str) -> set[str]:
    cursor.execute("SELECT user_id FROM scim_group_members WHERE group_id = ?", (group_id,))
    return {row["user_id"] for row in cursor.fetchall()}


def users_among(cursor: Cursor, org_id: UUID, user_ids: Sequence[str]) -> set[str]:
    """Which of `user_ids` are users of the organization."""
    found: set[str] = set()
    for chunk in _chunks(user_ids):
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            f"SELECT id FROM scim_users WHERE org_id = ? AND id IN ({marks})",
            (str(org_id), *chunk),
        )
        found.update(row["id"] for row in cursor.fetchall())
    return found


def group_version(cursor: Cursor, group_id: str) -> int | None:
    cursor.execute("SELECT version FROM scim_groups WHERE id = ?", (group_id,))
    row = cursor.fetchone()
    return int(row["version"]) if row is not None else None
