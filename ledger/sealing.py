"""Personal data sealed in the log: each user's encrypted with their own data key
(ledger.keys), so that erasing the key erases it from every event that holds it.

The mapper (the library's, through its own extension point, `construct_mapper`) seals the
personal fields of the events below when it stores them, and unseals them when it reads
them back; everything else of an event (its type, ids, versions, timestamps, actor and
request) stays as the library stores it, and so do the log's positions and the hash chain,
which covers the sealed bytes. A sealed field is stored as

    {"$sealed": base64(nonce + AES-256-GCM(key, value as JSON)), "$names": [...], "$removed": [...]}

where `$names` are the attributes' names (a schema's, not personal), in their order, and
`$removed` those a change removes (for a field that holds attributes; a string field has
`$sealed` alone). The ciphertext is bound to its user, event and field (the associated
data), so it cannot be moved to another. Once a user's key is gone, their sealed fields read
as `ERASED` in each value (the names stay); events that were plain (written before sealing)
read as they were.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent

from scimledger.ledger.keys import NONCE_BYTES, KeyStore
from scimledger.ledger.users import User

ERASED = "[erased]"  # what an erased person's values read as
SEALED = "$sealed"
_encode = msgspec.json.encode
_decode = msgspec.json.decode

# The personal fields of each event class.
FIELDS: dict[type[Any], tuple[str, ...]] = {
    User.UserCreated: ("attributes",),
    User.ProfileUpdated: ("changes",),
    User.PasswordChanged: ("password_hash",),
}  # (a userName's index records no name: Ledger._claim_name)


def owner_of(event: Any) -> UUID | None:
    """The user whose key seals the event's personal fields; None if it has none."""
    return event.originator_id if type(event) in FIELDS else None


def owners(events: Iterable[Any]) -> set[UUID]:
    return {owner for event in events if (owner := owner_of(event)) is not None}


def _associated(owner: UUID, originator: UUID, version: int, field: str) -> bytes:
    return b"".join((owner.bytes, originator.bytes, version.to_bytes(8, "big"), field.encode()))


class SealingMapper(Mapper[UUID]):
    """The library's mapper, sealing and unsealing personal fields with `keys` (set by the
    ledger once its store is open)."""

    keys: KeyStore | None = None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = FIELDS.get(type(domain_event))
        owner = owner_of(domain_event) if fields else None
        if fields is None or owner is None or self.keys is None:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        key = None if isinstance(domain_event, User.UserCreated) else self.keys.key(owner)
        if key is None:  # a user's first event (or the first since sealing began)
            key = self.keys.new_key(owner)
        for field in fields:
            value = state[field]
            associated = _associated(
                owner, domain_event.originator_id, domain_event.originator_version, field
            )
            if isinstance(value, dict):
                kept = {name: item for name, item in value.items() if item is not None}
                envelope: dict[str, Any] = {SEALED: _seal(key, _encode(kept), associated)}
                envelope["$names"] = list(value)  # in their order, which readers keep
                removed = [name for name, item in value.items() if item is None]
                if removed:
                    envelope["$removed"] = removed
            else:
                envelope = {SEALED: _seal(key, _encode(value), associated)}
            state[field] = envelope
        sealed = object.__new__(type(domain_event))
        object.__setattr__(sealed, "__dict__", state)
        return super().to_stored_event(sealed)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        fields = FIELDS.get(type(domain_event))
        if fields is None:
            if isinstance(domain_event, User.UserErased) and self.keys is not None:
                # Another process erased them: its key, if this one has it, goes too.
                self.keys.forget(domain_event.originator_id)
            return domain_event
        state = vars(domain_event)
        owner = None
        for field in fields:
            envelope = state.get(field)
            if not (isinstance(envelope, dict) and SEALED in envelope):
                continue  # written before sealing
            if owner is None:
                owner = state["originator_id"]
            key = self.keys.key(owner) if self.keys is not None else None
            state[field] = (
                _erased(envelope)
                if key is None
                else _open(
                    key,
                    envelope,
                    _associated(owner, state["originator_id"], state["originator_version"], field),
                )
            )
        return domain_event


def _seal(key: Any, plain: bytes, associated: bytes) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return base64.b64encode(nonce + key.encrypt(nonce, plain, associated)).decode()


def _open(key: Any, envelope: dict[str, Any], associated: bytes) -> Any:
    blob = base64.b64decode(envelope[SEALED])
    value = _decode(key.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated))
    names = envelope.get("$names")
    if names is None:
        return value
    return {name: value.get(name) for name in names}  # removed ones: None


def _erased(envelope: dict[str, Any]) -> Any:
    names = envelope.get("$names")
    if names is None:
        return ERASED
    removed = set(envelope.get("$removed", ()))
    return {name: None if name in removed else ERASED for name in names}
