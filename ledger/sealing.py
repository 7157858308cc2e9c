"""Personal data sealed in the log: each user's encrypted with their own data key
(ledger.keys), so that erasing the key erases it from every event that holds it.

The mapper (the library's, through its own extension point, `construct_mapper`) seals the
personal fields of the events below when it stores them, and unseals them when it reads
them back; everything else of an event (its type, ids, versions, timestamps, actor and
request) stays as the library stores it, and so do the log's positions and the hash chain,
which covers the sealed bytes. A sealed field is stored as

    {"$sealed": base64(nonce + AES-256-GCM(key, JSON)), "$names": [...], "$removed": [...]}

where, for a field that holds attributes, the JSON is the array of their values, in the
order of `$names`, the attributes' names (a schema's, not personal), and
`$removed` those a change removes (for a field that holds attributes; a string field has
`$sealed` alone). The ciphertext is bound to its event (the user's id and version) and
field (the associated data), so it cannot be moved to another. Once a user's key is gone,
their sealed fields read as `ERASED` in each value (the names stay); events that were plain
(written before sealing) read as they were.
"""

from __future__ import annotations

import secrets
from binascii import a2b_base64, b2a_base64
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from scimledger.ledger.keys import NONCE_BYTES, KeyStore
from scimledger.ledger.users import User

ERASED = "[erased]"  # what an erased person's values read as
SEALED = "$sealed"
_encode = msgspec.json.encode
_decode = msgspec.json.Decoder().decode

# The personal fields of each event class.
FIELDS: dict[type[Any], tuple[str, ...]] = {
    User.UserCreated: ("attributes",),
    User.ProfileUpdated: ("changes",),
    User.PasswordChanged: ("password_hash",),
}  # (a userName's index records no name: Ledger._claim_name)


_FIELD_BYTES = {field: field.encode() for fields in FIELDS.values() for field in fields}
# The topics of the events that hold sealed fields (as the log names them).
SEALED_TOPICS = frozenset(get_topic(cls) for cls in FIELDS)


def owner_of(event: Any) -> UUID | None:
    """The user whose key seals the event's personal fields; None if it has none."""
    return event.originator_id if type(event) in FIELDS else None


def owners(events: Iterable[Any]) -> set[UUID]:
    return {owner for event in events if (owner := owner_of(event)) is not None}


def _associated(originator: UUID, version: int, field: bytes) -> bytes:
    """What a sealed field is bound to: its event (originator, version) and its name."""
    return originator.int.to_bytes(16, "big") + version.to_bytes(8, "big") + field


class SealingMapper(Mapper[UUID]):
    """The library's mapper, sealing and unsealing personal fields with `keys` (set by the
    ledger once its store is open)."""

    keys: KeyStore | None = None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = FIELDS.get(type(domain_event))
        keys = self.keys
        if fields is None or keys is None:
            return super().to_stored_event(domain_event)
        owner: UUID = domain_event.originator_id
        version: int = domain_event.originator_version
        state = dict(vars(domain_event))
        key = None if isinstance(domain_event, User.UserCreated) else keys.key(owner)
        if key is None:  # a user's first event (or the first since sealing began)
            key = keys.new_key(owner)
        for field in fields:
            value = state[field]
            associated = _associated(owner, version, _FIELD_BYTES[field])
            if type(value) is dict:
                # The values in their names' order (None: removed), sealed as one array.
                envelope: dict[str, Any] = {
                    SEALED: _seal(key, _encode(list(value.values())), associated),
                    "$names": list(value),
                }
                if None in value.values():
                    envelope["$removed"] = [name for name, item in value.items() if item is None]
            else:
                envelope = {SEALED: _seal(key, _encode(value), associated)}
            state[field] = envelope
        sealed = object.__new__(type(domain_event))
        object.__setattr__(sealed, "__dict__", state)
        return super().to_stored_event(sealed)

    def preload(self, rows: Sequence[Sequence[Any]]) -> None:
        """The log's rows about to be decoded (a projection's batch: position, originator
        id, version, topic, state): at the first key not in memory, the keys of all their
        sealed events' owners are read in one query (KeyStore.expect)."""
        if self.keys is None:
            return

        def owners() -> set[int]:
            # The ids as the log gives them: UUIDs (PostgreSQL) or their hex (SQLite).
            return {
                row[1].int if isinstance(row[1], UUID) else int(row[1].replace("-", ""), 16)
                for row in rows
                if row[3] in SEALED_TOPICS
            }

        self.keys.expect(owners)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        fields = FIELDS.get(type(domain_event))
        if fields is None:
            if isinstance(domain_event, User.UserErased) and self.keys is not None:
                # Another process erased them: its key, if this one has it, goes too.
                self.keys.forget(domain_event.originator_id)
            return domain_event
        state = vars(domain_event)
        keys = self.keys
        for field in fields:
            envelope = state.get(field)
            if type(envelope) is not dict or SEALED not in envelope:
                continue  # written before sealing
            owner = state["originator_id"]
            key = keys.key(owner) if keys is not None else None
            if key is None:
                state[field] = _erased(envelope)
                continue
            associated = _associated(owner, state["originator_version"], _FIELD_BYTES[field])
            state[field] = _open(key, envelope, associated)
        return domain_event


def _seal(key: Any, plain: bytes, associated: bytes) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return b2a_base64(nonce + key.encrypt(nonce, plain, associated), newline=False).decode()


def _open(key: Any, envelope: dict[str, Any], associated: bytes) -> Any:
    blob = a2b_base64(envelope[SEALED])
    value = _decode(key.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated))
    names = envelope.get("$names")
    return value if names is None else dict(zip(names, value, strict=True))


def _erased(envelope: dict[str, Any]) -> Any:
    names = envelope.get("$names")
    if names is None:
        return ERASED
    removed = set(envelope.get("$removed", ()))
    return {name: None if name in removed else ERASED for name in names}
