"""scimledger side by side with scim2-server (python-scim's SCIM server, which keeps its
resources in memory and persists nothing), under the same load, on the same core.

Run: .venv/bin/python -m tests.benchmarks.compare [--database postgresql|sqlite] [--users 3000]
         [--concurrency 16] [--runs 3] [--server-cpu 0] [--client-cpu 1] [--prefill 0]
         [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--serve-args ...]
scim2-server is a benchmark-only dependency: .venv/bin/pip install -e '.[bench]'

Each run, for each server in turn, the same people: scimledger on a fresh database (PostgreSQL
as run_load.py makes it, or a new SQLite file in a temporary directory), with a token and
--prefill users written to its store, `scimledger serve` pinned to --server-cpu; then
scim2-server (scim2_server_asgi.py: its ASGI application over its in-memory storage, under
uvicorn) pinned to the same core, with --prefill users created through its API first. The
phases of load.py (create, lookup, PATCH deactivate, PUT update, import walk) run one after
the other from this process, pinned to --client-cpu. For every phase: the rate, the p99, the
errors, the CPU the server process (and its children) used per request, and with PostgreSQL
the CPU of the benchmark database's backends per request (utime + stime from /proc of the
pids pg_stat_activity lists; PostgreSQL itself is not pinned, and its WAL writer and
checkpointer are not counted; /proc counts in clock ticks, 10 ms, so small runs give coarse
figures). Prints every run, the ratios scimledger / scim2-server, then the medians of the
runs next to the targets. Exits 1 if any request of any run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import secrets
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from tests.benchmarks import load
from tests.benchmarks.run_load import (
    benchmark_master_key,
    free_port,
    fresh_database,
    prepare,
    start,
    start_scimledger,
    stop,
)

HERE = Path(__file__).resolve().parent

PHASES = ("create", "lookup", "deactivate", "update", "import")  # load.workload's order
LABELS = {
    "create": "creates (POST)",
    "lookup": "lookups (filter)",
    "deactivate": "PATCH deactivations",
    "update": "PUT updates",
    "import": "import walk (users/s)",
}
TARGETS = {"create": 1.5, "lookup": 3.0, "deactivate": 1.5, "update": 1.3, "import": 10.0}
SQLITE_TARGETS = {**TARGETS, "create": 1.0, "lookup": 2.5, "deactivate": 1.0}
P99_TARGET_MS = 50.0  # scimledger's, every phase (an import request is a page of 100)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- CPU accounting, from /proc ---------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (the state is [0], ppid [1])."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:  # the process has gone
        return None


def _cpu(fields: list[str]) -> float:
    """utime + stime + cutime + cstime (its reaped children's), in seconds."""
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def process_cpu(pid: int) -> float:
    fields = _stat_fields(pid)
    return _cpu(fields) if fields else 0.0


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += process_cpu(pid)
        pending += children.get(pid, [])
    return total


@dataclass
class Sample:
    server: float
    backends: dict[int, float] = field(default_factory=dict)


@dataclass
class Meter:
    """Samples the CPU of the server's processes and, given a database, of its backends."""

    server_pid: int
    admin_url: str | None = None
    database: str | None = None

    def backend_pids(self) -> list[int]:
        if self.admin_url is None:
            return []
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
            ).fetchall()
        return [int(pid) for (pid,) in rows]

    def sample(self) -> Sample:
        backends = {pid: process_cpu(pid) for pid in self.backend_pids()}
        return Sample(tree_cpu(self.server_pid), backends)

    def spent(self, before: Sample) -> tuple[float, float | None]:
        """CPU seconds since `before`: the server's, and its backends' (None without a
        database; a backend that started since counts whole, one that ended is lost)."""
        after = self.sample()
        if self.admin_url is None:
            return after.server - before.server, None
        database = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items())
        return after.server - before.server, database


# -- Measuring ----------------------------------------------------------------------------


@dataclass
class Result:
    phase: load.Phase
    server_cpu: float  # seconds
    database_cpu: float | None  # seconds, PostgreSQL's backends

    @property
    def throughput(self) -> float:
        """Requests per second; users per second for the import walk."""
        if self.phase.name == "import":
            return self.phase.users / self.phase.seconds if self.phase.seconds else 0.0
        return self.phase.rate

    @property
    def p99_ms(self) -> float:
        return self.phase.percentile(0.99) * 1000 if self.phase.latencies else 0.0

    def per_request_ms(self, seconds: float | None) -> float | None:
        requests = len(self.phase.latencies)
        return None if seconds is None or not requests else seconds * 1000 / requests


@dataclass
class Served:
    """One server's run: a result per phase, and its peak RSS."""

    name: str
    results: dict[str, Result]
    rss_mb: float

    @property
    def errors(self) -> int:
        return sum(len(result.phase.errors) for result in self.results.values())


async def measure(
    base_url: str, token: str, people: Sequence[load.Person], concurrency: int, meter: Meter
) -> dict[str, Result]:
    """load.workload's phases one at a time, sampling the CPU around each."""
    results = {}
    for name in PHASES:
        before = meter.sample()
        [phase] = await load.workload(base_url, token, people, concurrency, [name])
        results[name] = Result(phase, *meter.spent(before))
    return results


def copies(people: Sequence[load.Person]) -> list[load.Person]:
    """The same userNames, without the ids a previous server gave them."""
    return [load.Person(person.user_name) for person in people]


@contextmanager
def scimledger_database(args: argparse.Namespace) -> Iterator[str]:
    """A fresh database's URL: PostgreSQL's as run_load.py makes it, or a new SQLite file."""
    if args.database == "postgresql":
        yield fresh_database(args.admin_url)
        return
    with tempfile.TemporaryDirectory(prefix="scimledger-compare-") as directory:
        yield f"sqlite:///{Path(directory).resolve() / 'scimledger.db'}"


def scimledger_meter(args: argparse.Namespace, database: str, pid: int) -> Meter:
    """The server's CPU, and with PostgreSQL its database's backends'."""
    if args.database == "sqlite":
        return Meter(pid)
    return Meter(pid, args.admin_url, urlsplit(database).path.lstrip("/"))


def run_scimledger(args: argparse.Namespace, people: Sequence[load.Person]) -> Served:
    with scimledger_database(args) as database:
        token, _ = prepare(database, args.prefill)
        port = free_port()
        server = start_scimledger(database, port, args)
        try:
            meter = scimledger_meter(args, database, server.pid)
            results = asyncio.run(
                measure(f"http://127.0.0.1:{port}/scim/v2", token, people, args.concurrency, meter)
            )
            rss = load.peak_rss_mb(server.pid) or 0.0
        finally:
            stop(server)
    return Served(f"scimledger ({args.database})", results, rss)


async def prefill_over_api(base_url: str, token: str, users: int, concurrency: int) -> None:
    """`users` users created through the API, as run_load.prefill names them."""
    people = [load.Person(f"pre{n}@load.example") for n in range(users)]
    [phase] = await load.workload(base_url, token, people, concurrency, ["create"])
    if phase.errors:
        raise SystemExit(f"scim2-server prefill failed: {phase.errors[0]}")
    print(f"prefilled scim2-server with {users:,} users in {phase.seconds:.0f} s")


def run_scim2_server(args: argparse.Namespace, people: Sequence[load.Person]) -> Served:
    token = secrets.token_urlsafe(24)
    port = free_port()
    server = start(
        [sys.executable, str(HERE / "scim2_server_asgi.py"), str(port)],
        args.server_cpu,
        port,
        env={"SCIM2_SERVER_TOKEN": token},
    )
    base_url = f"http://127.0.0.1:{port}/v2"
    try:
        if args.prefill:
            asyncio.run(prefill_over_api(base_url, token, args.prefill, args.concurrency))
        results = asyncio.run(measure(base_url, token, people, args.concurrency, Meter(server.pid)))
        rss = load.peak_rss_mb(server.pid) or 0.0
    finally:
        stop(server)
    return Served("scim2-server", results, rss)


# -- Reporting ----------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_served(served: Served) -> None:
    print(f"{served.name}, peak RSS {served.rss_mb:.0f} MB")
    for result in served.results.values():
        phase = result.phase
        cpu = f"CPU ms/req: server {_ms(result.per_request_ms(result.server_cpu))}"
        if result.database_cpu is not None:
            cpu += f", PostgreSQL {_ms(result.per_request_ms(result.database_cpu))}"
        print(f"  {phase.line()}  {cpu}")
        if phase.name == "import":
            print(f"  {'':<11} {result.throughput:>9,.0f} users/s ({phase.users:,} users)")
        for problem in phase.errors[:5]:
            print(f"      {problem[:200]}")


@dataclass
class Row:
    """One phase of one run: scimledger against scim2-server."""

    ratio: float
    p99_ms: tuple[float, float]
    errors: tuple[int, int]
    server_cpu_ms: tuple[float | None, float | None]
    database_cpu_ms: float | None


def compare(ours: Served, theirs: Served) -> dict[str, Row]:
    rows = {}
    for name in PHASES:
        mine, other = ours.results[name], theirs.results[name]
        rows[name] = Row(
            ratio=mine.throughput / other.throughput if other.throughput else float("inf"),
            p99_ms=(mine.p99_ms, other.p99_ms),
            errors=(len(mine.phase.errors), len(other.phase.errors)),
            server_cpu_ms=(
                mine.per_request_ms(mine.server_cpu),
                other.per_request_ms(other.server_cpu),
            ),
            database_cpu_ms=mine.per_request_ms(mine.database_cpu),
        )
    return rows


# Two header lines: what a column measures, then whose figure it is ("ledger": scimledger's).
HEADER = (
    f"{'':<22} {'ratio':>7} {'p99 ms':>16} {'errors':>13} {'server CPU ms/req':>17}"
    f" {'PG CPU ms/req':>13}\n"
    f"{'':<22} {'':>7} {'ledger':>8}{'scim2':>8} {'ledger':>7}{'scim2':>6}"
    f" {'ledger':>8} {'scim2':>8} {'ledger':>13}"
)


def print_rows(rows: dict[str, Row]) -> None:
    print(HEADER)
    for name, row in rows.items():
        print(
            f"{LABELS[name]:<22} {row.ratio:>6.2f}x {row.p99_ms[0]:>8.1f}{row.p99_ms[1]:>8.1f}"
            f" {row.errors[0]:>7}{row.errors[1]:>6}"
            f" {_ms(row.server_cpu_ms[0]):>8} {_ms(row.server_cpu_ms[1]):>8}"
            f" {_ms(row.database_cpu_ms):>13}"
        )


def _verdict(met: bool) -> str:
    return f"{'ok' if met else 'MISSED':>6}"


def _median(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def print_medians(runs: Sequence[dict[str, Row]], targets: dict[str, float]) -> None:
    print(f"-- medians of {len(runs)} runs, scimledger / scim2-server, and the targets")
    print(
        f"{'':<22} {'ratio':>7} {'target':>16} {'p99 ms':>8} {'target':>15}"
        f" {'server CPU ms/req':>17} {'PG CPU ms/req':>13}\n"
        f"{'':<22} {'':>7} {'':>16} {'ledger':>8} {'':>15}"
        f" {'ledger':>8} {'scim2':>8} {'ledger':>13}"
    )
    for name in PHASES:
        rows = [run[name] for run in runs]
        ratio = statistics.median(row.ratio for row in rows)
        p99 = statistics.median(row.p99_ms[0] for row in rows)
        cpu = [_ms(_median([row.server_cpu_ms[side] for row in rows])) for side in (0, 1)]
        database_cpu = _ms(_median([row.database_cpu_ms for row in rows]))
        ratio_target = f">= {targets[name]:.1f}x {_verdict(ratio >= targets[name])}"
        p99_target = f"< {P99_TARGET_MS:.0f} {_verdict(p99 < P99_TARGET_MS)}"
        print(
            f"{LABELS[name]:<22} {ratio:>6.2f}x {ratio_target:>16} {p99:>8.1f} {p99_target:>15}"
            f" {cpu[0]:>8} {cpu[1]:>8} {database_cpu:>13}"
        )


def one_run(args: argparse.Namespace) -> tuple[dict[str, Row], int]:
    people = load.new_people(args.users)
    ours = run_scimledger(args, copies(people))
    print_served(ours)
    theirs = run_scim2_server(args, copies(people))
    print_served(theirs)
    rows = compare(ours, theirs)
    print_rows(rows)
    return rows, ours.errors + theirs.errors


def require_scim2_server() -> None:
    if importlib.util.find_spec("scim2_server") is None:
        raise SystemExit(
            "scim2-server is not installed; it is the benchmark-only extra `bench`:\n"
            "    .venv/bin/pip install -e '.[bench]'"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--prefill", type=int, default=0, help="users in each server before the workload"
    )
    parser.add_argument(
        "--serve-args", nargs=argparse.REMAINDER, default=[], help="passed to `scimledger serve`"
    )
    args = parser.parse_args(argv)
    require_scim2_server()
    os.sched_setaffinity(0, {args.client_cpu})
    benchmark_master_key()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: scimledger on {args.database} against "
        f"scim2-server, {args.users:,} users, {args.prefill:,} prefilled, concurrency "
        f"{args.concurrency}, servers on cpu {args.server_cpu}, load on cpu {args.client_cpu}"
    )
    runs: list[dict[str, Row]] = []
    errors = 0
    for number in range(1, args.runs + 1):
        print(f"-- run {number}")
        rows, failed = one_run(args)
        runs.append(rows)
        errors += failed
    targets = SQLITE_TARGETS if args.database == "sqlite" else TARGETS
    print_medians(runs, targets)
    if errors:
        print(f"{errors} requests failed")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
