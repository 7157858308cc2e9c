"""Prometheus metrics at `GET /metrics`, in the text format, without a token.

Label values are bounded: a route's template (`/scim/v2/Users/{user_id}`), never a raw path,
the HTTP method and the status; projections by name; organizations by slug (which operators
choose, not clients) and tokens by status. Nothing a client sends becomes a label.

- `scimledger_http_requests_total{route, method, status}` and
  `scimledger_http_request_duration_seconds{route, method}`: every request, observed where
  its access line is written (http/envelope.py).
- `scimledger_rate_limited_requests_total`: requests refused with 429.
- The write side's counts (ledger.metrics), in the same registry.
- Read when scraped (one indexed lookup each): `scimledger_log_head`,
  `scimledger_projection_position{projection}`, `scimledger_projection_lag_events{projection}`
  and `scimledger_projection_lag_seconds{projection}` (the age of the oldest event it has not
  applied; 0 when caught up); `scimledger_tokens{organization, status}`;
  `scimledger_webhook_endpoints{organization, status}`.
- `scimledger_database_up`: 1 when the scrape's lookups succeeded;
  `scimledger_database_gate_open`: 0 while the process answering refuses requests at once
  because the database was out of reach (ledger.availability).
- PostgreSQL's connection pools: `scimledger_database_pool_connections{state}` (in use,
  idle), `scimledger_database_pool_max_connections` and
  `scimledger_database_pool_waiting_requests`, summed over the server's processes.

Under `serve --workers N` the counts are the whole server's: the supervisor turns on
prometheus-client's multiprocess mode before it forks (`ledger.metrics.use_multiprocess`),
each worker writes its counts to files in a directory of the server's own, and a scrape,
whichever worker answers it, adds them all up. A worker samples its pool every
`POOL_SAMPLE_SECONDS` (and whenever it answers a scrape).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from scimledger.http.services import Injected, Services
from scimledger.ledger import availability
from scimledger.ledger.metrics import MULTIPROCESS_ENV, REGISTRY
from scimledger.projections.runner import oldest_after
from scimledger.projections.tokens import list_tokens, list_webhooks

REQUESTS = Counter(
    "scimledger_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
    registry=REGISTRY,
)
DURATION = Histogram(
    "scimledger_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ("route", "method"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "scimledger_rate_limited_requests",
    "Requests refused with 429 because their token was over its rate (serve --rate-limit).",
    registry=REGISTRY,
)
# Each process's own pool, summed over the live ones.
POOL_CONNECTIONS = Gauge(
    "scimledger_database_pool_connections",
    "Connections to PostgreSQL held by the server's pools, in use or idle.",
    ("state",),
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
POOL_MAX = Gauge(
    "scimledger_database_pool_max_connections",
    "Connections the server's pools may open at most.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
POOL_WAITING = Gauge(
    "scimledger_database_pool_waiting_requests",
    "Requests waiting for a connection of the server's pools.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
POOL_SAMPLE_SECONDS = 5.0
log = logging.getLogger(__name__)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def observe(route: str | None, method: str, status: int, seconds: float) -> None:
    """One request answered (http/envelope.py calls it for each)."""
    shown = route or "(no route)"
    verb = method if method in METHODS else "OTHER"
    REQUESTS.labels(shown, verb, str(status)).inc()
    DURATION.labels(shown, verb).observe(seconds)


def sample_pool(services: Services) -> None:
    """This process's pool of PostgreSQL connections, as it stands (none on SQLite)."""
    pool = getattr(services.ledger.recorder, "datastore", None)
    pool = getattr(pool, "pool", None)
    if not isinstance(pool, ConnectionPool):
        return
    stats = pool.get_stats()
    idle = stats.get("pool_available", 0)
    POOL_CONNECTIONS.labels("in_use").set(stats.get("pool_size", 0) - idle)
    POOL_CONNECTIONS.labels("idle").set(idle)
    POOL_MAX.set(stats.get("pool_max", 0))
    POOL_WAITING.set(stats.get("requests_waiting", 0))


class Scraped(Collector):
    """What the database says when scraped: the log's head, the projections' positions and
    lag, the tokens by status; and whether it answered."""

    def __init__(
        self, services: Services, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.services = services
        self.clock = clock

    def collect(self) -> Iterator[Any]:
        gate = self.services.ledger.gate
        reachable = GaugeMetricFamily(
            "scimledger_database_gate_open",
            "0 while this process answers 503 at once because the database was out of reach "
            "(PostgreSQL; always 1 on SQLite).",
        )
        reachable.add_metric([], 0 if gate is not None and gate.down else 1)
        yield reachable
        up = GaugeMetricFamily(
            "scimledger_database_up", "1 if the database answered this scrape's lookups."
        )
        try:
            families = list(self._read())
        except Exception as exc:
            if not availability.unavailable(exc):
                raise
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[GaugeMetricFamily]:
        services = self.services
        now = self.clock()
        key = "rowid" if services.sql.dialect == "sqlite" else "notification_id"
        with services.sql.read() as cursor:
            cursor.execute(f"SELECT MAX({key}) AS head FROM {services.ledger.events_table}")  # noqa: S608
            row = cursor.fetchone()
            head = int(row["head"] or 0) if row is not None else 0
            cursor.execute("SELECT name, position FROM projection_tracking")
            positions = {
                str(r["name"]): int(r["position"])
                for r in cursor.fetchall()
                if not str(r["name"]).startswith("rebuild_")
            }
            tokens = Tally((view.org, view.status) for view in list_tokens(cursor, None, now))
            webhooks = Tally((view.org, view.status) for view in list_webhooks(cursor, None))
        yield GaugeMetricFamily("scimledger_log_head", "The event log's last position.", head)
        position = GaugeMetricFamily(
            "scimledger_projection_position",
            "The last event a projection applied.",
            labels=["projection"],
        )
        lag = GaugeMetricFamily(
            "scimledger_projection_lag_events",
            "Events of the log a projection has not applied yet.",
            labels=["projection"],
        )
        age = GaugeMetricFamily(
            "scimledger_projection_lag_seconds",
            "Age of the oldest event a projection has not applied yet (0: caught up).",
            labels=["projection"],
        )
        oldest: dict[int, datetime | None] = {}  # by position: projections often share one
        for name, at in sorted(positions.items()):
            position.add_metric([name], at)
            lag.add_metric([name], max(0, head - at))
            if at < head and at not in oldest:
                oldest[at] = oldest_after(services.ledger, at)
            since = oldest.get(at)
            age.add_metric([name], max(0.0, (now - since).total_seconds()) if since else 0.0)
        yield position
        yield lag
        yield age
        by_status = GaugeMetricFamily(
            "scimledger_tokens",
            "Tokens by organization and status (active, rotating, issuer departed, expired, "
            "revoked).",
            labels=["organization", "status"],
        )
        for (org, status), count in sorted(tokens.items()):
            by_status.add_metric([org, status], count)
        yield by_status
        endpoints = GaugeMetricFamily(
            "scimledger_webhook_endpoints",
            "Webhook endpoints by organization and status (enabled, disabled, failing): alert "
            "on failing, whose deliveries stopped after 3 days of errors.",
            labels=["organization", "status"],
        )
        for (org, status), count in sorted(webhooks.items()):
            endpoints.add_metric([org, status], count)
        yield endpoints


def install(app: Any, services: Services) -> None:
    """The app's registry: the process's counts and what is read when scraped."""
    registry = CollectorRegistry(auto_describe=True)
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        _sample_every(POOL_SAMPLE_SECONDS, lambda: sample_pool(services))
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(Scraped(services))
    app.state.metrics = registry


def _sample_every(seconds: float, sample: Callable[[], None]) -> None:
    """`sample`s in a thread of its own for as long as this process runs (a worker's: the
    other workers' samples are read from their files, not asked for)."""

    def run() -> None:
        while True:
            try:
                sample()
            except Exception:  # a sample missed; the next may succeed
                log.debug("could not sample the connection pool", exc_info=True)
            time.sleep(seconds)

    threading.Thread(target=run, name="metrics-pool-sampler", daemon=True).start()


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


PROBES = frozenset({"/metrics", "/healthz", "/readyz"})  # answered on the metrics port


def on_its_port(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard for `serve --metrics-port`: /metrics answers on that port only, and on that
    port nothing else does but the probes (404)."""
    port = connection.app.state.services.metrics_port
    server = connection.scope.get("server")
    on_metrics_port = server is not None and server[1] == port
    path = connection.scope["path"]
    if (path in PROBES) if on_metrics_port else (path != "/metrics"):
        return
    raise NotFoundException


@get("/metrics", include_in_schema=False, sync_to_thread=True)
def metrics(request: Request[Any, Any, Any], services: Injected[Services]) -> Response[bytes]:
    registry: CollectorRegistry = request.app.state.metrics
    sample_pool(services)
    # The text format every Prometheus reads (Litestar adds the charset, utf-8).
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")


ROUTES = [metrics]
