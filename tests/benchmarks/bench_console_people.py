"""Benchmark: the console's people and groups pages with 100,000 users.

Run: .venv/bin/python -m tests.benchmarks.bench_console_people [--database URL]
     [--users 100000] [--events 1000000] [--members 50000] [--rounds 21]

Fills an organization with `users` users (a name and an email each; every tenth inactive;
each retitled as often as it takes for the log to hold about `events` events), a group
holding `members` of them, and one user changed 60 times; builds the read models;
then signs an admin in to the console and times each page through the real app (in
process), printing the median, min and max of `rounds` renders.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from litestar.testing import TestClient

from scimledger.http.app import create_app
from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewGroup, UserReplacement, UserState
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.projections.audit import AuditProjection
from scimledger.projections.directory import ScimDirectory
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import TokensProjection, UsageRecorder
from tests.benchmarks.bench_group_membership import create_users
from tests.polling import PollingRunner

ADMIN = "admin@bench.example"


def attributes(n: int) -> dict[str, Any]:
    return {
        "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
        "displayName": f"Given{n} Family{n}",
        "emails": [{"value": f"person{n}@mail.bench.example", "type": "work", "primary": True}],
    }


def retitled(n: int) -> Any:
    def edit(state: UserState) -> UserReplacement:
        return UserReplacement(attributes={**state.attributes, "title": f"title {n}"})

    return edit


def deactivated(state: UserState) -> UserReplacement:
    return UserReplacement(attributes=state.attributes, active=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="default: a new SQLite file in a temporary directory")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    ledger = Ledger(DatabaseURL.parse(url))
    runner = PollingRunner(ledger, ScimProjection())
    runner.start()
    ledger.issue_token(
        org="bench",
        name="bench",
        expires_at=None,
        actor=Actor.operator("benchmark"),
        request=RequestInfo.local(),
    )
    ledger.add_admin("bench", ADMIN, Actor.operator("benchmark"), RequestInfo.local())
    org_id = ledger.organization_id("bench")
    assert org_id is not None
    context = CommandContext(
        org_id, Actor(kind="token", id="t", name="bench"), RequestInfo("r", "203.0.113.7", "bench")
    )

    started = time.perf_counter()
    # Each user: its creation, its userName's index and its updates; a tenth deactivated.
    updates = max(0, round((args.events - 2.1 * args.users) / args.users))
    ids = create_users(ledger, context, args.users, attributes, updates)
    for user_id in ids[::10]:
        ledger.update_user(context, user_id, deactivated)
    watched = ids[len(ids) // 2]
    for n in range(60):
        ledger.update_user(context, watched, retitled(n))
    directory = ScimDirectory(SQL(ledger), runner.catch_up)
    big = ledger.create_group(context, NewGroup("Everyone", members=ids[: args.members]), directory)
    runner.catch_up()
    trail = Runner(ledger, AuditProjection())
    trail.run_once()
    tokens = Runner(ledger, TokensProjection())
    tokens.run_once()
    events = ledger.recorder.max_notification_id() or 0
    print(
        f"setup: {len(ids)} users, {events} events, a {args.members}-member group in "
        f"{time.perf_counter() - started:.0f} s on {DatabaseURL.parse(url).redacted()}"
    )

    services = Services(
        ledger=ledger,
        scim=runner,
        audit=trail,
        tokens=tokens,
        sql=SQL(ledger),
        usage=UsageRecorder(SQL(ledger)),
    )
    presented, _ = ledger.issue_sign_in_link(
        "bench", ADMIN, Actor.operator("benchmark"), datetime.now(UTC)
    )
    some_member = sorted(str(user_id) for user_id in ids[: args.members])[args.members // 2]
    pages = {
        "people, first page": "/console/people",
        "people, a middle page": f"/console/people?after={ids[len(ids) // 3]}",
        "people, inactive": "/console/people?status=inactive",
        "people, search: one found": "/console/people?q=person4242%40mail",
        "people, search: none found": "/console/people?q=nobody-at-all",
        "people, search: many found": "/console/people?q=given4",
        "people, search: everyone found": "/console/people?q=mail.bench",
        "people, search: two letters": "/console/people?q=zq",
        "audit trail, first page": "/console/audit",
        "audit trail, one action": "/console/audit?action=user.deactivated",
        "audit trail, one subject": f"/console/audit?subject={watched}",
        "audit trail, a day long ago": "/console/audit?since=2000-01-01&until=2000-01-02",
        "audit trail, a middle page": f"/console/audit?after={events // 2}",
        "groups": "/console/groups",
        "user": f"/console/people/{watched}",
        "user, older history": f"/console/people/{watched}?older={events}",
        "user at a moment": f"/console/people/{watched}?at={datetime.now(UTC):%Y-%m-%dT%H:%M:%S}",
        "50k group, first page": f"/console/groups/{big.id}",
        "50k group, a middle page": f"/console/groups/{big.id}?after={some_member}",
    }
    with TestClient(app=create_app(services), base_url="http://bench.test") as client:
        signed = client.post(
            f"/console/sign-in/{presented}",
            headers={"origin": "http://bench.test"},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        for label, path in pages.items():
            samples = []
            for _ in range(args.rounds):
                began = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (path, response.text[:500])
            print(
                f"{label}: median {statistics.median(samples):.1f} ms "
                f"(min {min(samples):.1f}, max {max(samples):.1f}, n={len(samples)})"
            )
    runner.stop()
    ledger.close()


if __name__ == "__main__":
    main()
