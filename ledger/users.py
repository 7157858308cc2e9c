"""The User aggregate.

A user's SCIM attributes live in `attributes`, keyed by their canonical SCIM names (the
enterprise extension under its URN). `id`, `meta`, `active`, `password` and `groups` are not
attributes: the aggregate owns them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import InvalidReason
from scimledger.ledger.ids import time_ordered_id

Attributes = dict[str, Any]


def attribute_changes(before: Attributes, after: Attributes) -> Attributes:
    """What differs between two attribute sets; a removed attribute maps to None."""
    changes = {key: value for key, value in after.items() if before.get(key) != value}
    changes.update({key: None for key in before if key not in after})
    return changes


def apply_changes(attributes: Attributes, changes: Attributes) -> Attributes:
    """The attributes after `changes` (as made by `attribute_changes`)."""
    result = dict(attributes)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


class User(Aggregate):
    create_id = staticmethod(time_ordered_id)  # ledger.ids

    # Version 2 of the events that hold personal data: stored sealed with the user's own key
    # (ledger.sealing), which the mapper unseals; version 1, stored in clear, needs nothing.
    class UserCreated(Aggregate.Created):
        class_version = 2
        org_id: UUID
        attributes: Attributes
        active: bool
        context: CommandContext

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            pass

    class ProfileUpdated(Aggregate.Event):
        class_version = 2
        changes: Attributes  # only what changed; None means removed
        context: CommandContext

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            pass

    class UserDeactivated(Aggregate.Event):
        context: CommandContext

    class UserReactivated(Aggregate.Event):
        context: CommandContext

    class PasswordChanged(Aggregate.Event):
        class_version = 2
        password_hash: str  # see hash_password; never the password
        context: CommandContext

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            pass

    class UserDeleted(Aggregate.Event):
        context: CommandContext

    class UserErased(Aggregate.Event):
        """The user's data key was destroyed with this event: their personal data, in
        every event of theirs, can no longer be read. Nothing personal in it."""

        reason: str
        context: CommandContext

    @event(UserCreated)
    def __init__(
        self, org_id: UUID, attributes: Attributes, active: bool, context: CommandContext
    ) -> None:
        self.org_id = org_id
        self.attributes = dict(attributes)
        self.active = active
        self.deleted = False
        self.erased = False
        self.password_hash: str | None = None

    @property
    def user_name(self) -> str:
        return str(self.attributes["userName"])

    def replace_attributes(self, attributes: Attributes, context: CommandContext) -> None:
        changes = attribute_changes(self.attributes, attributes)
        if changes:
            self._update_profile(changes, context)

    @event(ProfileUpdated)
    def _update_profile(self, changes: Attributes, context: CommandContext) -> None:
        self.attributes = apply_changes(self.attributes, changes)

    def set_active(self, active: bool, context: CommandContext) -> None:
        if active and not self.active:
            self._reactivate(context)
        elif not active and self.active:
            self._deactivate(context)

    @event(UserDeactivated)
    def _deactivate(self, context: CommandContext) -> None:
        self.active = False

    @event(UserReactivated)
    def _reactivate(self, context: CommandContext) -> None:
        self.active = True

    def set_password(self, password: str, salt: bytes, context: CommandContext) -> None:
        """Records a new password hash, unless the password is the one already set."""
        if self.password_hash is not None and verify_password(password, self.password_hash):
            return
        self.set_password_hash(hash_password(password, salt), context)

    @event(PasswordChanged)
    def set_password_hash(self, password_hash: str, context: CommandContext) -> None:
        """Records a password hash computed beforehand (see `hash_password`)."""
        self.password_hash = password_hash

    def set_initial_password_hash(self, password_hash: str, context: CommandContext) -> None:
        """Records the password given at creation, at the creation's instant, so that a new
        user's lastModified equals its created."""
        self.trigger_event(
            self.PasswordChanged,
            password_hash=password_hash,
            context=context,
            timestamp=self.created_on,
        )

    def delete(self, context: CommandContext) -> None:
        if not self.deleted:
            self._delete(context)

    @event(UserDeleted)
    def _delete(self, context: CommandContext) -> None:
        self.deleted = True

    def erase(self, reason: str, context: CommandContext) -> None:
        """Records that the user's personal data is erased; they must be deleted first."""
        if not self.deleted:
            raise ValueError("only a deleted user is erased")
        if not self.erased:
            self._erase(reason, context)

    @event(UserErased)
    def _erase(self, reason: str, context: CommandContext) -> None:
        self.erased = True


MAX_REASON = 500  # characters of an erasure's reason


def erasure_reason(reason: str) -> str:
    """An erasure's reason, as recorded: one line of 1 to 500 characters, without control
    characters (it is shown in terminals, pages and spreadsheets). It is kept in clear, for
    ever: it says why (a request's reference, a retention policy), never who."""
    reason = reason.strip()
    if not reason:
        raise InvalidReason("give the erasure's reason (a request's reference, for example)")
    if len(reason) > MAX_REASON:
        raise InvalidReason(f"an erasure's reason has at most {MAX_REASON} characters")
    if any(unicodedata.category(c) == "Cc" for c in reason):
        raise InvalidReason("an erasure's reason is one line, without control characters")
    return reason


# scrypt parameters: ~16 MiB and tens of milliseconds per hash on this class of machine.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, salt: bytes) -> str:
    """A salted slow hash, in a self-describing format."""
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, password_hash: str) -> bool:
    _, n, r, p, salt, digest = password_hash.split("$")
    candidate = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
