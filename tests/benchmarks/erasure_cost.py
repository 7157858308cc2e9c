"""What sealing personal data costs (issue 21): the same harness, in the same run, against a
build of scimledger from before it (`--before`, a commit), alternating the two builds run
after run so that the machine's drift falls on both.

Run: .venv/bin/python -m tests.benchmarks.erasure_cost [--before 676fd06] [--runs 3]
         [--users 3000] [--log-users 30000] [--database sqlite|postgresql]
         [--instructions [--count-creates 300]]
         [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Each run, for each build:
- the HTTP write path (tests/benchmarks/load.py): `scimledger serve` on a fresh database,
  pinned to --server-cpu, --users creates, lookups, PATCH deactivations and PUT updates from
  this process pinned to --client-cpu (concurrency 16): each phase's rate;
- in a process of that build (`_inside`): --log-users users created through the ledger
  (16 threads, group commit) as the server creates them (the projections following, the
  log's listener live); then, on the ledger opened again (no key in memory, as in a
  `projections rebuild` process), a rebuild of the audit trail and of the SCIM read model
  (events/s), then the audit trail exported as CSV (entries/s).
The build from before runs from a git worktree of --before (made in a temporary directory,
imported first through PYTHONPATH); this tree's runs as installed. Prints every run, the
medians, and each ratio after / before (1.00 = no cost; the target is >= 0.90).

On a shared machine whose speed moves by 20% from one run to the next, a 10% budget is
measured better in instructions: `--instructions` runs, for each build, the in-process steps
under valgrind's callgrind, which counts the instructions executed (the same count, run after
run, whatever else the machine does): --log-users users created as above (not counted), then
each step in a process of its own, counted, less the count of the same process doing nothing
but opening the ledger: --count-creates users created one after another; a rebuild of the
audit trail and of the SCIM read model, each in a process that holds no key yet (as
`projections rebuild` runs); the audit trail exported as CSV. Prints instructions per event
(or per create, per exported entry) and each ratio before / after (the same sense as a rate:
>= 0.90 is within the budget). Instructions are not time (they leave out waiting for the
disk and the memory), so both figures are reported.
"""

from __future__ import annotations

import argparse
import asyncio
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
MODULE = "tests.benchmarks.erasure_cost"  # what the processes it starts import
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
    from scimledger.projections.follower import Followers
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

    # As the server runs: the SCIM read model written with the events, the other
    # projections following, and the log's listener live. Without the listener the ledger
    # cannot know when an organization changes, so it reads it again for every create
    # (Ledger.declared): a read the server does not make.
    followers = Followers(ledger, consume=True)
    followers.start()
    began = time.perf_counter()
    workers = [threading.Thread(target=create, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    figures = {"ledger_creates": threads * per / (time.perf_counter() - began)}
    followers.stop()
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


COUNTED = ("audit_rebuild", "scim_rebuild", "audit_export", "creates")  # creates add users


def _step(database: str, step: str, creates: int) -> None:
    """Run under callgrind in a process of the build measured: one step of `COUNTED` on
    `database` (made by `_inside`), or, for "none", only what every step does first."""
    from scimledger.ledger import availability
    from scimledger.ledger.application import Ledger
    from scimledger.ledger.commands import NewUser
    from scimledger.ledger.context import Actor, CommandContext, RequestInfo
    from scimledger.ledger.database import DatabaseURL
    from scimledger.projections import audit
    from scimledger.projections.rebuild import rebuild
    from scimledger.projections.registry import REBUILDABLE
    from scimledger.projections.sql import SQL

    # Under valgrind, 30 to 50 times slower, a thread waits for a pooled connection longer
    # than the 3 s after which the ledger takes PostgreSQL for unreachable, and a replay's
    # reader decodes longer than the 5 s PostgreSQL then lets a transaction stay idle.
    availability.CONNECT_TIMEOUT = 600
    settings = DatabaseURL.eventsourcing_env
    DatabaseURL.eventsourcing_env = lambda self: {  # type: ignore[method-assign]
        **settings(self),
        "POSTGRES_CONNECT_TIMEOUT": "600",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "3600",
    }
    ledger = Ledger(DatabaseURL.parse(database))
    org_id = ledger.organization_id("cost")
    assert org_id is not None
    names = {name.split("_")[0]: name for name in REBUILDABLE}
    if step == "creates":
        context = CommandContext(org_id, Actor.operator("benchmark"), RequestInfo.local())
        for n in range(creates):
            ledger.create_user(
                context,
                NewUser(
                    {
                        "userName": f"c{n}@example.com",
                        "name": {"givenName": f"Given{n}", "familyName": "Counted"},
                        "emails": [{"value": f"c{n}@example.com", "primary": True}],
                        "title": "Engineer",
                    }
                ),
            )
    elif step.endswith("_rebuild"):
        rebuild(ledger, names[step.split("_", maxsplit=1)[0]])
    elif step == "audit_export":
        sql = SQL(ledger)
        for _ in audit.csv_chunks(
            lambda: sql.transaction(commit=False), audit.AuditQuery(org_id=str(org_id))
        ):
            pass
    ledger.close()


def _instructions(env: dict[str, str], directory: Path, code: str) -> int:
    """How many instructions `python -c code` executes, counted by callgrind."""
    out = directory / "callgrind.out"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            code,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    if done.returncode:
        said = [line for line in done.stderr.splitlines() if not line.startswith("==")]
        raise SystemExit(f"{code} failed under valgrind:\n" + "\n".join(said[-20:]))
    for line in out.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"callgrind wrote no summary to {out}")


def counted(
    build: Path | None, args: argparse.Namespace, directory: Path, key_file: Path, tag: str
) -> dict[str, float]:
    """Instructions per event of the log (rebuilds), per user of the log (the export) and
    per create, for one build."""
    env = _env(build, key_file)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (build, ROOT) if p)
    database = _database(args.database, directory, args.admin_url, f"cost_count_{tag}")
    made = f"from {MODULE} import _inside; _inside({database!r}, {args.log_users})"
    subprocess.run(
        [sys.executable, "-c", made],
        env=env,
        capture_output=True,
        check=True,
        cwd="/",
    )
    events = int(
        subprocess.run(
            [sys.executable, "-c", f"from {MODULE} import _events; print(_events({database!r}))"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        ).stdout
    )
    per = {"creates": args.count_creates, "audit_export": args.log_users}
    figures = {}
    for step in ("none", *COUNTED):
        code = f"from {MODULE} import _step; _step({database!r}, {step!r}, {args.count_creates})"
        figures[step] = float(_instructions(env, directory, code))
    base = figures.pop("none")
    return {step: (count - base) / per.get(step, events) for step, count in figures.items()}


def _events(database: str) -> int:
    """How many events the log of `database` holds."""
    from scimledger.ledger.application import Ledger
    from scimledger.ledger.database import DatabaseURL

    ledger = Ledger(DatabaseURL.parse(database))
    try:
        return ledger.recorder.max_notification_id() or 0
    finally:
        ledger.close()


def _env(build: Path | None, key_file: Path) -> dict[str, str]:
    env = {**os.environ, "SCIMLEDGER_MASTER_KEY_FILE": str(key_file)}
    if build is not None:
        env["PYTHONPATH"] = str(build)
    else:
        env.pop("PYTHONPATH", None)
    return env


_MADE: set[str] = set()  # the PostgreSQL databases made, dropped at the end (`_drop_made`)


def _database(kind: str, directory: Path, admin_url: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{directory}/{name}.db"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    _MADE.add(name)
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_made(admin_url: str) -> None:
    if not _MADE:
        return
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        for name in sorted(_MADE):
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _MADE.clear()


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
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the in-process steps' instructions (valgrind) instead of timing them",
    )
    parser.add_argument("--count-creates", type=int, default=300)
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
        from scimledger.ledger.keys import MasterKey  # this tree's (the before has none)

        MasterKey.create(key_file)
        results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        try:
            for run in range(args.runs):
                order = ("before", "after") if run % 2 == 0 else ("after", "before")
                for label in order:
                    build = before if label == "before" else None
                    runner = counted if args.instructions else one
                    figures = runner(build, args, directory, key_file, f"{label}_{run}")
                    results[label].append(figures)
                    unit = "" if args.instructions else "/s"
                    shown = ", ".join(f"{k} {v:,.0f}{unit}" for k, v in figures.items())
                    print(f"run {run + 1} {label}: {shown}", flush=True)
        finally:
            _drop_made(args.admin_url)
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
    if args.instructions:
        print(f"\ninstructions, medians of {args.runs} runs ({args.database}); before / after:")
        for measure in COUNTED:
            old = statistics.median(r[measure] for r in results["before"])
            new = statistics.median(r[measure] for r in results["after"])
            print(f"  {measure:16} before {old:>10,.0f}  after {new:>10,.0f}  {old / new:.3f}x")
        return 0
    print(f"\nmedians of {args.runs} runs ({args.database}); after / before:")
    for measure in (*PHASES, *INSIDE):
        old = statistics.median(r[measure] for r in results["before"])
        new = statistics.median(r[measure] for r in results["after"])
        print(f"  {measure:16} before {old:>10,.0f}/s  after {new:>10,.0f}/s  {new / old:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
