"""`serve --workers 2` against `--workers 1` on this machine's cores, nothing pinned.

Run: .venv/bin/python -m tests.benchmarks.workers [--database postgresql|sqlite] [--users 3000]
         [--concurrency 32] [--runs 3] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Each run measures `--workers 1` then `--workers 2`, each on a fresh database (as compare.py
makes them), with load.py's create and lookup phases; the server, PostgreSQL and the load
generator share every core, as they would on a small machine running all three. Prints each
run, then the medians and the ratio workers 2 / workers 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from collections.abc import Sequence

from tests.benchmarks import load
from tests.benchmarks.compare import Meter, Result, scimledger_database, scimledger_meter
from tests.benchmarks.run_load import (
    benchmark_master_key,
    free_port,
    prepare,
    start_scimledger,
    stop,
)

PHASES = ("create", "lookup")


def one(args: argparse.Namespace, workers: int) -> dict[str, Result]:
    people = load.new_people(args.users)
    with scimledger_database(args) as database:
        token, _ = prepare(database, 0)
        port = free_port()
        served = argparse.Namespace(
            serve_args=["--workers", str(workers)], server_cpu=args.cpus, prefill=0
        )
        server = start_scimledger(database, port, served)
        try:
            meter: Meter = scimledger_meter(args, database, server.pid)
            results = {}
            for name in PHASES:
                before = meter.sample()
                [phase] = asyncio.run(
                    load.workload(
                        f"http://127.0.0.1:{port}/scim/v2", token, people, args.concurrency, [name]
                    )
                )
                results[name] = Result(phase, *meter.spent(before))
        finally:
            stop(server)
    for name, result in results.items():
        cpu = result.per_request_ms(result.server_cpu) or 0.0
        print(
            f"  workers {workers}  {name:<7} {result.throughput:>7,.0f} req/s  p99 "
            f"{result.p99_ms:6.1f} ms  errors {len(result.phase.errors)}  "
            f"server CPU {cpu:.2f} ms/req"
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    args.cpus = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
    benchmark_master_key()
    print(f"scimledger on {args.database}, {args.users:,} users, concurrency {args.concurrency}")
    rates: dict[tuple[int, str], list[float]] = {}
    errors = 0
    for number in range(1, args.runs + 1):
        print(f"-- run {number}")
        for workers in (1, 2):
            for name, result in one(args, workers).items():
                rates.setdefault((workers, name), []).append(result.throughput)
                errors += len(result.phase.errors)
    print(f"-- medians of {args.runs} runs")
    for name in PHASES:
        single = statistics.median(rates[(1, name)])
        double = statistics.median(rates[(2, name)])
        print(
            f"  {name:<7} workers 1 {single:>7,.0f} req/s  workers 2 {double:>7,.0f} req/s  "
            f"ratio {double / single:.2f}x"
        )
    if errors:
        print(f"{errors} requests failed")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
