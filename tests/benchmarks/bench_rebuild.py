"""Benchmark: `projections rebuild` of a read model over a large log (default 1,000,000 events).

Run: .venv/bin/python -m tests.benchmarks.bench_rebuild [--events 1000000] [--database URL]
     [--projection scim_read_model_v6] [--runs 3]

Fills a new store with the workload of bench_audit.py (users created, renamed, deactivated:
four events each with their userName index), unless the database already holds a log; then
rebuilds the projection `--runs` times through the same code as the CLI, and reports each
run's rate, the median, and the process's peak RSS after a tenth of the first run and at its
end: flat memory means the same figure.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time

from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.projections import scim
from scimledger.projections.rebuild import Progress, rebuild
from tests.benchmarks.bench_audit import bench_context, fill


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", help="default: a new SQLite file in a temporary directory")
    parser.add_argument("--projection", default=scim.NAME)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    ledger = Ledger(DatabaseURL.parse(url))
    if not ledger.recorder.max_notification_id():
        context = bench_context(ledger)
        started = time.perf_counter()
        fill(ledger, context, args.events)
        print(f"wrote the log in {time.perf_counter() - started:.0f} s")
    total = ledger.recorder.max_notification_id() or 0
    print(f"log: {total:,} events")

    tenth: list[float] = []

    def watch(progress: Progress) -> None:
        if not tenth and progress.position >= total // 10:
            tenth.append(peak_rss_mb())

    rates = []
    for run in range(args.runs):
        started = time.perf_counter()
        done = rebuild(ledger, args.projection, progress=watch if run == 0 else None)
        seconds = time.perf_counter() - started
        rates.append(done.applied / seconds)
        print(f"run {run + 1}: {done.applied:,} events in {seconds:.1f} s: {rates[-1]:,.0f}/s")
        if run == 0:
            print(f"peak RSS: {tenth[0]:.0f} MB after a tenth, {peak_rss_mb():.0f} MB at the end")
    print(f"{args.projection} rebuild: median {statistics.median(rates):,.0f} events/s")
    ledger.close()


if __name__ == "__main__":
    main()
