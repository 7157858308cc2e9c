"""Webhook deliveries: each endpoint gets its organization's changes (the events feed's,
projections.feed) posted in log order, signed as the Standard Webhooks specification says.

- One deliverer at a time per database: the process holding the `webhook_deliveries`
  consumer lock (as a projection's, projections.follower) runs one thread per enabled
  endpoint; the others stand by and take over within seconds when it stops or dies.
- In order, at least once: an endpoint gets change n+1 only once it acknowledged change n
  with a 2xx. Its position (the last change acknowledged) is saved after each; a deliverer
  killed between a post and that save posts that change again, nothing else.
- A failed post (no answer within `timeout`, an error, a status other than 2xx; a redirect
  is not followed) is retried after an exponentially growing pause with jitter, for up to
  `give_up_after` (3 days); then the endpoint is recorded failing (an event) and left alone
  until an admin enables it again, when it resumes where it stopped.
- Every attempt is kept (webhook_attempts): when, which change, the status or the error, how
  long it took. Never a secret; never the receiver's answer, of which at most
  `MAX_ANSWER_BYTES` are read.
- Where a URL's host resolves to is checked at each post: a loopback, private, link-local
  or otherwise non-global address is refused unless the operator allows them
  (`serve --webhook-allow-private`), and the post goes to the address checked.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from scimledger.ledger import availability
from scimledger.ledger.application import Ledger
from scimledger.ledger.webhooks import signature
from scimledger.projections import feed
from scimledger.projections.audit import NAME as AUDIT
from scimledger.projections.follower import ConsumerLock
from scimledger.projections.runner import setup_lock_in
from scimledger.projections.sql import SQL
from scimledger.projections.sql_filters import scim_datetime
from scimledger.projections.tokens import TABLES as TOKENS_TABLES

log = logging.getLogger(__name__)

LOCK_NAME = "webhook_deliveries"
MAX_ANSWER_BYTES = 4096
USER_AGENT = "scimledger-webhooks"
PAGE = 100  # changes read at a time per endpoint
# The attempts kept per endpoint, the newest (`webhooks deliveries` shows them): older ones
# are deleted as new ones are saved, by a tenth of that at a time.
KEEP_ATTEMPTS = 10_000

DDL = (
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
    webhook_id TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    failures INTEGER NOT NULL,
    failing_since TEXT,
    next_attempt_at TEXT,
    replayed_at TEXT
)""",
    """CREATE TABLE IF NOT EXISTS webhook_attempts (
    webhook_id TEXT NOT NULL,
    attempted_at TEXT NOT NULL,
    event_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    milliseconds INTEGER NOT NULL,
    error TEXT
)""",
    "CREATE INDEX IF NOT EXISTS webhook_attempts_hook ON webhook_attempts"
    " (webhook_id, attempted_at)",
)


@dataclass(frozen=True)
class Retry:
    """When to post again after a failure: `base` doubled at each failure up to `cap`,
    each pause drawn between half and all of it (jitter); give up after `give_up_after`."""

    base: float = 5.0
    cap: float = 3600.0
    give_up_after: timedelta = timedelta(days=3)

    def pause(self, failures: int, draw: Callable[[], float] = random.random) -> float:
        full = min(self.cap, self.base * float(2 ** min(failures - 1, 40)))
        return full / 2 + draw() * full / 2


@dataclass(frozen=True)
class Posted:
    status: int | None  # None: no HTTP answer
    error: str | None
    seconds: float

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def allowed_address(address: str, *, allow_private: bool) -> bool:
    """Whether a post may go to `address`: a global one, or any when private ones are allowed
    (an IPv4 address mapped into IPv6 is judged as itself)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return allow_private or (ip.is_global and not ip.is_multicast)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's certificate authorities, loaded once (~50 ms each time, measured)."""
    return ssl.create_default_context()


class _Pinned(http.client.HTTPSConnection):
    """A connection to `address`, for a URL's host: TLS checks the host's certificate."""

    def __init__(self, host: str, port: int, address: str, timeout: float, tls: bool) -> None:
        super().__init__(host, port, timeout=timeout, context=_tls())
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port or 0), self.timeout)
        # The request's headers and body go in separate writes: with Nagle's algorithm the
        # body waited for the receiver's delayed ACK, 40 ms a post (measured).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        self.sock = sock


class Client:
    """Posts to one URL, over one connection kept open between posts (a TLS handshake per
    change would bound an endpoint at a few dozen a second). A new connection resolves the
    host again and checks where it goes; an answer longer than `MAX_ANSWER_BYTES` is not
    read to its end, and its connection is closed instead."""

    def __init__(self, url: str, *, timeout: float, allow_private: bool) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.allow_private = allow_private
        self._connection: _Pinned | None = None

    def post(self, body: bytes, headers: dict[str, str]) -> Posted:
        """One post of `body`; never raises for what the receiver or the network does."""
        started = time.monotonic()
        try:
            connection = self._connection or self._connect()
        except _Refused as exc:
            return Posted(None, str(exc), time.monotonic() - started)
        try:
            connection.request("POST", self.target, body=body, headers=headers)
            answer = connection.getresponse()
            answer.read(MAX_ANSWER_BYTES)
            if answer.isclosed():
                self._connection = connection if not answer.will_close else None
            else:
                self.close()  # the rest of a long answer is not read
            return Posted(answer.status, None, time.monotonic() - started)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            self.close()
            error = f"{type(exc).__name__}: {exc}"[:300]
            return Posted(None, error, time.monotonic() - started)

    def _connect(self) -> _Pinned:
        try:
            found = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise _Refused(f"cannot resolve {self.host}: {exc}") from None
        addresses = [str(info[4][0]) for info in found]
        allowed = [a for a in addresses if allowed_address(a, allow_private=self.allow_private)]
        if not allowed:
            raise _Refused(
                f"refused: {self.host} resolves to a private or local address ({addresses[0]})"
            )
        self._connection = _Pinned(self.host, self.port, allowed[0], self.timeout, self.tls)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _Refused(Exception):
    pass


@dataclass(frozen=True)
class Endpoint:
    id: str
    org_id: str
    url: str
    types: tuple[str, ...]
    added_position: int
    changed: str  # when it was last enabled, disabled or its secret rotated
    replay_after: int | None  # `webhooks replay`: post again the changes after this
    replay_at: str | None  # when that was asked


def enabled_endpoints(sql: SQL) -> dict[str, Endpoint]:
    with sql.read() as cursor:
        cursor.execute(
            "SELECT id, org_id, url, types, added_position, changed, replay_after, replay_at"
            f" FROM {TOKENS_TABLES.webhooks} WHERE status = 'enabled'"
        )
        return {
            row["id"]: Endpoint(
                row["id"],
                row["org_id"],
                row["url"],
                tuple(t for t in str(row["types"]).split(",") if t),
                int(row["added_position"]),
                row["changed"],
                row["replay_after"],
                row["replay_at"],
            )
            for row in cursor.fetchall()
        }


class Deliverer:
    """Posts every enabled endpoint's changes while this process holds the delivery lock."""

    def __init__(
        self,
        ledger: Ledger,
        render: Callable[[feed.Change], bytes],
        *,
        consume: bool = True,
        allow_private: bool = False,
        retry: Retry | None = None,
        timeout: float = 10.0,
        poll_interval: float = 0.02,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        keep_attempts: int = KEEP_ATTEMPTS,
    ) -> None:
        self.ledger = ledger
        self.keep_attempts = keep_attempts
        self.render = render
        self.consume = consume
        self.allow_private = allow_private
        self.retry = retry or Retry()
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.clock = clock
        self.sql = SQL(ledger)
        self.lock = ConsumerLock(ledger.database, LOCK_NAME)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: dict[str, _Worker] = {}
        self._failures = availability.BackgroundFailures(log, "webhook deliveries")

    def start(self) -> None:
        with self.sql.transaction(commit=True) as cursor:
            # Workers starting together would race to create them (see setup_lock_in).
            setup_lock_in(cursor)
            for statement in DDL:
                cursor.execute(statement)
        if not self.consume:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._stop_workers(list(self._workers))
        self.lock.release()

    def _run(self) -> None:
        last_check, seen = 0.0, -1
        while not self._stop.is_set():
            if not self.lock.try_acquire():
                self._stop_workers(list(self._workers))
                self._stop.wait(1.0)
                continue
            try:
                if time.monotonic() - last_check >= 1.0:
                    last_check = time.monotonic()
                    self._sync(enabled_endpoints(self.sql))
                position = self._audit_position()
            except Exception as exc:
                self._failures.failed(exc)
                self._stop.wait(1.0)
                continue
            self._failures.succeeded()
            if position != seen:  # the audit trail, and so the feed, moved: look again
                seen = position
                for worker in self._workers.values():
                    worker.wake.set()
            self._stop.wait(self.poll_interval)

    def _audit_position(self) -> int:
        """Where the audit trail, which the feed reads, stands (not another projection's
        position: the SCIM read model's, written with the events, is ahead of it)."""
        with self.sql.read() as cursor:
            cursor.execute("SELECT position FROM projection_tracking WHERE name = ?", (AUDIT,))
            row = cursor.fetchone()
        return int(row["position"]) if row is not None else 0

    def _sync(self, endpoints: dict[str, Endpoint]) -> None:
        # An endpoint disabled, removed or failing, or changed; a worker that stopped.
        gone = [
            key
            for key, worker in self._workers.items()
            if endpoints.get(key) != worker.endpoint or not worker.is_alive()
        ]
        self._stop_workers(gone)
        if gone:
            self._forget_removed()
        for key, endpoint in endpoints.items():
            if key not in self._workers:
                worker = _Worker(self, endpoint)
                self._workers[key] = worker
                worker.start()

    def _forget_removed(self) -> None:
        """Deletes what is kept of removed endpoints' deliveries (their attempts)."""
        removed = f"SELECT id FROM {TOKENS_TABLES.webhooks} WHERE status = 'removed'"
        with self.sql.transaction(commit=True) as cursor:
            for table in ("webhook_attempts", "webhook_deliveries"):
                cursor.execute(f"DELETE FROM {table} WHERE webhook_id IN ({removed})")

    def _stop_workers(self, keys: list[str]) -> None:
        stopping = [self._workers.pop(key) for key in keys if key in self._workers]
        for worker in stopping:
            worker.stop.set()
            worker.wake.set()
        for worker in stopping:
            worker.join(timeout=self.timeout + 5)


class _Worker(threading.Thread):
    """Delivers one endpoint's changes, one at a time, in log order. It alone writes its
    endpoint's delivery state while the deliverer holds the lock, so it keeps it in memory
    and writes it with each attempt, in one transaction."""

    def __init__(self, deliverer: Deliverer, endpoint: Endpoint) -> None:
        super().__init__(name=f"webhook:{endpoint.id}", daemon=True)
        self.deliverer = deliverer
        self.endpoint = endpoint
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.client = Client(
            endpoint.url, timeout=deliverer.timeout, allow_private=deliverer.allow_private
        )
        self.position = 0
        self.failures = 0
        self.failing_since: datetime | None = None
        self.next_attempt_at: datetime | None = None
        self._secrets: list[str] = []
        self._secrets_until: datetime | None = None  # when the previous secret stops signing
        self._saved = 0  # attempts saved since it started

    def run(self) -> None:
        failures = availability.BackgroundFailures(log, f"webhook {self.endpoint.id}")
        try:
            if not self._resume():
                return
            while not self.stop.is_set():
                self.wake.clear()  # before reading: a wake-up from now on is not missed
                try:
                    with self.deliverer.sql.read() as cursor:
                        changes = feed.page(
                            cursor, self.endpoint.org_id, self.position, self.endpoint.types, PAGE
                        )
                    failures.succeeded()
                except Exception as exc:
                    failures.failed(exc)
                    self.stop.wait(1.0)
                    continue
                if not changes:
                    self.wake.wait(1.0)
                    continue
                for change in changes:
                    if not self._deliver(change):
                        return
        except Exception as exc:  # started again at the deliverer's next look
            failures.failed(exc)
        finally:
            self.client.close()

    def _resume(self) -> bool:
        """Where the endpoint stands (False: it is not to be posted to, as the read model
        that listed it may not know yet): its first delivery starts after the event that
        added it. An endpoint enabled again after it was failing is retried at once, with
        the retry period started anew."""
        webhook = self.deliverer.ledger.webhook(UUID(self.endpoint.id))
        if not webhook.enabled or webhook.failing:
            return False
        sql = self.deliverer.sql
        with sql.transaction(commit=True) as cursor:
            cursor.execute(
                "INSERT INTO webhook_deliveries (webhook_id, position, failures)"
                " VALUES (?, ?, 0) ON CONFLICT (webhook_id) DO NOTHING",
                (self.endpoint.id, self.endpoint.added_position),
            )
            cursor.execute(
                "UPDATE webhook_deliveries SET failures = 0, failing_since = NULL,"
                " next_attempt_at = NULL WHERE webhook_id = ? AND failing_since < ?",
                (self.endpoint.id, self.endpoint.changed),
            )
            if self.endpoint.replay_at is not None:  # once per `webhooks replay`
                cursor.execute(
                    "UPDATE webhook_deliveries SET position = ?, failures = 0,"
                    " failing_since = NULL, next_attempt_at = NULL, replayed_at = ?"
                    " WHERE webhook_id = ? AND (replayed_at IS NULL OR replayed_at < ?)",
                    (
                        self.endpoint.replay_after,
                        self.endpoint.replay_at,
                        self.endpoint.id,
                        self.endpoint.replay_at,
                    ),
                )
            cursor.execute(
                "SELECT position, failures, failing_since, next_attempt_at"
                " FROM webhook_deliveries WHERE webhook_id = ?",
                (self.endpoint.id,),
            )
            row = cursor.fetchone()
        assert row is not None
        self.position = int(row["position"])
        self.failures = int(row["failures"])
        self.failing_since = _moment(row["failing_since"])
        self.next_attempt_at = _moment(row["next_attempt_at"])
        return True

    def _signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign now, read again when the previous one stops signing (a
        rotation restarts the worker: the endpoint's `changed` moves)."""
        if not self._secrets or (self._secrets_until is not None and now >= self._secrets_until):
            ledger = self.deliverer.ledger
            webhook = ledger.webhook(UUID(self.endpoint.id))
            self._secrets = ledger.webhook_signing_secrets(webhook, now)
            previous = webhook.previous_secret
            self._secrets_until = previous[1] if previous and now < previous[1] else None
        return self._secrets

    def _deliver(self, change: feed.Change) -> bool:
        """Posts `change` until acknowledged (True), or until stopped or given up (False)."""
        deliverer = self.deliverer
        body = deliverer.render(change)
        event_id = f"evt_{change.position}"
        while not self.stop.is_set():
            if self.next_attempt_at is not None:
                wait = (self.next_attempt_at - deliverer.clock()).total_seconds()
                if wait > 0 and self.stop.wait(wait):
                    return False
            now = deliverer.clock()
            stamp = int(now.timestamp())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "webhook-id": event_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": signature(self._signing_secrets(now), event_id, stamp, body),
            }
            posted = self.client.post(body, headers)
            attempt = (now, event_id, self.failures + 1, posted)
            if posted.acknowledged:
                self.position = change.position
                self.failures, self.failing_since, self.next_attempt_at = 0, None, None
                self._save(attempt)
                return True
            since = self.failing_since or now
            if now - since >= deliverer.retry.give_up_after:
                self._save(attempt)
                reason = f"no 2xx for {event_id} since {scim_datetime(since)}: " + (
                    posted.error or f"HTTP {posted.status}"
                )
                deliverer.ledger.mark_webhook_failing(UUID(self.endpoint.id), reason)
                log.warning("webhook %s is failing; deliveries stop: %s", self.endpoint.id, reason)
                return False
            self.failures += 1
            self.failing_since = since
            pause = deliverer.retry.pause(self.failures)
            self.next_attempt_at = now + timedelta(seconds=pause)
            self._save(attempt)
        return False

    def _save(self, attempt: tuple[datetime, str, int, Posted]) -> None:
        """The attempt and where the endpoint now stands, in one transaction. Its commit
        need not wait for the disk: a database crash that loses it makes the deliverer post
        again what it had already delivered, which at-least-once allows."""
        at, event_id, number, posted = attempt
        with self.deliverer.sql.transaction(commit=True) as cursor:
            if cursor.dialect == "postgresql":
                cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(
                "INSERT INTO webhook_attempts (webhook_id, attempted_at, event_id, attempt,"
                " status, milliseconds, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.endpoint.id,
                    scim_datetime(at),
                    event_id,
                    number,
                    posted.status,
                    round(posted.seconds * 1000),
                    posted.error,
                ),
            )
            cursor.execute(
                "UPDATE webhook_deliveries SET position = ?, failures = ?, failing_since = ?,"
                " next_attempt_at = ? WHERE webhook_id = ?",
                (
                    self.position,
                    self.failures,
                    scim_datetime(self.failing_since) if self.failing_since else None,
                    scim_datetime(self.next_attempt_at) if self.next_attempt_at else None,
                    self.endpoint.id,
                ),
            )
            keep = self.deliverer.keep_attempts
            if self._saved % max(1, keep // 10) == 0:  # the first, then every tenth of `keep`
                cursor.execute(
                    "DELETE FROM webhook_attempts WHERE webhook_id = ? AND attempted_at <"
                    " (SELECT attempted_at FROM webhook_attempts WHERE webhook_id = ?"
                    " ORDER BY attempted_at DESC LIMIT 1 OFFSET ?)",
                    (self.endpoint.id, self.endpoint.id, keep - 1),
                )
            self._saved += 1


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Progress:
    """Where an endpoint's deliveries stand."""

    done_through: str | None  # every change due up to this event id has been acknowledged
    failures: int  # failed attempts of the change now being posted
    failing_since: str | None
    next_attempt_at: str | None


def progress(sql: SQL, webhook_id: str) -> Progress:
    """Where the endpoint's deliveries stand (nothing yet before a deliverer took it up)."""
    with sql.read() as cursor:
        if not cursor.table_exists("webhook_deliveries"):
            return Progress(None, 0, None, None)
        cursor.execute(
            "SELECT position, failures, failing_since, next_attempt_at FROM webhook_deliveries"
            " WHERE webhook_id = ?",
            (webhook_id,),
        )
        row = cursor.fetchone()
    if row is None:
        return Progress(None, 0, None, None)
    return Progress(
        f"evt_{row['position']}", row["failures"], row["failing_since"], row["next_attempt_at"]
    )


def attempts(sql: SQL, webhook_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The endpoint's last attempts, newest first (none before a deliverer first ran and
    made the table)."""
    with sql.read() as cursor:
        if not cursor.table_exists("webhook_attempts"):
            return []
        cursor.execute(
            "SELECT attempted_at, event_id, attempt, status, milliseconds, error"
            " FROM webhook_attempts WHERE webhook_id = ? ORDER BY attempted_at DESC LIMIT ?",
            (webhook_id, limit),
        )
        return [dict(row) for row in cursor.fetchall()]
