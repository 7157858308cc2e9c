"""The SCIM read model as the ledger's `Directory` (ledger.members): who is a user of an
organization and who is a member of a group, for planning membership changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from uuid import UUID

from scimledger.projections import scim
from scimledger.projections.sql import SQL, Cursor


class _Reader:
    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    def users_among(self, org_id: UUID, ids: list[UUID]) -> set[UUID]:
        return {UUID(u) for u in scim.users_among(self._cursor, org_id, [str(u) for u in ids])}

    def members_among(self, group_id: UUID, ids: list[UUID]) -> set[UUID]:
        found = scim.members_among(self._cursor, str(group_id), [str(u) for u in ids])
        return {UUID(u) for u in found}

    def all_members(self, group_id: UUID) -> set[UUID]:
        return {UUID(u) for u in scim.all_members(self._cursor, str(group_id))}


class ScimDirectory:
    """`catch_up` brings the SCIM read model up to the head of the log (its follower's)."""

    def __init__(self, sql: SQL, catch_up: Callable[[], object]) -> None:
        self._sql = sql
        self._catch_up = catch_up

    def catch_up(self) -> None:
        self._catch_up()

    @contextmanager
    def read(self) -> Iterator[_Reader]:
        with self._sql.read() as cursor:
            yield _Reader(cursor)
