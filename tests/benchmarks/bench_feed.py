"""Benchmark: a consumer reading the events feed's backlog of a large log (default 1,000,000
events) through a running server.

Run: .venv/bin/python -m tests.benchmarks.bench_feed [--events 1000000] [--database URL]
     [--limit 1000] [--runs 3]

Fills a new store with bench_audit.py's workload (users created, renamed, deactivated, with
their userName index: three changes in four events) unless the database already holds a
log, builds the read models, starts `scimledger serve` on it, and reads the organization's
whole feed with an `events:read` token, `--limit` changes a page, over one kept-alive
connection, `--runs` times. Reports each run's changes a second and the median.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.projections import audit, scim
from scimledger.projections.rebuild import rebuild
from tests.benchmarks.bench_audit import bench_context, fill
from tests.benchmarks.run_load import free_port, stop


def read_all(port: int, token: str, limit: int) -> tuple[int, float]:
    """Every change of the feed, page by page; how many, in how many seconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    cursor, count = "", 0
    began = time.perf_counter()
    while True:
        connection.request("GET", f"/admin/v1/events?limit={limit}&after={cursor}", headers=headers)
        answer = connection.getresponse()
        page = json.loads(answer.read())
        if answer.status != 200:
            raise SystemExit(f"{answer.status}: {page}")
        if not page["data"]:
            return count, time.perf_counter() - began
        count += len(page["data"])
        cursor = page["next"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", help="default: a new SQLite file in a temporary directory")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    ledger = Ledger(DatabaseURL.parse(url))
    try:
        if not ledger.recorder.max_notification_id():
            began = time.perf_counter()
            fill(ledger, bench_context(ledger), args.events)
            print(f"filled in {time.perf_counter() - began:.0f} s", flush=True)
            for name in (audit.NAME, scim.NAME):
                began = time.perf_counter()
                rebuild(ledger, name)
                print(f"built {name} in {time.perf_counter() - began:.0f} s", flush=True)
        token = ledger.issue_token(
            org="bench",
            name="feed",
            expires_at=None,
            actor=Actor.operator("benchmark"),
            request=RequestInfo.local(),
            scopes=("events:read",),
        ).token
        print(f"log head {ledger.recorder.max_notification_id():,}", flush=True)
    finally:
        ledger.close()
    port = free_port()
    scimledger = Path(sys.executable).parent / "scimledger"
    server = subprocess.Popen(
        [str(scimledger), "serve", "--database", url, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        rates = []
        for run in range(args.runs):
            count, seconds = read_all(port, token, args.limit)
            rates.append(count / seconds)
            print(
                f"run {run + 1}: {count:,} changes in {seconds:.1f} s: {count / seconds:,.0f}/s",
                flush=True,
            )
        print(f"median of {args.runs} runs: {statistics.median(rates):,.0f} changes/s")
        print(f"({datetime.now(UTC):%Y-%m-%d}, {args.limit} a page)")
    finally:
        stop(server)


if __name__ == "__main__":
    main()
