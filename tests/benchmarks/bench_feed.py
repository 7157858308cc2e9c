"""Benchmark: a consumer reading a backlog of the events feed (default 1,000,000 events)
through a running server.

Run: .venv/bin/python -m tests.benchmarks.bench_feed [--events 1000000] [--database URL]
     [--limit 1000] [--runs 3]

Fills a new store with bench_audit.py's workload (users created, renamed and deactivated,
with their userName index: three feed events in four log events, so the log gets a third
more events than the feed is to hold) unless the database already holds a log, builds the
read models and catches up every other projection (the hash chain among them), starts
`scimledger serve` on it, and reads the organization's whole feed with an `events:read`
token, `--limit` events a page, over one kept-alive connection, `--runs` times: each page
decoded into typed events (msgspec, as a consumer in a hurry would) while the server makes
the next one (asked for by the page's `Link` header first). Reports each run's events a
second and the median.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.projections import audit, scim
from scimledger.projections.rebuild import rebuild
from scimledger.projections.registry import all_projections
from scimledger.projections.runner import Runner
from tests.benchmarks.bench_audit import bench_context, fill
from tests.benchmarks.run_load import free_port, stop


def read_all(port: int, token: str, limit: int) -> tuple[int, float]:
    """Every event of the feed, page by page; how many, in how many seconds. The next page
    is asked for (its address is in the `Link` header) before this one is decoded, so the
    server makes it while the consumer decodes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    count = 0
    began = time.perf_counter()
    connection.request("GET", f"/admin/v1/events?limit={limit}", headers=headers)
    while True:
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise SystemExit(f"{answer.status}: {body[:500]!r}")
        following = re.fullmatch(r'<([^>]+)>; rel="next"', answer.headers["link"] or "")
        assert following is not None, answer.headers["link"]
        connection.request("GET", following.group(1), headers=headers)
        page = _page(body)
        if not page.data:
            connection.getresponse().read()
            return count, time.perf_counter() - began
        count += len(page.data)


class _Event(msgspec.Struct):
    id: str
    type: str
    occurred_at: str
    subject: dict[str, str]
    actor: dict[str, str]
    changes: dict[str, Any]
    data: dict[str, Any] | None


class _Page(msgspec.Struct):
    data: list[_Event]
    next: str


_page = msgspec.json.Decoder(_Page).decode


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
            fill(ledger, bench_context(ledger), args.events * 4 // 3 + 4)
            print(f"filled in {time.perf_counter() - began:.0f} s", flush=True)
            for name in (audit.NAME, scim.NAME):
                began = time.perf_counter()
                rebuild(ledger, name)
                print(f"built {name} in {time.perf_counter() - began:.0f} s", flush=True)
        # Every other projection (the hash chain, tokens) caught up too: else the server
        # would build them while it is measured.
        began = time.perf_counter()
        for projection in all_projections():
            Runner(ledger, projection).run_once()
        print(f"caught up the rest in {time.perf_counter() - began:.0f} s", flush=True)
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
                f"run {run + 1}: {count:,} events in {seconds:.1f} s: {count / seconds:,.0f}/s",
                flush=True,
            )
        print(f"median of {args.runs} runs: {statistics.median(rates):,.0f} events/s")
        print(f"({datetime.now(UTC):%Y-%m-%d}, {args.limit} a page)")
    finally:
        stop(server)


if __name__ == "__main__":
    main()
