"""Console sign-in: one-time sign-in links, and the sessions links and single sign-on open.

Both read like tokens (ledger.tokens): `<id>_<secret>`, the id (the aggregate's UUID in hex)
finds the record and the secret, 256 bits, proves the bearer; only a SHA-256 of the secret is
stored. A link is in a URL an operator hands an admin; a session is in the browser's cookie.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.ledger.context import Actor, CommandContext, Role
from scimledger.ledger.errors import LedgerError
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import hash_secret

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)  # from sign-in, however busy (the idle limit is the
IDLE_LIMIT = timedelta(minutes=30)  # HTTP layer's: it sees the requests)

SignInMethod = Literal["link", "sso"]
_FORMAT = re.compile(r"^([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


class SignInRefused(LedgerError):
    """A link or session that does not let its bearer in (unknown, used, expired, ended, or
    its person no longer an admin or reviewer). The message is for operators and the
    audit; the person is only told to sign in again."""


@dataclass(frozen=True)
class Presented:
    """A link or session as its bearer presents it."""

    id: UUID
    secret: str

    @classmethod
    def parse(cls, text: str) -> Presented:
        match = _FORMAT.fullmatch(text)
        if match is None:
            raise SignInRefused("malformed")
        return cls(id=UUID(hex=match.group(1)), secret=match.group(2))

    def __str__(self) -> str:
        return f"{self.id.hex}_{self.secret}"


@dataclass(frozen=True)
class SignedIn:
    """Who a console session speaks for, now."""

    org_id: UUID
    org: str  # the organization's slug
    session_id: UUID
    email: str
    role: Role

    @property
    def actor(self) -> Actor:
        return Actor.person(self.session_id, self.email, self.role)


def _check_secret(stored_hash: str, secret: str) -> None:
    if not hmac.compare_digest(stored_hash, hash_secret(secret)):
        raise SignInRefused("wrong secret")


class SignInLink(Aggregate):
    """A break-glass link: signs one admin or reviewer in, once, within LINK_LIFETIME."""

    class Issued(Aggregate.Created):
        org_id: UUID
        email: str
        secret_hash: str  # SHA-256 of the secret; never the secret
        expires_at: datetime
        context: CommandContext

    class Used(Aggregate.Event):
        session_id: UUID  # the session it opened
        context: CommandContext

    @event(Issued)
    def __init__(
        self,
        *,
        org_id: UUID,
        email: str,
        secret_hash: str,
        expires_at: datetime,
        context: CommandContext,
    ) -> None:
        self.org_id = org_id
        self.email = email
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.used = False

    def check(self, secret: str, now: datetime) -> None:
        _check_secret(self.secret_hash, secret)
        if self.used:
            raise SignInRefused("sign-in link already used")
        if now >= self.expires_at:
            raise SignInRefused("sign-in link expired")

    @event(Used)
    def use(self, session_id: UUID, context: CommandContext) -> None:
        self.used = True


class ConsoleSession(Aggregate):
    """A person signed in to one organization's console, until they sign out or
    SESSION_LIFETIME passes; their role is the organization's current one at each request."""

    class Started(Aggregate.Created):
        org_id: UUID
        email: str
        role: Role  # at sign-in
        method: SignInMethod
        secret_hash: str  # SHA-256 of the cookie's secret; never the secret
        expires_at: datetime
        context: CommandContext

    class Ended(Aggregate.Event):
        context: CommandContext  # who ended it: the person signing out, or an admin

    @event(Started)
    def __init__(
        self,
        *,
        id: UUID,  # made before the session, for the actor of Started (the library takes it)
        org_id: UUID,
        email: str,
        role: Role,
        method: SignInMethod,
        secret_hash: str,
        expires_at: datetime,
        context: CommandContext,
    ) -> None:
        self.org_id = org_id
        self.email = email
        self.method = method
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.ended = False

    def role_now(self, secret: str, organization: Organization | None, now: datetime) -> Role:
        """The role the bearer acts in now; SignInRefused if the session no longer holds."""
        _check_secret(self.secret_hash, secret)
        if self.ended:
            raise SignInRefused("session ended")
        if now >= self.expires_at:
            raise SignInRefused("session expired")
        role = organization.role_of(self.email) if organization is not None else None
        if role is None:
            raise SignInRefused(f"{self.email} is no longer an admin or reviewer")
        return role

    def end(self, context: CommandContext) -> None:
        if not self.ended:
            self._end(context)

    @event(Ended)
    def _end(self, context: CommandContext) -> None:
        self.ended = True
