"""Benchmark: adding and removing 1,000 members of a 50,000-member group.

Run: .venv/bin/python -m tests.benchmarks.bench_group_membership [--database URL]
     [--members 50000] [--batch 1000] [--rounds 7]

Builds an organization with members + batch users and a group holding `members` of them,
then times PATCH requests through the real app (in process) that add `batch` members and
remove them again, and the same on an empty group for comparison. It prints the medians and
the ratio: a membership change must cost the same whatever the group's size, because
membership events carry only the change and the group loads from a snapshot.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from litestar.testing import TestClient

from scimledger.http.app import create_app
from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewGroup
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.groups import Group
from scimledger.ledger.names import NameIndex, normalize_name
from scimledger.ledger.users import User
from scimledger.projections.audit import AuditProjection
from scimledger.projections.directory import ScimDirectory
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import TokensProjection, UsageRecorder
from tests.polling import PollingRunner
from tests.scim import PATCH_OP, Client


def create_users(
    ledger: Ledger,
    context: CommandContext,
    count: int,
    attributes: Callable[[int], dict[str, Any]] = lambda n: {},
    updates: int = 0,
) -> list[UUID]:
    """Users saved in batches straight through the event store (setup, not measured); the
    n-th is member{n}@bench.example, with `attributes(n)` besides, and its title changed
    `updates` times after its creation (to make a long log)."""
    ids: list[UUID] = []
    for start in range(0, count, 500):
        batch: list[Any] = []
        for n in range(start, min(count, start + 500)):
            name = f"member{n}@bench.example"
            user = User(
                org_id=context.org_id,
                attributes={"userName": name, **attributes(n)},
                active=True,
                context=context,
            )
            for update in range(updates):
                user.replace_attributes({**user.attributes, "title": f"title {update}"}, context)
            index = NameIndex(
                org_id=context.org_id, kind="userName", name=normalize_name(name), owner_id=user.id
            )
            batch += [user, index]
            ids.append(user.id)
        ledger.save(*batch)
    return ids


def members_patch(op: str, ids: list[UUID]) -> dict[str, Any]:
    if op == "add":
        operation = {"op": "add", "path": "members", "value": [{"value": str(i)} for i in ids]}
    else:
        operation = {"op": "remove", "path": "members", "value": [{"value": str(i)} for i in ids]}
    return {"schemas": [PATCH_OP], "Operations": [operation]}


def timed(client: Client, group_id: UUID, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.patch(
        f"/scim/v2/Groups/{group_id}", json=body, params={"excludedAttributes": "members"}
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="default: a new SQLite file in a temporary directory")
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    ledger = Ledger(DatabaseURL.parse(url))
    runner = PollingRunner(ledger, ScimProjection())
    runner.start()
    issued = ledger.issue_token(
        org="bench",
        name="bench",
        expires_at=None,
        actor=Actor.operator("benchmark"),
        request=RequestInfo.local(),
    )
    org_id = ledger.organization_id("bench")
    assert org_id is not None
    context = CommandContext(org_id, Actor.operator("benchmark"), RequestInfo.local())

    started = time.perf_counter()
    user_ids = create_users(ledger, context, args.members + args.batch)
    members, extra = user_ids[: args.members], user_ids[args.members :]
    directory = ScimDirectory(SQL(ledger), runner.catch_up)
    big = ledger.create_group(context, NewGroup("Everyone", members=members), directory)
    empty = ledger.create_group(context, NewGroup("Nobody"), directory)
    runner.catch_up()
    print(
        f"setup: {len(user_ids)} users and a {args.members}-member group in "
        f"{time.perf_counter() - started:.1f} s on {DatabaseURL.parse(url).redacted()}"
    )

    trail = Runner(ledger, AuditProjection())
    tokens = Runner(ledger, TokensProjection())
    tokens.run_once()
    services = Services(
        ledger=ledger,
        scim=runner,
        audit=trail,
        tokens=tokens,
        sql=SQL(ledger),
        usage=UsageRecorder(SQL(ledger)),
    )
    with TestClient(app=create_app(services)) as client:
        client.headers["Authorization"] = f"Bearer {issued.token}"
        results: dict[str, list[float]] = {}
        for label, group_id in (("50k group", big.id), ("empty group", empty.id)):
            adds, removes = [], []
            for _ in range(args.rounds):
                adds.append(timed(client, group_id, members_patch("add", extra)))
                removes.append(timed(client, group_id, members_patch("remove", extra)))
            results[f"add {args.batch} to {label}"] = adds
            results[f"remove {args.batch} from {label}"] = removes
        get_started = time.perf_counter()
        client.get(f"/scim/v2/Groups/{big.id}", params={"excludedAttributes": "members"})
        get_ms = (time.perf_counter() - get_started) * 1000
    for label, samples in results.items():
        print(
            f"{label}: median {statistics.median(samples) * 1000:.0f} ms "
            f"(min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f}, n={len(samples)})"
        )
    ratio_add = statistics.median(results[f"add {args.batch} to 50k group"]) / statistics.median(
        results[f"add {args.batch} to empty group"]
    )
    ratio_remove = statistics.median(
        results[f"remove {args.batch} from 50k group"]
    ) / statistics.median(results[f"remove {args.batch} from empty group"])
    print(f"ratio 50k/empty: add {ratio_add:.2f}, remove {ratio_remove:.2f}")
    print(f"GET the 50k group without members: {get_ms:.0f} ms")
    group: Aggregate = ledger.group_repository.get(big.id)
    assert isinstance(group, Group)
    print(f"group version after the rounds: {group.version} (loaded from a snapshot)")
    runner.stop()
    ledger.close()


if __name__ == "__main__":
    main()
