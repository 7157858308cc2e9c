"""Writes the SCIM read model (projections.scim) from user and group events: each batch
folded in memory and written at its end, with the tracking position, in one transaction (see
`projections.runner`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache, partial
from typing import Any, NamedTuple, TypeVar

import msgspec

from scimledger.ledger.groups import Group
from scimledger.ledger.names import normalize_name
from scimledger.ledger.users import User, apply_changes
from scimledger.projections.scim import NAME, TABLES, ddl, people_text
from scimledger.projections.sql import Cursor, prefixed
from scimledger.projections.sql_filters import scim_datetime

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_org_text = lru_cache(maxsize=1024)(str)  # an organization's id, in each of its users' rows


@dataclass(slots=True)
class _UserRow:
    """A user's row as a batch will write it (its `search` and `people_text` columns are
    made on writing)."""

    id: str
    org_id: str
    seq: int
    user_name_norm: str
    external_id: str | None
    active: bool
    version: int
    created: str
    last_modified: str
    attributes: dict[str, Any]

    def values(self) -> tuple[Any, ...]:
        """The columns `_USER_FIELDS`, `search` and `people_text`, in that order."""
        return (
            *(self.id, self.org_id, self.seq, self.user_name_norm, self.external_id),
            *(self.active, self.version, self.created, self.last_modified),
            _encode(self.attributes).decode(),
            _encode(_folded(self.attributes)).decode(),
            people_text(self.attributes),
        )


@dataclass(slots=True)
class _GroupRow:
    """A group's row as a batch will write it."""

    id: str
    org_id: str
    seq: int
    display_name: str
    display_name_norm: str
    external_id: str | None
    version: int
    created: str
    last_modified: str
    attributes: dict[str, Any]  # the declared extensions' values, by URN

    def values(self) -> tuple[Any, ...]:
        """The columns `_GROUP_FIELDS` and `search`, in that order."""
        return (
            *(self.id, self.org_id, self.seq, self.display_name, self.display_name_norm),
            *(self.external_id, self.version, self.created, self.last_modified),
            _encode(self.attributes).decode(),
            _encode(_folded(self.attributes)).decode(),
        )


_USER_FIELDS = tuple(column.name for column in fields(_UserRow))
_GROUP_FIELDS = tuple(column.name for column in fields(_GroupRow))
_WRITTEN = (*_USER_FIELDS, "search", "people_text")  # what `_UserRow.values` gives
_GROUP_WRITTEN = (*_GROUP_FIELDS, "search")  # what `_GroupRow.values` gives


def _upsert(table: str, fields: Sequence[str]) -> str:
    updates = ", ".join(f"{field} = excluded.{field}" for field in fields[1:])
    return (
        f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})"
        f" ON CONFLICT (id) DO UPDATE SET {updates}"
    )


def _folded(value: Any) -> Any:
    """The value with every string case-folded: every User attribute kept in the document is
    caseExact=false (externalId, the exception, has its own column). (Strings are folded
    where they are found, not in a call each: a rebuild folds every user.)"""
    kind = type(value)
    if kind is dict:
        return {
            key: normalize_name(item) if type(item) is str else _folded(item)
            for key, item in value.items()
        }
    if kind is list:
        return [normalize_name(item) if type(item) is str else _folded(item) for item in value]
    if isinstance(value, str):
        return normalize_name(value)
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
    Group.ExtensionsChanged,
)


class _Change(NamedTuple):
    event: Any
    key: str  # the resource's id
    stamp: str  # the event's time, as stored


_Row = TypeVar("_Row", _UserRow, _GroupRow)


def _touched(rows: dict[str, _Row], change: _Change) -> _Row | None:
    """The row `change` changes, if the batch has it, at the change's version and time."""
    row = rows.get(change.key)
    if row is not None:
        row.version = change.event.originator_version
        row.last_modified = change.stamp
    return row


class _Batch:
    """One batch's effect on the read model, folded in memory and written at its end with one
    statement per kind of change: a round trip per event would bound a rebuild on
    PostgreSQL at a few thousand events a second."""

    def __init__(self) -> None:
        self.users: dict[str, _UserRow] = {}  # rows as they will be written
        self.new_users: set[str] = set()  # created in this batch: not in the table yet
        self.deleted_users: set[str] = set()
        self.deleted_unwritten: dict[str, int] = {}  # org -> users created and deleted in it
        self.groups: dict[str, _GroupRow] = {}
        self.deleted_groups: set[str] = set()
        self.members: dict[str, dict[str, bool]] = {}  # group -> user -> member afterwards


class ScimProjection:
    """Applies user and group events to the SCIM read model's tables."""

    raw = False

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.name = prefix + NAME
        self.tables = prefixed(TABLES, prefix)
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
            Group.MembersAdded: partial(self._membership, True),
            Group.MembersRemoved: partial(self._membership, False),
            Group.GroupDeleted: self._group_deleted,
            Group.ExtensionsChanged: self._group_extensions_changed,
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
            f"SELECT {', '.join(_USER_FIELDS)} FROM {self.tables.users}",
            "id",
            sorted(users),
        ):
            batch.users[row["id"]] = _UserRow(**{**row, "attributes": _decode(row["attributes"])})
        for row in cursor.fetch_in(
            f"SELECT {', '.join(_GROUP_FIELDS)} FROM {self.tables.groups}",
            "id",
            sorted(groups),
        ):
            batch.groups[row["id"]] = _GroupRow(**{**row, "attributes": _decode(row["attributes"])})

    def _count(self, cursor: Cursor, batch: _Batch) -> None:
        """Keeps each organization's counts (before the deleted users' rows go)."""
        added: dict[str, int] = {}
        for user_id in batch.new_users:
            org_id = batch.users[user_id].org_id
            added[org_id] = added.get(org_id, 0) + 1
        gone: dict[str, int] = {}  # rows about to be deleted
        for row in cursor.fetch_in(
            f"SELECT org_id FROM {self.tables.users}", "id", sorted(batch.deleted_users)
        ):
            gone[row["org_id"]] = gone.get(row["org_id"], 0) + 1
        unwritten = batch.deleted_unwritten
        cursor.executemany(
            f"INSERT INTO {self.tables.counts} AS c (org_id, users, deleted) VALUES (?, ?, ?)"
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
            (new if user_id in batch.new_users else changed).append(user.values())
        cursor.insert_rows(self.tables.users, _WRITTEN, new)
        cursor.executemany(_upsert(self.tables.users, _WRITTEN), changed)
        self._count(cursor, batch)
        deleted = [(user_id,) for user_id in sorted(batch.deleted_users)]
        cursor.executemany(f"DELETE FROM {self.tables.users} WHERE id = ?", deleted)
        # A deleted user leaves every group (a deactivated one stays a member).
        cursor.executemany(f"DELETE FROM {self.tables.members} WHERE user_id = ?", deleted)
        cursor.executemany(
            _upsert(self.tables.groups, _GROUP_WRITTEN),
            [group.values() for group in batch.groups.values()],
        )
        deleted = [(group_id,) for group_id in sorted(batch.deleted_groups)]
        cursor.executemany(f"DELETE FROM {self.tables.groups} WHERE id = ?", deleted)
        cursor.executemany(f"DELETE FROM {self.tables.members} WHERE group_id = ?", deleted)
        changes = [
            (group_id, user_id, member)
            for group_id, users in batch.members.items()
            for user_id, member in users.items()
        ]
        cursor.executemany(
            f"DELETE FROM {self.tables.members} WHERE group_id = ? AND user_id = ?",
            [(group_id, user_id) for group_id, user_id, member in changes if not member],
        )
        # A user deleted before this event was applied is not a member.
        cursor.executemany(
            f"INSERT INTO {self.tables.members} (group_id, user_id)"
            f" SELECT ?, id FROM {self.tables.users} WHERE id = ? ON CONFLICT DO NOTHING",
            [(group_id, user_id) for group_id, user_id, member in changes if member],
        )

    # Users

    def _user_created(self, batch: _Batch, change: _Change, position: int) -> None:
        event, key, stamp = change.event, change.key, change.stamp
        attributes = event.attributes
        batch.new_users.add(key)
        batch.users[key] = _UserRow(
            id=key,
            org_id=_org_text(event.org_id),
            seq=position,
            user_name_norm=normalize_name(attributes["userName"]),
            external_id=attributes.get("externalId"),
            active=bool(event.active),
            version=event.originator_version,
            created=stamp,
            last_modified=stamp,
            attributes=attributes,
        )

    def _profile_updated(self, batch: _Batch, change: _Change, position: int) -> None:
        user = _touched(batch.users, change)
        if user is None:
            return
        attributes = apply_changes(user.attributes, change.event.changes)
        user.attributes = attributes
        user.user_name_norm = normalize_name(attributes["userName"])
        user.external_id = attributes.get("externalId")

    def _set_active(self, active: bool, batch: _Batch, change: _Change, position: int) -> None:
        user = _touched(batch.users, change)
        if user is not None:
            user.active = active

    def _user_touched(self, batch: _Batch, change: _Change, position: int) -> None:
        _touched(batch.users, change)

    def _user_deleted(self, batch: _Batch, change: _Change, position: int) -> None:
        key = change.key
        user = batch.users.pop(key, None)
        if key in batch.new_users:
            batch.new_users.discard(key)
            assert user is not None
            org_id = user.org_id
            batch.deleted_unwritten[org_id] = batch.deleted_unwritten.get(org_id, 0) + 1
        else:
            batch.deleted_users.add(key)

    # Groups

    def _group_created(self, batch: _Batch, change: _Change, position: int) -> None:
        event, stamp = change.event, change.stamp
        batch.groups[change.key] = _GroupRow(
            id=change.key,
            org_id=_org_text(event.org_id),
            seq=position,
            display_name=event.display_name,
            display_name_norm=normalize_name(event.display_name),
            external_id=event.external_id,
            version=event.originator_version,
            created=stamp,
            last_modified=stamp,
            attributes={},
        )

    def _group_extensions_changed(self, batch: _Batch, change: _Change, position: int) -> None:
        group = _touched(batch.groups, change)
        if group is not None:
            group.attributes = apply_changes(group.attributes, change.event.changes)

    def _group_renamed(self, batch: _Batch, change: _Change, position: int) -> None:
        group = _touched(batch.groups, change)
        if group is not None:
            group.display_name = change.event.display_name
            group.display_name_norm = normalize_name(change.event.display_name)

    def _group_external_id_changed(self, batch: _Batch, change: _Change, position: int) -> None:
        group = _touched(batch.groups, change)
        if group is not None:
            group.external_id = change.event.external_id

    def _membership(self, member: bool, batch: _Batch, change: _Change, position: int) -> None:
        _touched(batch.groups, change)
        members = batch.members.setdefault(change.key, {})
        for user_id in change.event.user_ids:
            members[str(user_id)] = member

    def _group_deleted(self, batch: _Batch, change: _Change, position: int) -> None:
        batch.groups.pop(change.key, None)
        batch.members.pop(change.key, None)
        batch.deleted_groups.add(change.key)
