"""The figures this process counts (prometheus-client), the write side's among them; the
HTTP layer adds its own to `REGISTRY` and exposes them all at `GET /metrics` (http/metrics.py).

- `scimledger_ledger_saves_total` and `scimledger_ledger_events_total`: saves written to the
  event log (each one command's events, atomically) and their events.
- `scimledger_ledger_commit_saves`: saves per transaction of the event store (group commit,
  ledger.group_commit): 1 when writes come one at a time, more under concurrent writers.
- `scimledger_ledger_conflicts_total`: saves refused because another write changed the same
  resource or claimed the same name first; `scimledger_ledger_retries_total`: those decided
  again on fresh state (the others, out of attempts, answered 409).

Under `serve --workers N` the counts are the whole server's: `use_multiprocess` (called
before the workers are forked) makes every worker write its counts to files, which a scrape,
whichever worker answers it, adds up.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.metrics import MetricWrapperBase

REGISTRY = CollectorRegistry(auto_describe=True)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own setting

SAVES = Counter(
    "scimledger_ledger_saves",
    "Saves written to the event log, each one command's events, atomically.",
    registry=REGISTRY,
)
EVENTS = Counter("scimledger_ledger_events", "Events written to the event log.", registry=REGISTRY)
COMMIT_SAVES = Histogram(
    "scimledger_ledger_commit_saves",
    "Saves per transaction of the event store (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)
CONFLICTS = Counter(
    "scimledger_ledger_conflicts",
    "Saves refused because another write changed the same resource or claimed the same name first.",
    registry=REGISTRY,
)
RETRIES = Counter(
    "scimledger_ledger_retries",
    "Saves decided again on fresh state after a conflict.",
    registry=REGISTRY,
)


def use_multiprocess(directory: str) -> None:
    """From now on, this process and those it forks count in files under `directory`."""
    os.environ[MULTIPROCESS_ENV] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    # A labelled metric makes a value per label set at its first use, of the class above;
    # one without labels made its value when it was defined (at import), in memory, where a
    # scrape of the files never sees it: it is made again, in the files.
    metrics = {id(m): m for m in REGISTRY._names_to_collectors.values()}.values()
    for metric in metrics:
        if isinstance(metric, MetricWrapperBase) and not metric._labelnames:
            metric._metric_init()  # type: ignore[no-untyped-call]
