"""What a user costs in PostgreSQL (issue 18's storage target: at most 2 KB per user created
once): --users users created through the API of `scimledger serve` on a fresh database,
every projection caught up, VACUUM, then each table's size (its heap, TOAST and indexes)
per user, and the total.

Run: .venv/bin/python -m tests.benchmarks.storage [--users 20000] [--concurrency 16]
         [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import psycopg

from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.projections.follower import Followers
from tests.benchmarks import load
from tests.benchmarks.run_load import (
    DATABASE,
    benchmark_master_key,
    free_port,
    fresh_database,
    issue_token,
    start_scimledger,
    stop,
)

SIZES = """
SELECT c.relname AS name,
       pg_relation_size(c.oid) + COALESCE(pg_total_relation_size(c.reltoastrelid), 0) AS data,
       pg_indexes_size(c.oid) AS indexes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY pg_total_relation_size(c.oid) DESC
"""


def created(database: str, users: int, concurrency: int) -> None:
    token, _org_id = issue_token(database)
    port = free_port()
    every_cpu = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
    served = argparse.Namespace(serve_args=[], server_cpu=every_cpu, prefill=0)
    server = start_scimledger(database, port, served)
    try:
        phases = asyncio.run(
            load.workload(
                f"http://127.0.0.1:{port}/scim/v2",
                token,
                load.new_people(users),
                concurrency,
                phases=("create",),
            )
        )
    finally:
        stop(server)
    if phases[0].errors:
        raise SystemExit(f"{len(phases[0].errors)} creates failed: {phases[0].errors[:3]}")


def caught_up(database: str) -> None:
    """Every projection has applied the whole log (the server may have stopped before)."""
    ledger = Ledger(DatabaseURL.parse(database))
    followers = Followers(ledger, consume=True)
    followers.start()
    try:
        head = ledger.recorder.max_notification_id()
        for follower in followers.by_name.values():
            follower.wait_for(head, timeout=600)
    finally:
        followers.stop()
        ledger.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    benchmark_master_key()
    database = fresh_database(args.admin_url)
    try:
        created(database, args.users, args.concurrency)
        caught_up(database)
        with psycopg.connect(database, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
            rows = connection.execute(SIZES).fetchall()
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    print(f"{args.users:,} users created through the API; bytes per user after VACUUM")
    print(f"{'table':<28} {'data':>8} {'indexes':>8} {'total':>8}")
    total = 0
    for name, data, indexes in rows:
        per = (data + indexes) / args.users
        total += data + indexes
        if per >= 1:
            print(
                f"{name:<28} {data / args.users:>8,.0f} {indexes / args.users:>8,.0f} {per:>8,.0f}"
            )
    print(f"{'all':<28} {'':>8} {'':>8} {total / args.users:>8,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
