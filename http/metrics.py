"""Prometheus metrics at `GET /metrics`, in the text format, without a token.

Label values are bounded: a route's template (`/scim/v2/Users/{user_id}`), never a raw path,
the HTTP method and the status; projections by name. Nothing an organization or a client
controls becomes a label.

- `scimledger_http_requests_total{route, method, status}` and
  `scimledger_http_request_duration_seconds{route, method}`: every request, observed where
  its access line is written (http/envelope.py).
- `scimledger_projection_position{projection}`, `scimledger_projection_lag_events{projection}`
  and `scimledger_log_head`: read when scraped (one indexed lookup each).
- `scimledger_database_up`: 1 when the scrape's lookups succeeded;
  `scimledger_database_gate_open`: 0 while the process answering refuses requests at once
  because the database was out of reach (ledger.availability).
- `scimledger_rate_limited_requests_total`: requests refused with 429.

Under `serve --workers N` the request metrics are the whole server's: the supervisor turns on
prometheus-client's multiprocess mode before it forks (`use_multiprocess`), each worker
writes its counts to files in a directory of the server's own, and a scrape, whichever
worker answers it, adds them all up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from litestar import Request, Response, get
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from scimledger.http.services import Injected, Services
from scimledger.ledger import availability

REGISTRY = CollectorRegistry(auto_describe=True)

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
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own setting


def use_multiprocess(directory: str) -> None:
    """From now on, this process and those it forks count in files under `directory`
    (before any request is counted: a metric's values are made at their first use)."""
    os.environ[MULTIPROCESS_ENV] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def observe(route: str | None, method: str, status: int, seconds: float) -> None:
    """One request answered (http/envelope.py calls it for each)."""
    shown = route or "(no route)"
    verb = method if method in METHODS else "OTHER"
    REQUESTS.labels(shown, verb, str(status)).inc()
    DURATION.labels(shown, verb).observe(seconds)


class Projections(Collector):
    """The projections' positions and the log's head, read when scraped."""

    def __init__(self, services: Services) -> None:
        self.services = services

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
            head, positions = self._read()
        except Exception as exc:
            if not availability.unavailable(exc):
                raise
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
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
        for name, at in sorted(positions.items()):
            position.add_metric([name], at)
            lag.add_metric([name], max(0, head - at))
        yield position
        yield lag

    def _read(self) -> tuple[int, dict[str, int]]:
        services = self.services
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
        return head, positions


def install(app: Any, services: Services) -> None:
    """The app's registry: the process's request metrics and its projections' collector."""
    registry = CollectorRegistry(auto_describe=True)
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(Projections(services))
    app.state.metrics = registry


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


@get("/metrics", include_in_schema=False, sync_to_thread=True)
def metrics(request: Request[Any, Any, Any], services: Injected[Services]) -> Response[bytes]:
    registry: CollectorRegistry = request.app.state.metrics
    # The text format every Prometheus reads (Litestar adds the charset, utf-8).
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")


ROUTES = [metrics]
