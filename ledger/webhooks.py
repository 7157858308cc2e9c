"""Webhook endpoints: where an organization's changes are pushed (the events feed's, signed
as the Standard Webhooks specification says).

An endpoint is an aggregate; adding, disabling, enabling, removing it and rotating its
signing secret are its events, and so is the deliverer's finding that it keeps failing.
Its signing secret is never in an event: it lives in the organization_secrets table
(ledger.secrets) under the endpoint's name, and the events name it by the moment it was set.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import LedgerError

MAX_URL = 2048
SECRET_PREFIX = "whsec_"  # noqa: S105 (the form's prefix, not a secret)
SECRET_BYTES = 32


class WebhookError(LedgerError, ValueError):
    """A webhook request that cannot be done: a URL refused, a removed endpoint changed."""


class WebhookNotFound(LedgerError, LookupError):
    """No such webhook endpoint (in the organization asking)."""


def new_signing_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` and the key in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of the Standard Webhooks specification: for each
    secret, `v1,` and the base64 of the HMAC-SHA256 of `id.timestamp.body` under its key."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1,"
        + base64.b64encode(
            hmac.new(
                base64.b64decode(secret.removeprefix(SECRET_PREFIX)), signed, "sha256"
            ).digest()
        ).decode()
        for secret in secrets
    )


def secret_name(webhook_id: UUID) -> str:
    """The name its signing secrets are kept under (ledger.secrets)."""
    return f"webhook:{webhook_id}"


def check_url(url: str, *, allow_insecure: bool) -> str:
    """The endpoint's URL, if one a deliverer may post to: https (http only when allowed,
    for development), a host, no credentials (they would be recorded in an event), no
    fragment. Where the host resolves to is checked at each delivery (projections.deliveries)."""
    text = url.strip()
    if not text or len(text) > MAX_URL:
        raise WebhookError(f"a webhook URL has 1 to {MAX_URL} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise WebhookError("a webhook URL may not hold spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise WebhookError(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise WebhookError("a webhook URL starts with https://")
    if parts.scheme == "http" and not allow_insecure:
        raise WebhookError(
            "a webhook URL must be https; http only for development (--allow-insecure-url)"
        )
    if not parts.hostname:
        raise WebhookError("a webhook URL names a host")
    if parts.username is not None or parts.password is not None:
        raise WebhookError("a webhook URL may not hold a user name or password")
    if parts.fragment:
        raise WebhookError("a webhook URL may not hold a fragment (#...)")
    if port == 0:
        raise WebhookError("a webhook URL's port is from 1 to 65535")
    return text


class Webhook(Aggregate):
    class Added(Aggregate.Created):
        org_id: UUID
        org_slug: str
        url: str
        types: list[str]  # the feed's types it receives; empty: all of them
        secret_set_at: str  # names its signing secret (ledger.secrets); never the secret
        context: CommandContext

    class Disabled(Aggregate.Event):
        context: CommandContext

    class Enabled(Aggregate.Event):
        context: CommandContext

    class Removed(Aggregate.Event):
        context: CommandContext

    class SecretRotated(Aggregate.Event):
        secret_set_at: str  # the new secret's
        previous_until: datetime  # the previous one signs too until then
        context: CommandContext

    class Replayed(Aggregate.Event):
        """Its changes after `after_position` are to be posted again."""

        after_position: int
        context: CommandContext

    class Failing(Aggregate.Event):
        """Deliveries kept failing for the longest retry period: the deliverer stopped."""

        reason: str
        context: CommandContext

    @event(Added)
    def __init__(
        self,
        *,
        org_id: UUID,
        org_slug: str,
        url: str,
        types: list[str],
        secret_set_at: str,
        context: CommandContext,
    ) -> None:
        self.org_id = org_id
        self.org_slug = org_slug
        self.url = url
        self.types = list(types)
        self.secret_set_at = secret_set_at
        self.previous_secret: tuple[str, datetime] | None = None
        self.enabled = True
        self.removed = False
        self.failing = False

    def _check_present(self) -> None:
        if self.removed:
            raise WebhookError(f"webhook {self.id} was removed")

    def disable(self, context: CommandContext) -> None:
        self._check_present()
        if self.enabled:
            self._disable(context)

    @event(Disabled)
    def _disable(self, context: CommandContext) -> None:
        self.enabled = False

    def enable(self, context: CommandContext) -> None:
        """Enabled again; a failing endpoint is retried from where it stopped."""
        self._check_present()
        if not self.enabled or self.failing:
            self._enable(context)

    @event(Enabled)
    def _enable(self, context: CommandContext) -> None:
        self.enabled = True
        self.failing = False

    def remove(self, context: CommandContext) -> None:
        if not self.removed:
            self._remove(context)

    @event(Removed)
    def _remove(self, context: CommandContext) -> None:
        self.removed = True
        self.enabled = False

    def rotate_secret(
        self, secret_set_at: str, previous_until: datetime, context: CommandContext
    ) -> None:
        self._check_present()
        self._rotate_secret(secret_set_at, previous_until, context)

    @event(SecretRotated)
    def _rotate_secret(
        self, secret_set_at: str, previous_until: datetime, context: CommandContext
    ) -> None:
        self.previous_secret = (self.secret_set_at, previous_until)
        self.secret_set_at = secret_set_at

    def replay(self, after_position: int, context: CommandContext) -> None:
        self._check_present()
        self._replay(after_position, context)

    @event(Replayed)
    def _replay(self, after_position: int, context: CommandContext) -> None:
        pass

    def mark_failing(self, reason: str, context: CommandContext) -> None:
        if not self.failing and not self.removed:
            self._mark_failing(reason[:500], context)

    @event(Failing)
    def _mark_failing(self, reason: str, context: CommandContext) -> None:
        self.failing = True

    def signing_secrets(self, now: datetime) -> list[str]:
        """The moments naming the secrets that sign now: the current one, and the previous
        one during its grace period."""
        names = [self.secret_set_at]
        if self.previous_secret is not None and now < self.previous_secret[1]:
            names.append(self.previous_secret[0])
        return names

    def as_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "org": self.org_slug, "url": self.url, "types": self.types}
