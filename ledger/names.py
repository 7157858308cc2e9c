"""The NameIndex aggregate: keeps a name unique per organization, case-insensitively.

Used for users' `userName` and groups' `displayName`. An index is saved atomically with the
events of the resource that claims or releases it, so two concurrent claims of one name
conflict in the event store and exactly one wins. Its events are write-side bookkeeping; the
resource's own events carry the actor and request.
"""

from __future__ import annotations

import hashlib
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
        """A group's displayName index's id (and, before names were keyed, a userName's)."""
        return uuid5(NAMESPACE, f"{org_id}:{kind}:{normalize_name(name)}")

    @staticmethod
    def keyed_id(
        org_id: UUID, kind: str, name: str, key: bytes, *, normalized: bool = True
    ) -> UUID:
        """A userName index's id: a keyed hash (BLAKE2b) of the name (ledger.keys' index key), so
        that the id of an erased person's index cannot be matched to a guessed name by
        whoever cannot read that key. `normalized=False`: of the name as given (a declared
        unique value, in the form it is compared in)."""
        compared = normalize_name(name) if normalized else name
        message = f"{org_id}:{kind}:{compared}".encode()
        # BLAKE2b keyed is a MAC of its own (RFC 7693), and 20 times cheaper here than
        # OpenSSL's HMAC-SHA256, which looks its digest up on every call.
        digest = bytearray(hashlib.blake2b(message, key=key, digest_size=16).digest())
        digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: made as its user chose (RFC 9562)
        digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC's variant
        return UUID(bytes=bytes(digest))

    @classmethod
    def claimed(
        cls, index_id: UUID, org_id: UUID, kind: str, name: str, owner_id: UUID
    ) -> NameIndex:
        """A new index of `name`, with the id given (see keyed_id), claimed by `owner_id`."""
        index: NameIndex = cls._create(
            cls.NameClaimed, id=index_id, org_id=org_id, kind=kind, name=name, owner_id=owner_id
        )
        return index

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
