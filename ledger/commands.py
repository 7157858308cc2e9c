"""What the ledger's commands take and return: their inputs and outcomes, plain values."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from scimledger.ledger.context import Actor
from scimledger.ledger.users import Attributes


@dataclass(frozen=True)
class Written:
    """The outcome of a command: which aggregate, its version, and the log position of the
    last event recorded (None when the command changed nothing)."""

    id: UUID
    version: int
    position: int | None
    # The aggregate as written (write responses render it: see http/users.py).
    aggregate: Aggregate | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class NewUser:
    attributes: Attributes
    active: bool = True
    password: str | None = None


@dataclass(frozen=True)
class UserState:
    """What an edit function sees of a user."""

    id: UUID
    attributes: Attributes
    active: bool
    version: int


@dataclass(frozen=True)
class UserReplacement:
    """What an edit function returns: the complete new attributes, and optionally a new
    active flag and password."""

    attributes: Attributes
    active: bool | None = None
    password: str | None = None


UserEdit = Callable[[UserState], UserReplacement]


@dataclass(frozen=True)
class NewGroup:
    """A group to create; `members` are ids as the client sent them, which the ledger checks
    are users of the organization."""

    display_name: str
    external_id: str | None = None
    members: Iterable[UUID | str] = ()
    extensions: Attributes = field(default_factory=dict)  # declared extensions' values


class Keep:
    """Marks an attribute a group update leaves as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep()


@dataclass
class GroupUpdate:
    """What a PUT or PATCH asks of a group: a new name and externalId (or KEEP), and either
    the complete new member set or the members to add and remove. Ids are as the client sent
    them; the ledger works out who really joins and leaves (ledger.members)."""

    display_name: str | Keep = KEEP
    external_id: str | Keep | None = KEEP
    replace_members: set[str] | None = None  # the complete new member set, if replaced
    add: set[str] = field(default_factory=set)
    remove: set[str] = field(default_factory=set)
    # The group's new extension values, made from its current ones (None: unchanged).
    extensions: Callable[[Attributes], Attributes] | None = None

    def add_members(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if self.replace_members is not None:
            self.replace_members.update(ids)
        else:
            self.add.update(ids)
            self.remove.difference_update(ids)

    def remove_members(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if self.replace_members is not None:
            self.replace_members.difference_update(ids)
        else:
            self.remove.update(ids)
            self.add.difference_update(ids)

    def set_members(self, ids: Iterable[str]) -> None:
        self.replace_members = set(ids)
        self.add.clear()
        self.remove.clear()


# Called with a resource's current version before a write; raises to refuse the write (an
# HTTP If-Match that names another version).
VersionCheck = Callable[[int], None]


def no_check(version: int) -> None:
    pass


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for."""

    org_id: UUID
    actor: Actor
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class IssuedToken:
    id: UUID
    token: str
    org: str
    name: str
    expires_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """As the admin API and `tokens issue --json` show it."""
        return {
            "id": str(self.id),
            "name": self.name,
            "org": self.org,
            "token": self.token,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass(frozen=True)
class SingleSignOn:
    """An organization's OpenID Connect provider, for the console's sign-in."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
