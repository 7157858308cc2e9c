"""What sealing personal data costs (issue 21): the same harness, in the same run, against a
build of scimledger from before it (`--before`, a commit), alternating the two builds run
after run so that the machine's drift falls on both.

Run: .venv/bin/python -m tests.benchmarks.erasure_cost [--before 676fd06] [--runs 3]
         [--users 3000] [--log-users 30000] [--database sqlite|postgresql]
         [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Each run, for each build:
- the HTTP write path (tests/benchmarks/load.py): `scimledger serve` on a fresh database,
  pinned to --server-cpu, --users creates, lookups, PATCH deactivations and PUT updates from
  this process pinned to --client-cpu (concurrency 16): each phase's rate;
- in a process of that build (`_inside`): --log-users users created through the ledger
  (16 threads, group commit); then, on the ledger opened again (no key in memory, as in a
  `projections rebuild` process), a rebuild of the audit trail and of the SCIM read model
  (events/s), then the audit trail exported as CSV (entries/s).
The build from before runs from a git worktree of --before (made in a temporary directory,
imported first through PYTHONPATH); this tree's runs as installed. Prints every run, the
medians, and each ratio after / before (1.00 = no cost; the target is >= 0.90).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.benchmarks import load
from tests.benchmarks.run_load import free_port, start, stop

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("create", "lookup", "deactivate", "update")
INSIDE = ("ledger_creates", "audit_rebuild", "scim_rebuild", "audit_export")


def _inside(database: str, users: int) -> None:
    """Run in a process of the build measured: prints its figures as one JSON line."""
    import threading
    import time

    from scimledger.ledger.application import Ledger
    from scimledger.ledger.commands import NewUser
    from scimledger.ledger.context import Actor, CommandContext, RequestInfo
    from scimledger.ledger.database import DatabaseURL
    from scimledger.projections import audit
    from scimledger.projections.rebuild import rebuild
    from scimledger.projections.registry import REBUILDABLE
    from scimledger.projections.sql import SQL

    ledger = Ledger(DatabaseURL.parse(database))
    ledger.issue_token(
        org="cost",
        name="c",
        expires_at=None,
        actor=Actor.operator("b"),
        request=RequestInfo.local(),
    )
    org_id = ledger.organization_id("cost")
    assert org_id is not None
    context = CommandContext(org_id, Actor.operator("benchmark"), RequestInfo.local())
    threads, per = 16, users // 16

    def create(worker: int) -> None:
        for n in range(per):
            ledger.create_user(
                context,
                NewUser(
                    {
                        "userName": f"u{worker}-{n}@example.com",
                        "name": {"givenName": f"Given{n}", "familyName": f"Family{worker}"},
                        "emails": [{"value": f"u{worker}-{n}@example.com", "primary": True}],
                        "title": "Engineer",
                    }
                ),
            )

    began = time.perf_counter()
    workers = [threading.Thread(target=create, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    figures = {"ledger_creates": threads * per / (time.perf_counter() - began)}
    # Rebuilt as an operator does, in a process that holds no key in memory yet.
    ledger.close()
    ledger = Ledger(DatabaseURL.parse(database))
    head = ledger.recorder.max_notification_id() or 0
    names = {name.split("_")[0]: name for name in REBUILDABLE}
    for short in ("audit", "scim"):
        began = time.perf_counter()
        rebuild(ledger, names[short])
        figures[f"{short}_rebuild"] = head / (time.perf_counter() - began)
    sql = SQL(ledger)
    began = time.perf_counter()
    rows = sum(
        chunk.count(b"\n")
        for chunk in audit.csv_chunks(
            lambda: sql.transaction(commit=False), audit.AuditQuery(org_id=str(org_id))
        )
    )
    figures["audit_export"] = rows / (time.perf_counter() - began)
    ledger.close()
    print(json.dumps(figures))


def _env(build: Path | None, key_file: Path) -> dict[str, str]:
    env = {**os.environ, "SCIMLEDGER_MASTER_KEY_FILE": str(key_file)}
    if build is not None:
        env["PYTHONPATH"] = str(build)
    else:
        env.pop("PYTHONPATH", None)
    return env


def _database(kind: str, directory: Path, admin_url: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{directory}/{name}.db"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scimledger.scripts.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return done.stdout


def one(
    build: Path | None, args: argparse.Namespace, directory: Path, key_file: Path, tag: str
) -> dict[str, float]:
    env = _env(build, key_file)
    database = _database(args.database, directory, args.admin_url, f"cost_http_{tag}")
    token = json.loads(
        _cli(
            env,
            "tokens",
            "issue",
            "--org",
            "load",
            "--name",
            "load",
            "--expires",
            "never",
            "--json",
            "--database",
            database,
        )
    )["token"]
    port = free_port()
    server = start(
        [
            sys.executable,
            "-m",
            "scimledger.scripts.cli",
            "serve",
            "--database",
            database,
            "--port",
            str(port),
        ],
        args.server_cpu,
        port,
        env={k: v for k, v in env.items() if k in ("PYTHONPATH", "SCIMLEDGER_MASTER_KEY_FILE")},
    )
    try:
        phases = asyncio.run(
            load.workload(
                f"http://127.0.0.1:{port}/scim/v2",
                token,
                load.new_people(args.users),
                args.concurrency,
                phases=PHASES,
            )
        )
    finally:
        stop(server)
    figures = {phase.name: phase.rate for phase in phases}
    errors = sum(len(phase.errors) for phase in phases)
    if errors:
        raise SystemExit(f"{errors} requests failed")
    inside_db = _database(args.database, directory, args.admin_url, f"cost_log_{tag}")
    code = (
        "from tests.benchmarks.erasure_cost import _inside;"
        f" _inside({inside_db!r}, {args.log_users})"
    )
    inside = subprocess.run(
        ["taskset", "-c", str(args.server_cpu), sys.executable, "-c", code],
        env={**env, "PYTHONPATH": os.pathsep.join(str(p) for p in (build, ROOT) if p)},
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    figures.update(json.loads(inside.stdout.strip().splitlines()[-1]))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="676fd06", help="the commit before sealing")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--log-users", type=int, default=30000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {int(args.client_cpu)})
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        before = directory / "before"
        subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "worktree",
                "add",
                "-q",
                "--detach",
                str(before / "scimledger"),
                args.before,
            ],
            check=True,
        )
        key_file = directory / "master.key"
        key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
        key_file.chmod(0o600)
        results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        try:
            for run in range(args.runs):
                order = ("before", "after") if run % 2 == 0 else ("after", "before")
                for label in order:
                    build = before if label == "before" else None
                    figures = one(build, args, directory, key_file, f"{label}_{run}")
                    results[label].append(figures)
                    shown = ", ".join(f"{k} {v:,.0f}/s" for k, v in figures.items())
                    print(f"run {run + 1} {label}: {shown}", flush=True)
        finally:
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "remove",
                    "--force",
                    str(before / "scimledger"),
                ],
                check=False,
            )
    print(f"\nmedians of {args.runs} runs ({args.database}); after / before:")
    for measure in (*PHASES, *INSIDE):
        old = statistics.median(r[measure] for r in results["before"])
        new = statistics.median(r[measure] for r in results["after"])
        print(f"  {measure:16} before {old:>10,.0f}/s  after {new:>10,.0f}/s  {new / old:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
