"""The SCIM read model: one row per live user, kept up to date from the ledger's events.

The projection writes rows and its tracking position in one transaction (see
`projections.runner`). Queries serve the SCIM API; filters compile to SQL here, so rows are
never loaded to be filtered in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

import msgspec

from scimledger.ledger.users import User, apply_changes, normalize_user_name
from scimledger.projections.filters import (
    And,
    AttrPath,
    Compare,
    Filter,
    FilterError,
    Not,
    Or,
    ValuePath,
)
from scimledger.projections.sql import Cursor, Row

NAME = "scim_read_model_v1"

DDL = (
    """CREATE TABLE IF NOT EXISTS scim_users (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        user_name_norm TEXT NOT NULL,
        external_id TEXT,
        active BOOLEAN NOT NULL,
        version BIGINT NOT NULL,
        created TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        attributes TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS scim_users_org_name ON scim_users (org_id, user_name_norm)",
    "CREATE INDEX IF NOT EXISTS scim_users_org_seq ON scim_users (org_id, seq)",
    "CREATE INDEX IF NOT EXISTS scim_users_org_external ON scim_users (org_id, external_id)",
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def scim_datetime(moment: datetime) -> str:
    """xsd:dateTime in UTC with millisecond precision, as SCIM clients expect."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class UserRow:
    id: str
    attributes: dict[str, Any]
    active: bool
    version: int
    created: str
    last_modified: str


def _user_row(row: Row) -> UserRow:
    return UserRow(
        id=row["id"],
        attributes=_decode(row["attributes"]),
        active=bool(row["active"]),
        version=int(row["version"]),
        created=row["created"],
        last_modified=row["last_modified"],
    )


class ScimUsersProjection:
    """Applies user events to the `scim_users` table."""

    name = NAME
    ddl: tuple[str, ...] = DDL
    topics: tuple[type, ...] = (
        User.UserCreated,
        User.ProfileUpdated,
        User.UserDeactivated,
        User.UserReactivated,
        User.PasswordChanged,
        User.UserDeleted,
    )

    def __init__(self) -> None:
        self._handlers: dict[type, Callable[[Cursor, Any, int], None]] = {
            User.UserCreated: self._created,
            User.ProfileUpdated: self._profile_updated,
            User.UserDeactivated: partial(self._set_active, False),
            User.UserReactivated: partial(self._set_active, True),
            User.PasswordChanged: self._touched,
            User.UserDeleted: self._deleted,
        }

    def apply(self, cursor: Cursor, event: Any, position: int) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(cursor, event, position)

    def _created(self, cursor: Cursor, event: Any, position: int) -> None:
        attributes = event.attributes
        stamp = scim_datetime(event.timestamp)
        cursor.execute(
            "INSERT INTO scim_users (id, org_id, seq, user_name_norm, external_id, active,"
            " version, created, last_modified, attributes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(event.originator_id),
                str(event.org_id),
                position,
                normalize_user_name(attributes["userName"]),
                attributes.get("externalId"),
                bool(event.active),
                event.originator_version,
                stamp,
                stamp,
                _encode(attributes).decode(),
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
            "UPDATE scim_users SET attributes = ?, user_name_norm = ?, external_id = ?,"
            " version = ?, last_modified = ? WHERE id = ?",
            (
                _encode(attributes).decode(),
                normalize_user_name(attributes["userName"]),
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

    def _touched(self, cursor: Cursor, event: Any, position: int) -> None:
        cursor.execute(
            "UPDATE scim_users SET version = ?, last_modified = ? WHERE id = ?",
            (event.originator_version, scim_datetime(event.timestamp), str(event.originator_id)),
        )

    def _deleted(self, cursor: Cursor, event: Any, position: int) -> None:
        cursor.execute("DELETE FROM scim_users WHERE id = ?", (str(event.originator_id),))


# Queries


@dataclass(frozen=True)
class Page:
    total: int
    users: list[UserRow]


def get_user(cursor: Cursor, org_id: UUID, user_id: str) -> UserRow | None:
    cursor.execute(
        "SELECT id, attributes, active, version, created, last_modified FROM scim_users"
        " WHERE id = ? AND org_id = ?",
        (user_id, str(org_id)),
    )
    row = cursor.fetchone()
    return _user_row(row) if row is not None else None


def list_users(
    cursor: Cursor, org_id: UUID, where: Filter | None, start_index: int, count: int
) -> Page:
    """One page of an organization's users in a stable order (creation order)."""
    condition, params = "", list[Any]()
    if where is not None:
        sql, params = _compile(where, cursor.dialect)
        condition = f" AND ({sql})"
    cursor.execute(
        f"SELECT COUNT(*) AS n FROM scim_users WHERE org_id = ?{condition}",  # noqa: S608
        (str(org_id), *params),
    )
    found = cursor.fetchone()
    total = int(found["n"]) if found is not None else 0
    if count == 0 or start_index > total:
        return Page(total=total, users=[])
    cursor.execute(
        "SELECT id, attributes, active, version, created, last_modified FROM scim_users"  # noqa: S608
        f" WHERE org_id = ?{condition} ORDER BY seq LIMIT ? OFFSET ?",
        (str(org_id), *params, count, start_index - 1),
    )
    return Page(total=total, users=[_user_row(row) for row in cursor.fetchall()])


# Filter compilation: attribute -> (column, how values compare).


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # "text_ci" (normalized), "text", "bool", "time"
    normalize: Callable[[str], str] | None = None
    nullable: bool = False


def _scim_time(value: str) -> str:
    """A filter's dateTime in the stored form, so times compare as times, not as text."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise FilterError(f"{value!r} is not an xsd:dateTime") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return scim_datetime(moment)


_COLUMNS: dict[str, _Column] = {
    "username": _Column("user_name_norm", "text_ci", normalize_user_name),
    "externalid": _Column("external_id", "text", nullable=True),
    "id": _Column("id", "text"),
    "active": _Column("active", "bool"),
    "meta.created": _Column("created", "time", _scim_time),
    "meta.lastmodified": _Column("last_modified", "time", _scim_time),
}

_USER_URN = "urn:ietf:params:scim:schemas:core:2.0:user"
_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _column_for(path: AttrPath) -> _Column:
    if path.urn is not None and path.urn.lower() != _USER_URN:
        raise FilterError(f"filtering on {path} is not supported")
    key = path.attribute.lower() + (f".{path.sub_attribute.lower()}" if path.sub_attribute else "")
    column = _COLUMNS.get(key)
    if column is None:
        supported = ", ".join(
            sorted({"userName", "externalId", "id", "active", "meta.created", "meta.lastModified"})
        )
        raise FilterError(
            f"filtering on {path} is not supported; supported attributes: {supported}"
        )
    return column


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compile(node: Filter, dialect: str) -> tuple[str, list[Any]]:
    if isinstance(node, And | Or):
        left, lp = _compile(node.left, dialect)
        right, rp = _compile(node.right, dialect)
        joiner = "AND" if isinstance(node, And) else "OR"
        return f"({left}) {joiner} ({right})", [*lp, *rp]
    if isinstance(node, Not):
        inner, params = _compile(node.inner, dialect)
        return f"NOT ({inner})", params
    if isinstance(node, ValuePath):
        raise FilterError(f"value filters on {node.path} are not supported")
    return _compile_compare(node, dialect)


def _compile_compare(node: Compare, dialect: str) -> tuple[str, list[Any]]:
    """A condition that is never NULL, so `not` and `or` treat an absent value as false."""
    column = _column_for(node.path)
    sql, params = _condition(column, node, dialect)
    if not column.nullable or node.op == "pr" or node.value is None:
        return sql, params
    if node.op == "ne":
        return f"({column.name} IS NULL OR {sql})", params
    return f"({column.name} IS NOT NULL AND {sql})", params


def _condition(column: _Column, node: Compare, dialect: str) -> tuple[str, list[Any]]:
    col = column.name
    if node.op == "pr":
        return f"{col} IS NOT NULL", []
    value = node.value
    if value is None:
        if node.op == "eq":
            return f"{col} IS NULL", []
        if node.op == "ne":
            return f"{col} IS NOT NULL", []
        raise FilterError(f"operator {node.op} cannot compare with null")
    if column.kind == "bool":
        if not isinstance(value, bool) or node.op not in ("eq", "ne"):
            raise FilterError(f"{node.path} is boolean: use eq or ne with true or false")
        return f"{col} {_SQL_OPS[node.op]} ?", [value]
    if not isinstance(value, str):
        raise FilterError(f"{node.path} is a string: compare it with a quoted value")
    if column.kind == "time" and node.op in ("co", "sw", "ew"):
        raise FilterError(f"operator {node.op} does not apply to {node.path}")
    if column.normalize is not None:
        value = column.normalize(value)
    if node.op in ("co", "sw", "ew"):
        if value == "":
            return f"{col} IS NOT NULL", []  # every string contains the empty string
        if dialect == "sqlite":
            # SQLite's LIKE ignores ASCII case; these keep case-exact columns exact.
            return {
                "co": (f"instr({col}, ?) > 0", [value]),
                "sw": (f"substr({col}, 1, length(?)) = ?", [value, value]),
                "ew": (
                    f"(length({col}) >= length(?) AND substr({col}, -length(?)) = ?)",
                    [value, value, value],
                ),
            }[node.op]
        pattern = _like_escape(value)
        pattern = {"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[node.op]
        return f"{col} LIKE ? ESCAPE '\\'", [pattern]
    collate = ' COLLATE "C"' if dialect == "postgresql" and node.op not in ("eq", "ne") else ""
    return f"{col}{collate} {_SQL_OPS[node.op]} ?", [value]


def compile_filter(node: Filter, dialect: str) -> tuple[str, list[Any]]:
    """Compiles a filter to a SQL condition on `scim_users` (exposed for tests)."""
    return _compile(node, dialect)
