"""The SCIM read model: users, groups and memberships, kept up to date from the ledger.

The projection writes rows and its tracking position in one transaction (see
`projections.runner`). Queries serve the SCIM API; filters compile to SQL, so rows are never
loaded to be filtered in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
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

NAME = "scim_read_model_v2"


def ddl(dialect: str) -> tuple[str, ...]:
    # `search` holds the attributes with every string case-folded, for filters: JSONB on
    # PostgreSQL, JSON text on SQLite.
    json_type = "JSONB" if dialect == "postgresql" else "TEXT"
    return (
        f"""CREATE TABLE IF NOT EXISTS scim_users (
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
        *_DDL,
    )


_DDL = (
    "CREATE INDEX IF NOT EXISTS scim_users_org_name ON scim_users (org_id, user_name_norm)",
    "CREATE INDEX IF NOT EXISTS scim_users_org_seq ON scim_users (org_id, seq)",
    "CREATE INDEX IF NOT EXISTS scim_users_org_external ON scim_users (org_id, external_id)",
    """CREATE TABLE IF NOT EXISTS scim_groups (
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
    "CREATE INDEX IF NOT EXISTS scim_groups_org_name ON scim_groups (org_id, display_name_norm)",
    "CREATE INDEX IF NOT EXISTS scim_groups_org_seq ON scim_groups (org_id, seq)",
    """CREATE TABLE IF NOT EXISTS scim_group_members (
        group_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (group_id, user_id)
    )""",
    "CREATE INDEX IF NOT EXISTS scim_group_members_user ON scim_group_members (user_id)",
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class UserRow:
    id: str
    attributes: dict[str, Any]
    active: bool
    version: int
    created: str
    last_modified: str


@dataclass(frozen=True)
class GroupRow:
    id: str
    display_name: str
    external_id: str | None
    version: int
    created: str
    last_modified: str


@dataclass(frozen=True)
class Member:
    """One member of a group, or one group of a user: its id and display name."""

    id: str
    display: str


def _user_row(row: Row) -> UserRow:
    return UserRow(
        id=row["id"],
        attributes=_decode(row["attributes"]),
        active=bool(row["active"]),
        version=int(row["version"]),
        created=row["created"],
        last_modified=row["last_modified"],
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


Handler = Callable[[Cursor, Any, int], None]


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


class ScimProjection:
    """Applies user and group events to the SCIM read model's tables."""

    name = NAME
    raw = False
    tables: tuple[str, ...] = ("scim_users", "scim_groups", "scim_group_members")

    def __init__(self) -> None:
        self._handlers: dict[type, Handler] = {
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

    def ddl(self, dialect: str) -> tuple[str, ...]:
        return ddl(dialect)

    def begin(self, cursor: Cursor) -> None:
        pass

    def end(self, cursor: Cursor) -> None:
        pass

    def apply(self, cursor: Cursor, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(cursor, event, position)

    # Users

    def _user_created(self, cursor: Cursor, event: Any, position: int) -> None:
        attributes = event.attributes
        stamp = scim_datetime(event.timestamp)
        cursor.execute(
            "INSERT INTO scim_users (id, org_id, seq, user_name_norm, external_id, active,"
            " version, created, last_modified, attributes, search)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(event.originator_id),
                str(event.org_id),
                position,
                normalize_name(attributes["userName"]),
                attributes.get("externalId"),
                bool(event.active),
                event.originator_version,
                stamp,
                stamp,
                _encode(attributes).decode(),
                _encode(_folded(attributes)).decode(),
            ),
        )

    def _profile_updated(self, cursor: Cursor, event: Any, position: int) -> None:
        cursor.execute(
            "SELECT attributes FROM scim_users WHERE id = ?", (str(event.originator_id),)
        )
        row = cursor.fetchone()
        if row is None:
            return
        attributes = apply_changes(_decode(row["attributes"]), event.changes)
        cursor.execute(
            "UPDATE scim_users SET attributes = ?, search = ?, user_name_norm = ?,"
            " external_id = ?, version = ?, last_modified = ? WHERE id = ?",
            (
                _encode(attributes).decode(),
                _encode(_folded(attributes)).decode(),
                normalize_name(attributes["userName"]),
                attributes.get("externalId"),
                event.originator_version,
                scim_datetime(event.timestamp),
                str(event.originator_id),
            ),
        )

    def _set_active(self, active: bool, cursor: Cursor, event: Any, position: int) -> None:
        cursor.execute(
            "UPDATE scim_users SET active = ?, version = ?, last_modified = ? WHERE id = ?",
            (
                active,
                event.originator_version,
                scim_datetime(event.timestamp),
                str(event.originator_id),
            ),
        )

    def _user_touched(self, cursor: Cursor, event: Any, position: int) -> None:
        cursor.execute(
            "UPDATE scim_users SET version = ?, last_modified = ? WHERE id = ?",
            (event.originator_version, scim_datetime(event.timestamp), str(event.originator_id)),
        )

    def _user_deleted(self, cursor: Cursor, event: Any, position: int) -> None:
        user_id = str(event.originator_id)
        cursor.execute("DELETE FROM scim_users WHERE id = ?", (user_id,))
        # A deleted user leaves every group (a deactivated one stays a member).
        cursor.execute("DELETE FROM scim_group_members WHERE user_id = ?", (user_id,))

    # Groups

    def _group_created(self, cursor: Cursor, event: Any, position: int) -> None:
        stamp = scim_datetime(event.timestamp)
        cursor.execute(
            "INSERT INTO scim_groups (id, org_id, seq, display_name, display_name_norm,"
            " external_id, version, created, last_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(event.originator_id),
                str(event.org_id),
                position,
                event.display_name,
                normalize_name(event.display_name),
                event.external_id,
                event.originator_version,
                stamp,
                stamp,
            ),
        )

    def _group_touched(self, cursor: Cursor, event: Any) -> None:
        cursor.execute(
            "UPDATE scim_groups SET version = ?, last_modified = ? WHERE id = ?",
            (event.originator_version, scim_datetime(event.timestamp), str(event.originator_id)),
        )

    def _group_renamed(self, cursor: Cursor, event: Any, position: int) -> None:
        cursor.execute(
            "UPDATE scim_groups SET display_name = ?, display_name_norm = ? WHERE id = ?",
            (event.display_name, normalize_name(event.display_name), str(event.originator_id)),
        )
        self._group_touched(cursor, event)

    def _group_external_id_changed(self, cursor: Cursor, event: Any, position: int) -> None:
        cursor.execute(
            "UPDATE scim_groups SET external_id = ? WHERE id = ?",
            (event.external_id, str(event.originator_id)),
        )
        self._group_touched(cursor, event)

    def _members_added(self, cursor: Cursor, event: Any, position: int) -> None:
        group_id = str(event.originator_id)
        # A user deleted before this event was applied is not a member.
        cursor.executemany(
            "INSERT INTO scim_group_members (group_id, user_id)"
            " SELECT ?, id FROM scim_users WHERE id = ? ON CONFLICT DO NOTHING",
            [(group_id, str(user_id)) for user_id in event.user_ids],
        )
        self._group_touched(cursor, event)

    def _members_removed(self, cursor: Cursor, event: Any, position: int) -> None:
        group_id = str(event.originator_id)
        cursor.executemany(
            "DELETE FROM scim_group_members WHERE group_id = ? AND user_id = ?",
            [(group_id, str(user_id)) for user_id in event.user_ids],
        )
        self._group_touched(cursor, event)

    def _group_deleted(self, cursor: Cursor, event: Any, position: int) -> None:
        group_id = str(event.originator_id)
        cursor.execute("DELETE FROM scim_groups WHERE id = ?", (group_id,))
        cursor.execute("DELETE FROM scim_group_members WHERE group_id = ?", (group_id,))


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


def _page(cursor: Cursor, target: Target, columns: str, org_id: UUID, query: Query) -> Page:
    """One page of an organization's resources, ordered, ties in creation order."""
    table = target.table
    condition, params = "", list[Any]()
    if query.where is not None:
        sql, params = compile_filter(query.where, target, cursor.dialect)
        condition = f" AND ({sql})"
    order = "seq"
    if query.sort_by is not None:
        key = sort_expression(query.sort_by, target, cursor.dialect)
        direction = "DESC" if query.descending else "ASC"
        # Resources without the attribute come last ascending, first descending.
        order = f"({key}) IS NULL {direction}, {key} {direction}, seq"
    cursor.execute(
        f"SELECT COUNT(*) AS n FROM {table} WHERE org_id = ?{condition}",  # noqa: S608
        (str(org_id), *params),
    )
    found = cursor.fetchone()
    total = int(found["n"]) if found is not None else 0
    if query.count == 0 or query.start_index > total:
        return Page(total=total, rows=[])
    cursor.execute(
        f"SELECT {columns} FROM {table}"  # noqa: S608 (built from constants and the schema)
        f" WHERE org_id = ?{condition} ORDER BY {order} LIMIT ? OFFSET ?",
        (str(org_id), *params, query.count, query.start_index - 1),
    )
    return Page(total=total, rows=cursor.fetchall())


_USER_COLUMNS = "id, attributes, active, version, created, last_modified"
_GROUP_COLUMNS = "id, display_name, external_id, version, created, last_modified"


def get_user(cursor: Cursor, org_id: UUID, user_id: str) -> UserRow | None:
    cursor.execute(
        f"SELECT {_USER_COLUMNS} FROM scim_users WHERE id = ? AND org_id = ?",  # noqa: S608
        (user_id, str(org_id)),
    )
    row = cursor.fetchone()
    return _user_row(row) if row is not None else None


def list_users(cursor: Cursor, org_id: UUID, query: Query) -> tuple[int, list[UserRow]]:
    page = _page(cursor, USERS, _USER_COLUMNS, org_id, query)
    return page.total, [_user_row(row) for row in page.rows]


def get_group(cursor: Cursor, org_id: UUID, group_id: str) -> GroupRow | None:
    cursor.execute(
        f"SELECT {_GROUP_COLUMNS} FROM scim_groups WHERE id = ? AND org_id = ?",  # noqa: S608
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
            "SELECT m.group_id, u.id, u.attributes FROM scim_group_members m"  # noqa: S608
            f" JOIN scim_users u ON u.id = m.user_id WHERE m.group_id IN ({marks})"
            " ORDER BY m.group_id, u.seq",
            tuple(chunk),
        )
        for row in cursor.fetchall():
            attributes = _decode(row["attributes"])
            display = attributes.get("displayName") or attributes["userName"]
            members[row["group_id"]].append(Member(id=row["id"], display=display))
    return members


def groups_of(cursor: Cursor, user_ids: Sequence[str]) -> dict[str, list[Member]]:
    """Each user's groups (the read-only `groups` attribute), in a stable order."""
    groups: dict[str, list[Member]] = {user_id: [] for user_id in user_ids}
    for chunk in _chunks(user_ids):
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            "SELECT m.user_id, g.id, g.display_name FROM scim_group_members m"  # noqa: S608
            f" JOIN scim_groups g ON g.id = m.group_id WHERE m.user_id IN ({marks})"
            " ORDER BY m.user_id, g.seq",
            tuple(chunk),
        )
        for row in cursor.fetchall():
            groups[row["user_id"]].append(Member(id=row["id"], display=row["display_name"]))
    return groups


def members_among(cursor: Cursor, group_id: str, user_ids: Sequence[str]) -> set[str]:
    """Which of `user_ids` are members of the group: reads only those rows."""
    found: set[str] = set()
    for chunk in _chunks(user_ids):
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            "SELECT user_id FROM scim_group_members"  # noqa: S608
            f" WHERE group_id = ? AND user_id IN ({marks})",
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
            f"SELECT id FROM scim_users WHERE org_id = ? AND id IN ({marks})",  # noqa: S608
            (str(org_id), *chunk),
        )
        found.update(row["id"] for row in cursor.fetchall())
    return found


def group_version(cursor: Cursor, group_id: str) -> int | None:
    cursor.execute("SELECT version FROM scim_groups WHERE id = ?", (group_id,))
    row = cursor.fetchone()
    return int(row["version"]) if row is not None else None
