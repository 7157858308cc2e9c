"""Benchmark: the audit trail and the hash chain over a large log (default 1,000,000 events).

Run: .venv/bin/python -m tests.benchmarks.bench_audit [--events 1000000] [--database URL]

Fills a new store with users (created, updated, deactivated: four events each, with their
userName index), one of them changed throughout the log; then measures:
- building the SCIM read model, the hash chain and the audit trail from scratch (events/s),
- `ledger verify` over the whole log (events/s),
- one subject's history (median of 21 queries, ms),
- a CSV export of every audit entry (entries/s), and the Python heap's peak while exporting
  all of it compared with exporting a tenth: flat memory means the same peak.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import tempfile
import time
import tracemalloc
from typing import Any

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.names import NameIndex, normalize_name
from scimledger.ledger.users import User
from scimledger.projections import audit, chain
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL


def bench_context(ledger: Ledger) -> CommandContext:
    """The organization "bench" (made with a token) and a SCIM client's context in it."""
    ledger.issue_token(
        org="bench",
        name="bench",
        expires_at=None,
        actor=Actor.operator("benchmark"),
        request=RequestInfo.local(),
    )
    org_id = ledger.organization_id("bench")
    assert org_id is not None
    return CommandContext(
        org_id, Actor(kind="token", id="t", name="bench"), RequestInfo("r", "203.0.113.7", "bench")
    )


def fill(ledger: Ledger, context: CommandContext, events: int) -> str:
    """Writes about `events` events; returns the id of the user changed throughout."""
    special = User(
        org_id=context.org_id,
        attributes={"userName": "watched@bench.example"},
        active=True,
        context=context,
    )
    ledger.save(
        special,
        NameIndex(
            org_id=context.org_id,
            kind="userName",
            name="watched@bench.example",
            owner_id=special.id,
        ),
    )
    users = events // 4
    batch: list[Any] = []
    for n in range(users):
        name = f"user{n}@bench.example"
        user = User(
            org_id=context.org_id, attributes={"userName": name}, active=True, context=context
        )
        user.replace_attributes({"userName": name, "title": f"title {n}"}, context)
        user.set_active(False, context)
        batch += [
            user,
            NameIndex(
                org_id=context.org_id, kind="userName", name=normalize_name(name), owner_id=user.id
            ),
        ]
        if len(batch) >= 1000:
            if n % 20_000 < 500:  # the watched user changes now and then, all along the log
                special.replace_attributes(
                    {"userName": "watched@bench.example", "title": f"at {n}"}, context
                )
                batch.append(special)
            ledger.save(*batch)
            batch = []
    if batch:
        ledger.save(*batch)
    return str(special.id)


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label}: {count:,} in {seconds:.1f} s = {count / seconds:,.0f}/s")


def export(sql: SQL, query: audit.AuditQuery, limit: int | None) -> tuple[int, float, int]:
    """Streams entries to a CSV sink; returns count, seconds and the heap's peak bytes."""
    tracemalloc.start()
    started = time.perf_counter()
    sink = io.StringIO()
    writer = csv.writer(sink)
    count = 0
    for item in audit.stream(lambda: sql.transaction(commit=False), query):
        writer.writerow([item[c] for c in audit.COLUMNS])
        count += 1
        if sink.tell() > 1 << 20:  # a file would be written and forgotten likewise
            sink.seek(0)
            sink.truncate()
        if limit is not None and count >= limit:
            break
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", help="default: a new SQLite file in a temporary directory")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    ledger = Ledger(DatabaseURL.parse(url))
    context = bench_context(ledger)

    started = time.perf_counter()
    watched = fill(ledger, context, args.events)
    total = ledger.recorder.max_notification_id() or 0
    rate("write the log", total, time.perf_counter() - started)

    for label, projection in (
        ("SCIM read model", ScimProjection()),
        ("hash chain", chain.ChainProjection()),
        ("audit trail", audit.AuditProjection()),
    ):
        started = time.perf_counter()
        Runner(ledger, projection).run_once()
        rate(f"build the {label}", total, time.perf_counter() - started)

    started = time.perf_counter()
    result = chain.verify(ledger)
    assert result.ok, result.problem
    rate("ledger verify", result.checked, time.perf_counter() - started)

    sql = SQL(ledger)
    timings = []
    for _ in range(21):
        started = time.perf_counter()
        with sql.transaction(commit=False) as cursor:
            entries = audit.page(cursor, audit.AuditQuery(subject=watched), 1000)
        timings.append(time.perf_counter() - started)
    print(
        f"history of one user ({len(entries)} entries among {total:,} events): "
        f"median {statistics.median(timings) * 1000:.1f} ms, "
        f"max {max(timings) * 1000:.1f} ms"
    )

    tenth, _, small_peak = export(sql, audit.AuditQuery(), total // 10)
    count, seconds, peak = export(sql, audit.AuditQuery(), None)
    rate("CSV export of the audit trail", count, seconds)
    print(
        f"heap peak while exporting: {peak / 1e6:.1f} MB for all {count:,} entries, "
        f"{small_peak / 1e6:.1f} MB for {tenth:,}"
    )
    if url.startswith("sqlite:///"):
        size = os.path.getsize(DatabaseURL.parse(url).path)
        print(f"database file: {size / 1e6:.0f} MB")
    ledger.close()


if __name__ == "__main__":
    main()
