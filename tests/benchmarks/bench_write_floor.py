"""How fast the write path can go below HTTP and the projections, on one core.

Run: taskset -c 0 .venv/bin/python -m tests.benchmarks.bench_write_floor [--writes 3000]
         [--threads 16] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Three levels, each on a fresh PostgreSQL database (durable commits), `--threads` writers:
- `events`: eventsourcing alone: one new aggregate with one event per save, nothing else
  (no name index, no group commit): the library's own floor for a durable write.
- `ledger`: Ledger.create_user as a SCIM create calls it (user, userName index, group
  commit), with no projection running and no HTTP.
- `ledger+projection`: the same, each create then waiting until the SCIM read model has it,
  as a create request does (read-your-writes), with the projections running in this process.
Prints saves/s and the process's CPU per write (user + system time over the writes): CPU per
write bounds what one core can do, whatever the concurrency.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.projections import scim as scim_projection
from scimledger.projections.follower import Followers
from tests.benchmarks.run_load import benchmark_master_key

DATABASE = "scimledger_write_floor"


class Thing(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name


def fresh_database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{DATABASE}"))


def drop_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def hammer(writes: int, threads: int, write: Callable[[int], None]) -> tuple[float, float]:
    """(writes per second, CPU milliseconds per write) for `writes` calls over `threads`."""
    counter = iter(range(writes))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            write(n)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return writes / wall, 1000 * cpu / writes


def context_for(ledger: Ledger) -> CommandContext:
    org_id = ledger.organization_id("floor")
    if org_id is None:
        ledger.issue_token(
            org="floor",
            name="floor",
            expires_at=None,
            actor=Actor.operator("benchmark"),
            request=RequestInfo.local(),
        )
        org_id = ledger.organization_id("floor")
    assert org_id is not None
    return CommandContext(org_id, Actor(kind="token", id="t", name="t"), RequestInfo.local())


def new_user(n: int) -> NewUser:
    name = f"floor-{uuid4().hex[:8]}-{n}@example.com"
    return NewUser(
        attributes={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "name": {"givenName": "Floor", "familyName": f"user{n}"},
            "emails": [{"value": name, "type": "work", "primary": True}],
        }
    )


def level_events(url: str, writes: int, threads: int) -> tuple[float, float]:
    database = DatabaseURL.parse(url)
    app = Application[UUID](env=database.eventsourcing_env())

    def write(n: int) -> None:
        app.save(Thing(str(n)))

    try:
        return hammer(writes, threads, write)
    finally:
        app.close()


def level_ledger(url: str, writes: int, threads: int, *, project: bool) -> tuple[float, float]:
    ledger = Ledger(DatabaseURL.parse(url))
    context = context_for(ledger)
    followers = Followers(ledger, consume=True) if project else None
    if followers is not None:
        followers.start()
    scim = followers.by_name[scim_projection.NAME] if followers is not None else None
    try:

        def write(n: int) -> None:
            written = ledger.create_user(context, new_user(n))
            if scim is not None:
                scim.wait_for(written.position)

        return hammer(writes, threads, write)
    finally:
        if followers is not None:
            followers.stop()
        ledger.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    benchmark_master_key()  # PostgreSQL opens no ledger without one (ledger.keys)
    print(f"{args.writes} writes, {args.threads} threads, cpus {sorted(os.sched_getaffinity(0))}")
    levels: dict[str, Callable[[str], tuple[float, float]]] = {
        "events": lambda url: level_events(url, args.writes, args.threads),
        "ledger": lambda url: level_ledger(url, args.writes, args.threads, project=False),
        "ledger+projection": lambda url: level_ledger(url, args.writes, args.threads, project=True),
    }
    try:
        for name, run in levels.items():
            rate, cpu_ms = run(fresh_database(args.admin_url))
            print(f"{name:<18} {rate:>8,.0f} writes/s   {cpu_ms:6.2f} ms CPU per write")
    finally:
        drop_database(args.admin_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
