"""Liveness and readiness, for load balancers and orchestrators: no token, no personal data.

- `GET /healthz`: 200 while the process answers requests at all (a Kubernetes liveness
  probe: restarting a process whose database is down would not bring the database back).
- `GET /readyz`: 200 when this process should be sent requests, else 503 with what is
  wrong: the database answered a cheap query within `TIMEOUT` (the log's head and the SCIM
  read model's position, each one index lookup), the SCIM read model is within
  `MAX_LAG_EVENTS` of the log, and the server is not shutting down (from SIGTERM on: during
  `serve --drain-seconds`, requests are still served while load balancers notice).

The check runs at most once per `FRESH_FOR` seconds per process, whoever asks and however
often: a flood of probes costs one query a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get

from scimledger.http.services import Injected, Services
from scimledger.ledger import availability
from scimledger.projections.scim import NAME as SCIM

TIMEOUT = 1.0  # seconds the database has to answer the readiness check
FRESH_FOR = 1.0  # seconds a readiness check's result is reused
MAX_LAG_EVENTS = 1_000  # events the SCIM read model may be behind the log and be ready

MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class Report:
    database: str  # "ok", "unavailable" or "timeout"
    lag_events: int | None = None  # how far the SCIM read model is behind the log

    @property
    def ready(self) -> bool:
        return (
            self.database == "ok"
            and self.lag_events is not None
            and self.lag_events <= MAX_LAG_EVENTS
        )


def check(services: Services) -> Report:
    """The database's answer: the log's head and the SCIM read model's position."""
    events = services.ledger.events_table
    key = "rowid" if services.sql.dialect == "sqlite" else "notification_id"
    try:
        with services.sql.read() as cursor:
            cursor.execute(
                f"SELECT (SELECT MAX({key}) FROM {events}) AS head,"  # noqa: S608 (our names)
                " (SELECT position FROM projection_tracking WHERE name = ?) AS position",
                (SCIM,),
            )
            row = cursor.fetchone()
    except Exception as exc:
        if availability.unavailable(exc):
            return Report("unavailable")
        raise
    head = int(row["head"] or 0) if row is not None else 0
    position = int(row["position"] or 0) if row is not None else 0
    return Report("ok", max(0, head - position))


@dataclass
class Readiness:
    """Readiness reports, checked at most once per `fresh_for` seconds (one check at a time,
    shared by every caller meanwhile) and given up on after `timeout`."""

    check: Callable[[], Report]
    fresh_for: float = FRESH_FOR
    timeout: float = TIMEOUT
    clock: Callable[[], float] = time.monotonic
    _last: tuple[float, Report] | None = field(default=None, init=False)
    _running: asyncio.Future[Report] | None = field(default=None, init=False)

    async def report(self) -> Report:
        now = self.clock()
        if self._last is not None and now - self._last[0] < self.fresh_for:
            return self._last[1]
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().run_in_executor(None, self.check)
        try:
            report = await asyncio.wait_for(asyncio.shield(self._running), self.timeout)
        except TimeoutError:
            report = Report("timeout")
        except Exception:  # an error of the check itself: not ready, said once a second
            report = Report("unavailable")
        self._last = (self.clock(), report)
        return report


def _json(body: dict[str, Any], status: int) -> Response[bytes]:
    return Response(msgspec.json.encode(body), status_code=status, media_type=MEDIA_TYPE)


@get("/healthz", include_in_schema=False)
async def healthz() -> Response[bytes]:
    return _json({"status": "ok"}, 200)


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any], services: Injected[Services]) -> Response[bytes]:
    stopping = services.lifecycle.stopping
    readiness: Readiness = request.app.state.readiness
    report = await readiness.report()
    ready = report.ready and not stopping
    body = {
        "status": "ready" if ready else "not ready",
        "database": report.database,
        "scim_read_model_lag_events": report.lag_events,
        "max_lag_events": MAX_LAG_EVENTS,
        "shutting_down": stopping,
    }
    return _json(body, 200 if ready else 503)


ROUTES = [healthz, readyz]


def install(app: Litestar, services: Services) -> None:
    """Keeps the app's readiness checks (one cache per app)."""
    app.state.readiness = Readiness(lambda: check(services))
