"""A runner that also polls in a background thread, as tests and benchmarks use one: a
server's projections are kept by `Follower`s (projections.follower) instead."""

from __future__ import annotations

import logging
import threading

from scimledger.ledger import availability
from scimledger.projections.runner import Runner

log = logging.getLogger(__name__)


class PollingRunner(Runner):
    def start(self, poll_interval: float = 0.2) -> None:
        """Catches up now, then keeps polling in a background thread."""
        self.run_once()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._poll,
            args=(poll_interval,),
            name=f"runner:{self.projection.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _poll(self, interval: float) -> None:
        failures = availability.BackgroundFailures(log, f"projection {self.projection.name}")
        while not self._stopping.wait(interval):
            try:
                self.catch_up()
            except Exception as exc:
                failures.failed(exc)
                self._stopping.wait(interval)
            else:
                failures.succeeded()
