"""The events feed: an organization's changes to its users and groups, in log order.

It is read from the audit trail, which has one entry per change, under the same action
names (one vocabulary: `user.created`, `group.members_added`, ...), with the resource as it
stood right after the change (`data`; none once deleted). A change is known by its position
in the log, which neither a restart nor a rebuild changes (a rebuild applies the same events
at the same positions); the log's positions have gaps, and a page starts after a position,
never at one, so no gap is tripped on.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from scimledger.projections.audit import ACTIONS, RESOURCES, TABLES, stored_changes
from scimledger.projections.sql import Cursor

# Every type of change the feed has: the audit trail's actions on users and groups.
TYPES = tuple(action for action in ACTIONS if action.startswith(("user.", "group.")))


class UnknownType(ValueError):
    """A type of change the feed does not have."""


def chosen_types(kinds: Iterable[str]) -> list[str]:
    """The types of change asked for (the feed's `types`, a webhook's), each once, in the
    order given, blanks ignored; UnknownType names the first the feed does not have."""
    chosen = list(dict.fromkeys(kind.strip() for kind in kinds if kind.strip()))
    unknown = [kind for kind in chosen if kind not in TYPES]
    if unknown:
        raise UnknownType(f"unknown type {unknown[0][:100]!r}; the types are {', '.join(TYPES)}")
    return chosen


class Change(msgspec.Struct, frozen=True, gc=False):  # gc: a page makes a thousand
    position: int
    type: str
    occurred_at: str
    subject_type: str
    subject_id: str
    actor_kind: str
    actor_id: str
    actor_name: str
    changes: str  # JSON: each attribute's value before and after, as the audit trail has it
    data: str | None  # JSON: the subject's state after the change (projections.audit)


def page(
    cursor: Cursor, org_id: str, after: int, types: tuple[str, ...], limit: int
) -> list[Change]:
    """The organization's first `limit` changes after position `after` (of `types`, if any)."""
    # On SQLite the organization's index in log order reads them (`+action`: not the
    # action's, whose entries would all be read and sorted); PostgreSQL plans for itself.
    action = "+action" if cursor.dialect == "sqlite" else "action"
    if types:
        kinds = f"{action} IN ({', '.join('?' * len(types))})"
        params: list[object] = [org_id, after, *types, limit]
    else:
        kinds = f"subject_type IN ({', '.join('?' * len(RESOURCES))})"
        params = [org_id, after, *RESOURCES, limit]
    rows = cursor.fetch_tuples(
        "SELECT position, action, occurred_at, subject_type, subject_id, actor_kind, actor_id,"
        f" actor_name, changes, data FROM {TABLES.entries}"
        f" WHERE org_id = ? AND position > ? AND {kinds} ORDER BY position LIMIT ?",
        params,
    )
    changes: list[Change] = []
    for position, kind, at, subject_type, subject_id, actor_kind, actor_id, actor, *rest in rows:
        text, data = rest
        changes.append(
            Change(
                position,
                kind,
                at,
                subject_type,
                subject_id,
                actor_kind,
                actor_id,
                actor,
                stored_changes(text, data),  # a user's creation's are in its data
                data,
            )
        )
    return changes
