"""The departed-issuer policy: what becomes of a token when the admin it was issued for leaves.

An admin leaves when removed as an admin, or when their own user (the one whose userName is
their email) is deactivated or deleted through SCIM; the organization records when
(`Organization.departed`). Under `warn` the token keeps working and is shown as its issuer
departed; under `revoke-after` it is revoked once the grace period has passed: when it is
next presented (Ledger.authenticate), or by the sweep (`Sweeper`), whichever comes first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from scimledger.ledger import availability
from scimledger.ledger.context import Actor
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import Token

# Who revokes a token under the policy, as its events record it.
POLICY = Actor(kind="operator", id="departed-issuer policy", name="scimledger")

log = logging.getLogger(__name__)


def revocation_due(token: Token, organization: Organization | None, now: datetime) -> bool:
    """Whether the organization's policy revokes the token now: its issuer left longer ago
    than the grace period allows, under revoke-after."""
    if token.issued_by_admin is None or organization is None:
        return False
    departed = organization.departed.get(token.issued_by_admin)
    settings = organization.settings
    if departed is None or settings["departed_policy"] != "revoke-after":
        return False
    try:
        return now >= departed + timedelta(seconds=settings["departed_grace_seconds"])
    except OverflowError:  # a grace recorded before graces were bounded: it never ends
        return False


class Sweeper:
    """Once a minute, applies the policy to every token issued for an admin, so that
    revoke-after revokes even tokens nobody presents.

    `candidates` lists those tokens (the tokens read model knows them); `sweep` applies the
    policy to one (Ledger.sweep_departed) and says whether it revoked it. A token whose sweep
    fails (but for an outage, which ends the sweep) is logged once, not each minute, and
    never stops the others."""

    def __init__(
        self, candidates: Callable[[], Iterable[UUID]], sweep: Callable[[UUID, datetime], bool]
    ) -> None:
        self._candidates = candidates
        self._sweep = sweep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="departure-sweeper", daemon=True)
        self._failing: set[UUID] = set()  # tokens whose sweep failed, logged once

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sweep(self) -> int:
        """Applies the policy to every candidate now; how many tokens it revoked."""
        now = datetime.now(UTC)
        revoked = 0
        for token_id in self._candidates():
            try:
                revoked += self._sweep(token_id, now)
            except Exception as exc:
                if availability.unavailable(exc):
                    raise
                if token_id not in self._failing:
                    self._failing.add(token_id)
                    log.error("departure sweep of token %s failed", token_id, exc_info=exc)
            else:
                self._failing.discard(token_id)
        return revoked

    def _run(self) -> None:
        failures = availability.BackgroundFailures(log, "departure sweep")
        while not self._stop.wait(60.0):
            try:
                revoked = self.sweep()
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()
                if revoked:
                    log.info("revoked %d departed issuers' tokens", revoked)
