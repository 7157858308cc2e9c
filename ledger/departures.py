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


SWEEP_EVERY = 60.0  # seconds between two sweeps


class Sweeper:
    """At start and once a minute, applies a policy to each of its candidates: the departure
        policy to every token issued for an admin, so that revoke-after revokes even tokens
        nobody presents; the retention policy (ledger.retention) to every user deleted long
        enough ago.

        `candidates` lists them (a read model knows them); `sweep` applies the policy to one
        (Ledger.sweep_departed, Ledger.sweep_retention) and says whether it acted. A candidate
        whose sweep fails (but for an outage, which ends the sweep) is logged once, not each
        minute, and never stops the others. `what` names, in the log, the sweep, what it sweeps
    and what it did."""

    def __init__(
        self,
        candidates: Callable[[], Iterable[UUID]],
        sweep: Callable[[UUID, datetime], bool],
        what: tuple[str, str, str] = (
            "departure sweep",
            "token",
            "revoked %d departed issuers' tokens",
        ),
    ) -> None:
        self._candidates = candidates
        self._sweep = sweep
        self._what, self._noun, self._done = what
        self._stop = threading.Event()
        name = self._what.replace(" ", "-")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._failing: set[UUID] = set()  # candidates whose sweep failed, logged once

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sweep(self) -> int:
        """Applies the policy to every candidate now; to how many it did something."""
        now = datetime.now(UTC)
        acted = 0
        for candidate in self._candidates():
            try:
                acted += self._sweep(candidate, now)
            except Exception as exc:
                if availability.unavailable(exc):
                    raise
                if candidate not in self._failing:
                    self._failing.add(candidate)
                    log.error("%s of %s %s failed", self._what, self._noun, candidate, exc_info=exc)
            else:
                self._failing.discard(candidate)
        return acted

    def _run(self) -> None:
        """Sweeps as the server starts (a server down for a while applies the policy at
        once), then once a minute."""
        failures = availability.BackgroundFailures(log, self._what)
        while not self._stop.is_set():
            try:
                acted = self.sweep()
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()
                if acted:
                    log.info(self._done, acted)
            self._stop.wait(SWEEP_EVERY)
