"""The ledger's ear on the database: one LISTEN connection per process (PostgreSQL).

It hears every append to the event store (the store NOTIFYs on each insert) and every
announcement of changed tokens and organizations (ledger.credentials). With what it hears it
keeps the ledger's credentials cache live, tells the ledger's turns who appended
(ledger.turns), and wakes whoever subscribed (the projections' followers). On SQLite it does
nothing: followers poll.

A LISTEN connection can go silent without an error (eventsourcing issue #305): it pings its
own channel every PING_EVERY and reconnects when it hears nothing, not even its pings.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg

from scimledger.ledger import credentials
from scimledger.ledger.application import Ledger

log = logging.getLogger(__name__)


class LogListener:
    APPLICATION_NAME = "scimledger log listener"  # in pg_stat_activity

    def __init__(self, ledger: Ledger) -> None:
        self.database = ledger.database
        self.channel: str | None = getattr(ledger.recorder, "channel_name", None)
        self._credentials = ledger.credentials
        self._turns = ledger.turns
        self._datastore: Any = getattr(ledger.recorder, "datastore", None)
        self._wakers: list[threading.Event] = []
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._thread: threading.Thread | None = None
        self._pinger: threading.Thread | None = None
        self.connected = threading.Event()

    @property
    def enabled(self) -> bool:
        return self.database.kind == "postgresql" and self.channel is not None

    def subscribe(self) -> threading.Event:
        event = threading.Event()
        self._wakers.append(event)
        return event

    def start(self) -> None:
        if not self.enabled:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="log-listener", daemon=True)
        self._thread.start()
        self._pinger = threading.Thread(target=self._ping, name="log-pinger", daemon=True)
        self._pinger.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._pinger):
            if thread is not None:
                thread.join(timeout=5)

    def restart(self) -> None:
        """Drops the LISTEN connection and opens a new one (it went silent)."""
        self._restart.set()

    def _wake(self) -> None:
        for event in self._wakers:
            event.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                # Once per outage at WARNING: it reconnects every second meanwhile.
                level = logging.WARNING if self.connected.is_set() else logging.DEBUG
                log.log(
                    level, "log listener lost its connection (%s); polling until it is back", exc
                )
            self.connected.clear()
            self._stop.wait(1.0)

    def _listen(self) -> None:
        assert self.channel is not None
        with psycopg.connect(
            **{**self.database.connection_kwargs(), "connect_timeout": 3},
            autocommit=True,
            application_name=self.APPLICATION_NAME,
        ) as connection:
            connection.execute(f'LISTEN "{self.channel}"')
            connection.execute(f'LISTEN "{credentials.CHANNEL}"')
            self._credentials.start()  # changes are announced from now on
            self.connected.set()
            self._restart.clear()
            try:
                self._wake()  # events may have come while it was not listening
                heard = time.monotonic()
                while not self._stop.is_set() and not self._restart.is_set():
                    # Only reads here, each bounded: a connection gone silent without an
                    # error (a firewall dropping it) cannot hang this thread.
                    for notification in connection.notifies(
                        timeout=credentials.PING_EVERY, stop_after=1
                    ):
                        heard = time.monotonic()
                        self._credentials.heard()
                        if notification.channel == credentials.CHANNEL:
                            self._credentials.announced(notification.payload)
                        else:
                            self._turns.appended_by(notification.pid)
                            self._wake()
                    if time.monotonic() - heard > credentials.SILENCE:
                        log.warning(
                            "log listener heard nothing for %.0f s, not even its own pings;"
                            " reconnecting",
                            credentials.SILENCE,
                        )
                        return
            finally:
                self._credentials.stop()

    def _ping(self) -> None:
        """Notifies the channel every PING_EVERY through the ledger's pool: the listener
        hearing it proves its connection still delivers (and keeps its cache live). In a
        thread of its own, so that a ping that hangs holds up nothing else."""
        while not self._stop.wait(credentials.PING_EVERY):
            try:
                credentials.announce(self._datastore, credentials.PING)
            except Exception as exc:  # the listener notices the silence; nothing else to do
                log.debug("log listener ping failed: %s", exc)
