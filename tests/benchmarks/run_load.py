"""Issue 7's measurement: scimledger and the bare baseline under the load generator, the
server on one core and the generator on the other, on fresh PostgreSQL databases.

Run: .venv/bin/python -m tests.benchmarks.run_load [--users 2000] [--concurrency 16] [--runs 3]
         [--server-cpu 0] [--client-cpu 1] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Each run: a fresh database, a token, --prefill users written to the store (the server
builds its read models from them as it starts), `scimledger serve` pinned to --server-cpu, the full
workload (load.py) from this process pinned to --client-cpu, the server's peak RSS; then the
bare ASGI baseline (baseline_asgi.py) on the same core answers the same lookups. Prints
every run and the medians, and the lookup ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.keys import MASTER_KEY_ENV, MasterKey
from scimledger.ledger.names import NameIndex
from scimledger.ledger.users import User
from tests.benchmarks import load

HERE = Path(__file__).resolve().parent

DATABASE = "scimledger_load"


def benchmark_master_key() -> None:
    """A master key for the servers and ledgers a benchmark starts, unless
    SCIMLEDGER_MASTER_KEY_FILE names one: PostgreSQL refuses to open without it
    (ledger.keys). Made in a temporary file, removed when the benchmark ends."""
    if os.environ.get(MASTER_KEY_ENV):
        return
    directory = tempfile.mkdtemp(prefix="scimledger-benchmark-")  # its owner's alone
    path = Path(directory) / "master.key"
    MasterKey.create(path)
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[MASTER_KEY_ENV] = str(path)  # inherited by the processes it starts


def fresh_database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{DATABASE}"))


def prefill(database: str, users: int) -> None:
    """`users` more users in the organization "load", written straight to the event store
    in batches (UserCreated and the userName index, as a create writes them); the server
    builds its read models from them when it starts."""
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        org_id = ledger.organization_id("load")
        assert org_id is not None
        context = CommandContext(
            org_id, Actor(kind="operator", id="prefill", name="prefill"), RequestInfo.local()
        )
        batch: list[Any] = []
        for n in range(users):
            name = f"pre{n}@load.example"
            attributes = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "name": {"givenName": "Pre", "familyName": f"user{n}"},
                "emails": [{"value": name, "type": "work", "primary": True}],
            }
            user = User(org_id=org_id, attributes=attributes, active=True, context=context)
            # As Ledger._claim_name makes it: keyed by the name, recording none.
            index_id = ledger.name_index_id(org_id, "userName", name)
            index = NameIndex.claimed(index_id, org_id, "userName", "", user.id)
            batch += [user, index]
            if len(batch) >= 2000:
                ledger.save(*batch)
                batch = []
        if batch:
            ledger.save(*batch)
    finally:
        ledger.close()


def issue_token(database: str) -> tuple[str, str]:
    """A SCIM token for the organization "load", and the organization's id."""
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        issued = ledger.issue_token(
            org="load",
            name="load",
            expires_at=None,
            actor=Actor.operator("benchmark"),
            request=RequestInfo.local(),
        )
        org_id = ledger.organization_id("load")
    finally:
        ledger.close()
    return issued.token, str(org_id)


def prepare(database: str, users: int) -> tuple[str, str]:
    """`issue_token`, then `prefill` with `users` (timed, when there are any)."""
    token, org_id = issue_token(database)
    if users:
        began = time.perf_counter()
        prefill(database, users)
        print(f"prefilled {users:,} users in {time.perf_counter() - began:.0f} s")
    return token, org_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    command: Sequence[str], cpu: int | str, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["taskset", "-c", str(cpu), *command],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 1800  # a server first builds its read models (--prefill)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{command} did not start listening")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_scimledger(database: str, port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """This virtualenv's `scimledger serve` on `database` and `port`, with args.serve_args,
    pinned to args.server_cpu, once it listens."""
    scimledger = Path(sys.executable).parent / "scimledger"
    began = time.perf_counter()
    server = start(
        [str(scimledger), "serve", "--database", database, "--port", str(port), *args.serve_args],
        args.server_cpu,
        port,
    )
    if args.prefill:
        print(f"server built its read models and listens after {time.perf_counter() - began:.0f} s")
    return server


def one_run(args: argparse.Namespace) -> dict[str, float]:
    database = fresh_database(args.admin_url)
    token, org_id = prepare(database, args.prefill)
    people = load.new_people(args.users)
    port = free_port()
    server = start_scimledger(database, port, args)
    try:
        phases = asyncio.run(
            load.workload(f"http://127.0.0.1:{port}/scim/v2", token, people, args.concurrency)
        )
        rss = load.peak_rss_mb(server.pid) or 0.0
    finally:
        stop(server)
    load.report(phases)
    print(f"server peak RSS: {rss:.0f} MB")
    figures = {phase.name: phase.rate for phase in phases}
    figures["import users/s"] = phases[-1].users / phases[-1].seconds
    figures["lookup p99 ms"] = next(p for p in phases if p.name == "lookup").percentile(0.99) * 1000
    figures["peak RSS MB"] = rss
    errors = sum(len(phase.errors) for phase in phases)
    if not args.skip_baseline:
        port = free_port()
        baseline = start(
            [sys.executable, str(HERE / "baseline_asgi.py"), str(port)],
            args.server_cpu,
            port,
            env={
                "SCIMLEDGER_BASELINE_DATABASE": database,
                "SCIMLEDGER_BASELINE_ORG": org_id,
                "SCIMLEDGER_BASELINE_TOKEN": token,
            },
        )
        try:
            [bare] = asyncio.run(
                load.workload(
                    f"http://127.0.0.1:{port}/scim/v2", token, people, args.concurrency, ["lookup"]
                )
            )
        finally:
            stop(baseline)
        print(f"baseline   {bare.line()[11:]}")
        figures["baseline lookup"] = bare.rate
        figures["lookup / baseline"] = figures["lookup"] / bare.rate
        errors += len(bare.errors)
    figures["errors"] = errors
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--prefill", type=int, default=0, help="users in the store before the server starts"
    )
    parser.add_argument(
        "--serve-args", nargs=argparse.REMAINDER, default=[], help="passed to `scimledger serve`"
    )
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.client_cpu})
    benchmark_master_key()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.users:,} users, concurrency "
        f"{args.concurrency}, server on cpu {args.server_cpu}, load on cpu {args.client_cpu}"
    )
    runs = []
    for number in range(1, args.runs + 1):
        print(f"-- run {number}")
        runs.append(one_run(args))
    print(f"-- medians of {len(runs)} runs")
    for name in runs[0]:
        values = [run[name] for run in runs if name in run]
        shown = ", ".join(f"{v:,.0f}" if v > 10 else f"{v:.2f}" for v in values)
        print(f"{name:<18} {statistics.median(values):>10,.2f}   ({shown})")
    return 1 if any(run["errors"] for run in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
