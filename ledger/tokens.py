"""The Token aggregate and the token format.

A token reads `scl_<id>_<secret>`: the prefix lets secret scanners recognise it, the id (the
aggregate's UUID in hex) finds the record, and the secret carries 256 bits of entropy. Only a
SHA-256 of the secret is stored: with that much entropy a slow hash adds nothing, and
verification stays cheap on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NoReturn, get_args
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.ledger.context import Actor, CommandContext
from scimledger.ledger.errors import InvalidToken, LedgerError
from scimledger.ledger.moments import MAX_GRACE, parse_moment

PREFIX = "scl_"
_FORMAT = re.compile(r"^scl_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
# What a token may do: provision over SCIM, read the audit trail, manage tokens and admins,
# follow the organization's changes (the events feed).
Scope = Literal["scim", "audit:read", "admin", "events:read"]
SCOPES: tuple[Scope, ...] = get_args(Scope)


class TokenRequestError(LedgerError, ValueError):
    """An expiry, grace period or scope that cannot be used."""


def parse_expiry(text: str, now: datetime) -> datetime | None:
    """`never`, `<N>d` (days from now), or an ISO date or date-time (UTC unless given)."""
    value = text.strip().lower()
    if value == "never":
        return None
    if match := re.fullmatch(r"(\d{1,5})d", value):
        days = int(match.group(1))
        if days < 1:
            raise TokenRequestError("an expiry needs at least 1d")
        return now + timedelta(days=days)
    try:
        moment = parse_moment(text)
    except ValueError as exc:
        raise TokenRequestError(
            f"expiry: {exc}; use never, a number of days such as 30d, or an ISO date"
        ) from exc
    if moment <= now:
        raise TokenRequestError(f"expiry {text!r} is in the past")
    return moment


def parse_grace(text: str) -> timedelta:
    """`0`, or a number followed by m (minutes), h (hours) or d (days), up to MAX_GRACE."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([mhd]?)\s*", text)
    if match is None or (match.group(2) == "" and match.group(1) != "0"):
        raise TokenRequestError(f"grace {text!r}: use 0, or a number of m, h or d such as 24h")
    unit = {"m": "minutes", "h": "hours", "d": "days", "": "seconds"}[match.group(2)]
    grace = timedelta(**{unit: int(match.group(1))})
    if grace > MAX_GRACE:
        raise TokenRequestError(f"grace {text!r}: at most {MAX_GRACE.days}d")
    return grace


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_NO_TOKEN = hash_secret(new_secret())  # what an unknown token's secret is compared with


def refuse_unknown(secret: str) -> NoReturn:
    """Refuses a token whose id is no token's, after the work a wrong secret costs (a hash
    and a comparison), so that timing does not tell an unknown id from a known one."""
    hmac.compare_digest(hash_secret(secret), _NO_TOKEN)
    raise InvalidToken("unknown token")


def issuer(admin: str | None, actor: Actor) -> str:
    """Who a token was issued by, as principals and `tokens list` show it: the organization
    admin it was issued for, otherwise the actor that issued it."""
    return f"admin:{admin}" if admin else f"{actor.kind}:{actor.name}"


def format_token(token_id: UUID, secret: str) -> str:
    return f"{PREFIX}{token_id.hex}_{secret}"


@dataclass(frozen=True)
class ParsedToken:
    token_id: UUID
    secret: str


def parse_token(token: str) -> ParsedToken:
    match = _FORMAT.fullmatch(token)
    if match is None:
        raise InvalidToken("malformed token")
    return ParsedToken(token_id=UUID(hex=match.group(1)), secret=match.group(2))


class Token(Aggregate):
    class TokenIssued(Aggregate.Created):
        org_id: UUID
        org_slug: str
        name: str
        secret_hash: str  # SHA-256 of the secret; never the secret
        expires_at: datetime | None
        scopes: list[str]
        context: CommandContext
        issued_by_admin: str | None = None  # the organization admin who asked for it

    class TokenRevoked(Aggregate.Event):
        context: CommandContext

    class TokenRotated(Aggregate.Event):
        successor_id: UUID
        grace_until: datetime  # the token keeps working until then
        context: CommandContext

    @event(TokenIssued)
    def __init__(
        self,
        *,
        org_id: UUID,
        org_slug: str,
        name: str,
        secret_hash: str,
        expires_at: datetime | None,
        scopes: list[str],
        context: CommandContext,
        issued_by_admin: str | None = None,
    ) -> None:
        self.org_id = org_id
        self.issued_by_admin = issued_by_admin
        self.org_slug = org_slug
        self.name = name
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.scopes = list(scopes)
        self.issued_by = context.actor
        self.revoked = False
        self.successor_id: UUID | None = None
        self.grace_until: datetime | None = None

    def revoke(self, context: CommandContext) -> None:
        if not self.revoked:
            self._revoke(context)

    @event(TokenRevoked)
    def _revoke(self, context: CommandContext) -> None:
        self.revoked = True

    def rotate(self, successor_id: UUID, grace_until: datetime, context: CommandContext) -> None:
        """Hands over to a successor; this token works until `grace_until`."""
        if self.revoked:
            raise InvalidToken("a revoked token cannot be rotated")
        if self.successor_id is not None:
            raise InvalidToken(f"already rotated to {self.successor_id}")
        self._rotate(successor_id, grace_until, context)

    @event(TokenRotated)
    def _rotate(self, successor_id: UUID, grace_until: datetime, context: CommandContext) -> None:
        self.successor_id = successor_id
        self.grace_until = grace_until

    def check(self, secret: str, now: datetime) -> None:
        """Raises InvalidToken unless the secret matches and the token is usable now."""
        if not hmac.compare_digest(hash_secret(secret), self.secret_hash):
            raise InvalidToken("wrong secret")
        if self.revoked:
            raise InvalidToken("token revoked")
        if self.expires_at is not None and now >= self.expires_at:
            raise InvalidToken("token expired")
        if self.grace_until is not None and now >= self.grace_until:
            raise InvalidToken("token rotated; its grace period is over")
