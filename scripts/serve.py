"""`scimledger serve`: the SCIM server, with the read model kept up to date in-process."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID

import uvicorn
from prometheus_client import multiprocess

from scimledger.http import connections
from scimledger.http.app import create_app
from scimledger.http.connections import Limits
from scimledger.http.feed import webhook_body
from scimledger.http.rate_limit import RateLimit
from scimledger.http.responses import SCIM_BASE_PATH
from scimledger.http.services import Lifecycle, Services
from scimledger.ledger import departures, retention
from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DEFAULT_URL, DatabaseURL
from scimledger.ledger.keys import master_key_file
from scimledger.ledger.metrics import use_multiprocess
from scimledger.projections.audit import NAME as AUDIT
from scimledger.projections.audit import deleted_not_erased
from scimledger.projections.deliveries import Deliverer
from scimledger.projections.follower import Followers
from scimledger.projections.scim import NAME as SCIM
from scimledger.projections.sql import SQL
from scimledger.projections.sql_filters import scim_datetime
from scimledger.projections.tokens import NAME as TOKENS
from scimledger.projections.tokens import UsageRecorder, departure_candidates, organizations
from scimledger.scripts.command import UsageError

log = logging.getLogger(__name__)


def _program() -> str:
    """How this user runs scimledger: the path they ran, or its name."""
    program = sys.argv[0] if sys.argv and "/" in sys.argv[0] else "scimledger"
    return program if Path(program).name == "scimledger" else "scimledger"


def _commands(database_flag: str | None, public_url: str | None) -> tuple[str, str]:
    """The commands that issue a token and sign the first admin in to the console."""
    database = f" --database {shlex.quote(database_flag)}" if database_flag else ""
    public = f" --public-url {shlex.quote(public_url)}" if public_url else ""
    program = _program()
    return (
        f'{program} tokens issue --org acme --name "Okta" --expires never{database}',
        f"{program} admins add you@example.com --org acme{database} && "
        f"{program} console link --org acme --admin you@example.com{public}{database}",
    )


@dataclass(frozen=True)
class Settings:
    """What `serve` runs with: its flags (scripts/cli.py)."""

    database: DatabaseURL
    host: str
    port: int
    project_in_process: bool
    rate_limit: RateLimit
    limits: Limits
    max_connections: int
    public_url: str | None
    workers: int = 1
    drain_seconds: float = 0.0
    metrics_port: int | None = None  # /metrics there, not on `port`
    webhook_allow_private: bool = False  # webhooks may post to private addresses

    def public_base(self) -> str:
        """Where the SCIM API is reached, for the locations of webhooks' resources."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return (self.public_url or f"http://{shown}:{self.port}") + SCIM_BASE_PATH


def serve(settings: Settings) -> int:
    """The server: in this process, or with `workers` > 1 in that many worker processes on
    the same listening sockets, supervised by this one (see `_supervise`)."""
    if settings.metrics_port == settings.port:
        raise UsageError(f"--metrics-port must differ from --port ({settings.port})")
    if settings.workers == 1:
        # uvicorn binds the one port itself; both are bound here.
        sockets = _listening(settings) if settings.metrics_port else None
        return _serve(settings, sockets=sockets, announce=lambda: _announce(settings))
    # The database is opened (and its tables made or upgraded) once, here, before the
    # workers start: they would otherwise race to do it.
    Ledger(settings.database).close()
    listening = _listening(settings)
    # The workers' counts, added up at each scrape (ledger/metrics.py).
    counts = tempfile.mkdtemp(prefix="scimledger-metrics-")
    use_multiprocess(counts)
    _announce(settings)
    try:
        return _supervise(
            settings.workers, lambda index: _serve(settings, sockets=listening, sweeps=index == 0)
        )
    finally:
        shutil.rmtree(counts, ignore_errors=True)


def _announce(settings: Settings) -> None:
    database, host, port = settings.database, settings.host, settings.port
    public_url, workers = settings.public_url, settings.workers
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
    where = (
        f"SQLite file {Path(database.path).resolve()}"
        if database.kind == "sqlite"
        else database.redacted()
    )
    # Spell out a non-default database, however it was given: the token command is run in
    # another terminal, which may not share this one's environment.
    # A password is never printed: the command then shows *** in its place.
    flag = database.redacted() if database.url != DEFAULT_URL else None
    reached = public_url or f"http://{shown_host}:{port}"
    issue, sign_in = _commands(flag, public_url)
    processes = f" with {workers} worker processes" if workers > 1 else ""
    metrics = (
        f"\nMetrics: http://{shown_host}:{settings.metrics_port}/metrics"
        if settings.metrics_port
        else ""
    )
    key_file = master_key_file(database)
    master = (
        f"\nMaster key of personal data: {key_file} (keep a copy apart from the database and"
        " its backups: without it no one's personal data can be read)"
        if key_file is not None
        else ""
    )
    print(
        f"scimledger is serving on {where}{processes}\n"
        f"SCIM connector base URL: {reached}{SCIM_BASE_PATH}\n"
        f"Issue a token (in another terminal): {issue}\n"
        f"Console: {reached}/console/ (to sign in: {sign_in})"
        f"{metrics}{master}",
        flush=True,
    )


def _serve(
    settings: Settings,
    *,
    sockets: list[socket.socket] | None = None,
    sweeps: bool = True,
    announce: Callable[[], None] | None = None,
) -> int:
    """One server process: on `sockets` if given (a worker's, or the port's and the metrics
    port's), else on host and port; once its database is open and its read models are
    caught up, `announce`s it."""
    ledger = Ledger(settings.database)
    # In process, this server consumes the projections unless another process already does
    # (then it takes over if that one stops); with `scimledger project` running them, it only
    # waits for them.
    followers = Followers(ledger, consume=settings.project_in_process)
    followers.start()
    by_name = followers.by_name
    tokens = by_name[TOKENS]
    sql = SQL(ledger)
    # One sweep of departed admins' tokens is enough: workers but the first leave it.
    sweeper = (
        departures.Sweeper(
            lambda: departure_candidates(sql, tokens.catch_up), ledger.sweep_departed
        )
        if sweeps
        else None
    )
    erasures = (
        departures.Sweeper(
            lambda: retention_candidates(ledger, sql, followers.by_name),
            ledger.sweep_retention,
            ("retention sweep", "user", "erased %d users deleted longer ago than kept"),
        )
        if sweeps
        else None
    )
    for started in (sweeper, erasures):
        if started is not None:
            started.start()
    # Webhooks are posted by one process at a time, as the projections are applied.
    deliverer = Deliverer(
        ledger,
        webhook_body(settings.public_base()),
        consume=settings.project_in_process,
        allow_private=settings.webhook_allow_private,
    )
    deliverer.start()
    lifecycle = Lifecycle()
    app = create_app(
        Services(
            ledger=ledger,
            scim=by_name[SCIM],
            audit=by_name[AUDIT],
            tokens=tokens,
            sql=sql,
            usage=UsageRecorder(sql),
            rate_limit=settings.rate_limit,
            public_url=settings.public_url,
            lifecycle=lifecycle,
            metrics_port=settings.metrics_port,
        )
    )
    if announce is not None:
        announce()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        server_header=False,
        log_level="info",
        # Our own lines for uvicorn's too (scripts/logs.py); the access line is written by
        # http/envelope.py, which knows the route and the token, never the raw URL.
        log_config=None,
        lifespan="on",
        access_log=False,
        http=connections.protocol(settings.limits),
        limit_concurrency=settings.max_connections,
    )
    # What was made while starting lives as long as the process: out of the collector's
    # way, so that collections walk only what requests make.
    gc.collect()
    gc.freeze()
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handler that was installed before it. Installing ours means that re-raise lands here
    # and the process finishes its own cleanup and exits 0, instead of dying by the signal.
    # A signal that lands here before uvicorn listens for them (it starts its event loop
    # first) is handed to the server, which then stops as soon as it has started: recorded
    # only, it left the server running.
    server = _Server(config, lifecycle, settings.drain_seconds)
    received: list[int] = []

    def before_uvicorn(number: int, frame: FrameType | None) -> None:
        received.append(number)
        server.handle_exit(number, frame)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, before_uvicorn)
    try:
        server.run(sockets=sockets)
    finally:
        for running in (sweeper, erasures):
            if running is not None:
                running.stop()
        deliverer.stop()
        followers.stop()
        ledger.close()
    if received:
        log.info("stopped on %s", signal.Signals(received[0]).name)
    return 0


def retention_candidates(ledger: Ledger, sql: SQL, followers: dict[str, Any]) -> list[UUID]:
    """The users the retention policy may erase now (ledger.retention): of every
    organization with a period, those the audit trail has as deleted longer ago than it, once
    the tokens' read model (which lists the organizations) and the trail are caught up."""
    followers[TOKENS].catch_up()
    followers[AUDIT].catch_up()

    def periods() -> list[tuple[str, int]]:
        found = []
        for org_id, slug in organizations(sql):
            seconds = ledger.settings(slug)["erase_deleted_after_seconds"]
            if seconds is not None:
                found.append((org_id, seconds))
        return found

    def deleted_before(org_id: str, cutoff: datetime) -> list[str]:
        with sql.transaction(commit=False) as cursor:
            return deleted_not_erased(cursor, org_id, scim_datetime(cutoff), retention.BATCH)

    return retention.candidates(periods, deleted_before)


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGTERM first drains for `drain_seconds`: /readyz answers 503 (so
    that load balancers stop sending) while requests are still served; then it shuts down as
    uvicorn does, finishing the requests in flight. A second SIGTERM, or SIGINT, shuts down
    at once."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_seconds: float):
        super().__init__(config)
        self._lifecycle = lifecycle
        self._drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self._lifecycle.stopping
        self._lifecycle.stop()
        if sig == signal.SIGTERM and first and self._drain_seconds > 0:
            log.info(
                "draining for %g s before shutting down: /readyz answers 503, requests are "
                "still served",
                self._drain_seconds,
            )
            timer = threading.Timer(self._drain_seconds, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()
            return
        super().handle_exit(sig, frame)


def _listening(settings: Settings) -> list[socket.socket]:
    """The sockets the server listens on: its port's, and its metrics port's if it has one."""
    ports = [settings.port] + ([settings.metrics_port] if settings.metrics_port else [])
    return [_listen(settings.host, port) for port in ports]


def _listen(host: str, port: int) -> socket.socket:
    """A socket the server listens on (that the workers share), bound as uvicorn would."""
    family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    # Not listening yet: each worker's server listens on it once it is ready to answer, so
    # that until then connections are refused rather than left waiting.
    listening.set_inheritable(True)
    return listening


# A worker that dies this soon after it started is restarted after a growing pause (a
# crash at start would otherwise loop at full speed), up to the longest pause.
QUICK_EXIT_SECONDS = 10.0
LONGEST_PAUSE_SECONDS = 30.0
PR_SET_PDEATHSIG = 1  # prctl(2)


def _supervise(workers: int, run: Callable[[int], int]) -> int:
    """Forks `workers` processes, each running `run(index)`; restarts any that exits while
    this one runs; on SIGTERM or SIGINT stops them all (each drains its requests) and
    returns 0 once they have exited. Workers end with this process, even when it is killed."""
    supervisor = _Supervisor(run)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, supervisor.stop)
    for index in range(workers):
        supervisor.spawn(index)
    supervisor.watch()
    return 0


class _Supervisor:
    def __init__(self, run: Callable[[int], int]) -> None:
        self._run = run
        self._children: dict[int, tuple[int, float]] = {}  # pid -> (index, started at)
        self._stopping: list[int] = []  # the signals received to stop
        self._pauses: dict[int, float] = {}  # index -> the last pause before a restart

    def stop(self, number: int, _frame: object = None) -> None:
        if not self._stopping:
            log.info("stopping %d workers on %s", len(self._children), signal.Signals(number).name)
        self._stopping.append(number)
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def spawn(self, index: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                _end_with_parent(parent)
                code = self._run(index)
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self._children[pid] = (index, time.monotonic())
        log.info("worker %d started (pid %d)", index, pid)

    def watch(self) -> None:
        """Until every worker has exited after a stop: restarts each that exits before."""
        while self._children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in self._children:
                continue
            index, started = self._children.pop(pid)
            # Its gauges (its connection pool's) stop counting: its counters still do.
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
            if not self._stopping:
                self._restart(index, pid, os.waitstatus_to_exitcode(status), started)
        if self._stopping:
            log.info("stopped on %s", signal.Signals(self._stopping[0]).name)

    def _restart(self, index: int, pid: int, code: int, started: float) -> None:
        quick = time.monotonic() - started < QUICK_EXIT_SECONDS
        pause = min(LONGEST_PAUSE_SECONDS, self._pauses.get(index, 0.5) * 2) if quick else 0.0
        self._pauses[index] = pause or 0.5
        how = f"by signal {-code}" if code < 0 else f"with status {code}"
        log.error("worker %d (pid %d) exited %s; restarting it in %.0f s", index, pid, how, pause)
        deadline = time.monotonic() + pause  # cut short by a signal to stop
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        if not self._stopping:
            self.spawn(index)


def _end_with_parent(parent: int) -> None:
    """Asks Linux to send this process SIGTERM when its parent dies (a supervisor killed
    with SIGKILL leaves no worker serving), and exits if the parent is already gone."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(0)


def project(database: DatabaseURL, *, public_url: str | None, allow_private: bool) -> int:
    """`scimledger project`: keeps every projection caught up and posts webhooks, as their
    single consumer, or stands by and takes over when the process doing it stops."""
    ledger = Ledger(database)
    stopping = threading.Event()
    received: list[int] = []

    def stop(number: int, _frame: object) -> None:
        received.append(number)
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    followers = Followers(ledger, consume=True)
    followers.start()
    for follower in followers.by_name.values():
        if not follower.active:
            log.info("another process consumes %s; standing by to take over", follower.name)
    # Without a public URL, resources' locations are relative (/scim/v2/Users/...).
    base = (public_url or "") + SCIM_BASE_PATH
    deliverer = Deliverer(ledger, webhook_body(base), allow_private=allow_private)
    deliverer.start()
    try:
        stopping.wait()
    finally:
        deliverer.stop()
        followers.stop()
        ledger.close()
    log.info("stopped on %s", signal.Signals(received[0]).name)
    return 0
