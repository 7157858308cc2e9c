"""The NameIndex aggregate: keeps a name unique per organization, case-insensitively.

Used for users' `userName` and groups' `displayName`. An index is saved atomically with the
events of the resource that claims or releases it, so two concurrent claims of one name
conflict in the event store and exactly one wins. Its events are write-side bookkeeping; the
resource's own events carry the actor and request.
"""

from __future__ import annotations

import unicodedata
from typing import Literal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

NAMESPACE = UUID("0d7a52e4-5a8b-4f55-a6a4-2f1a8e93c2b1")

NameKind = Literal["userName", "displayName"]


def normalize_name(name: str) -> str:
    """The form names are compared in: RFC 7643 makes userName and displayName caseExact=false."""
    return unicodedata.normalize("NFC", name).casefold()


class NameIndex(Aggregate):
    class NameClaimed(Aggregate.Created):
        org_id: UUID
        kind: str
        name: str
        owner_id: UUID

    class NameReclaimed(Aggregate.Event):
        owner_id: UUID

    class NameReleased(Aggregate.Event):
        pass

    @staticmethod
    def create_id(org_id: UUID, kind: str, name: str) -> UUID:
        return uuid5(NAMESPACE, f"{org_id}:{kind}:{normalize_name(name)}")

    @event(NameClaimed)
    def __init__(self, org_id: UUID, kind: str, name: str, owner_id: UUID) -> None:
        self.org_id = org_id
        self.kind = kind
        self.owner_id: UUID | None = owner_id

    @event(NameReclaimed)
    def claim(self, owner_id: UUID) -> None:
        self.owner_id = owner_id

    @event(NameReleased)
    def release(self) -> None:
        self.owner_id = None
