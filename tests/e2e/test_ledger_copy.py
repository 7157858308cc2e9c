"""`scimledger ledger copy`: a whole ledger from SQLite to PostgreSQL and back, exactly."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.keys import MASTER_KEY_ENV
from scimledger.projections.sql import SQL
from scimledger.scripts.ledger_copy import Log, Row, copy_log, snapshots_table
from tests.conftest import drop_postgres_database, new_postgres_database
from tests.e2e.conftest import (
    Server,
    call,
    cli_in_process,
    issue_token,
    main_in_process,
    start_server,
)
from tests.e2e.test_erasure_cli import added_webhook
from tests.integration.test_ledger import context_for
from tests.scim import patch_op

pytestmark = pytest.mark.slow


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = new_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


def copy(source: str, target: str) -> subprocess.CompletedProcess[str]:
    """`scimledger ledger copy` (in this process: what it copies and prints is tested here,
    not its process)."""
    return main_in_process("ledger", "copy", "--from", source, "--to", target)


def workload(server: Server, token: str) -> None:
    """Users and groups created, changed, deactivated and deleted."""
    ids = []
    for n in range(6):
        body: dict[str, Any] = {
            "userName": f"u{n}@example.com",
            "name": {"givenName": "U", "familyName": f"{n}"},
        }
        created = call(server, "POST", "/Users", token, body)
        assert created.status == 201, created
        ids.append(created.body["id"])
    members = [{"value": user_id} for user_id in ids[:3]]
    group = call(server, "POST", "/Groups", token, {"displayName": "Team", "members": members})
    assert group.status == 201, group
    changes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PATCH", f"/Users/{ids[0]}", patch_op({"op": "replace", "value": {"active": False}})),
        ("PUT", f"/Users/{ids[1]}", {"userName": "u1@example.com", "title": "CTO"}),
        ("DELETE", f"/Users/{ids[2]}", None),
        (
            "PATCH",
            f"/Groups/{group.body['id']}",
            patch_op({"op": "add", "path": "members", "value": [{"value": ids[4]}]}),
        ),
    ]
    # Ten more changes of the group: a snapshot of it (every 10 events) goes with the copy.
    for n in range(10):
        op = "add" if n % 2 == 0 else "remove"
        value = [{"value": ids[5]}] if op == "add" else None
        operation = {
            "op": op,
            "path": "members" if op == "add" else f'members[value eq "{ids[5]}"]',
        }
        changes.append(
            (
                "PATCH",
                f"/Groups/{group.body['id']}",
                patch_op({**operation, "value": value} if value else operation),
            )
        )
    for method, path, change in changes:
        assert call(server, method, path, token, change).status in (200, 204), (method, path)


def reads(server: Server, token: str) -> dict[str, Any]:
    """What the server answers to every read, its own address taken out."""
    answers: dict[str, Any] = {}
    for path in ("/Users?count=100", "/Groups?count=100"):
        listed = call(server, "GET", path, token)
        assert listed.status == 200
        answers[path] = listed.body
        for resource in listed.body["Resources"]:
            one = f"{path.split('?')[0]}/{resource['id']}"
            answers[one] = call(server, "GET", one, token).body
    unaddressed: dict[str, Any] = json.loads(json.dumps(answers).replace(server.base_url, "BASE"))
    return unaddressed


def audit(database: str) -> list[str]:
    listed = cli_in_process("audit", "list", "--format", "jsonl", database=database)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.splitlines()


def logged(database: str) -> list[Row]:
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        log = Log(ledger)
        return log.rows(0, log.head(), 1_000_000)
    finally:
        ledger.close()


def snapshots(database: str) -> list[tuple[UUID, int, str, bytes]]:
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        table = snapshots_table(ledger)
        with SQL(ledger).read() as cursor:
            cursor.execute(f"SELECT originator_id, originator_version, topic, state FROM {table}")
            rows = [
                (
                    UUID(str(r["originator_id"])),
                    int(r["originator_version"]),
                    str(r["topic"]),
                    bytes(r["state"]),
                )
                for r in cursor.fetchall()
            ]
        return sorted(rows)
    finally:
        ledger.close()


def served(database: str, token: str) -> dict[str, Any]:
    server = start_server(database)
    try:
        return reads(server, token)
    finally:
        server.stop()
        server.log.close()


def test_sqlite_to_postgresql_and_back_keeps_every_event_read_and_audit_entry(
    tmp_path: Path, postgres_url: str
) -> None:
    source = f"sqlite:///{tmp_path}/source.db"
    token = issue_token(source)["token"]
    server = start_server(source)
    try:
        workload(server, token)
        before = reads(server, token)
    finally:
        server.stop()
        server.log.close()
    digest = cli_in_process("ledger", "digest", database=source)
    assert digest.returncode == 0, digest.stderr
    (tmp_path / "digest.json").write_text(digest.stdout)
    events = logged(source)

    there = copy(source, postgres_url)
    assert there.returncode == 0, there.stderr
    assert there.stdout.startswith(f"copied {len(events)} events (sqlite:///")
    assert "its chain verified" in there.stdout
    assert logged(postgres_url) == events
    assert snapshots(postgres_url) == snapshots(source) != []
    verified = cli_in_process(
        "ledger", "verify", "--digest", str(tmp_path / "digest.json"), database=postgres_url
    )
    assert verified.returncode == 0, verified.stderr
    assert "(matches the digest)" in verified.stdout
    trail = audit(source)  # listed once: the source's log does not change from here on
    assert audit(postgres_url) == trail
    assert served(postgres_url, token) == before  # the same token works there

    back = f"sqlite:///{tmp_path}/back.db"
    again = copy(postgres_url, back)
    assert again.returncode == 0, again.stderr
    assert logged(back) == events
    assert snapshots(back) == snapshots(source)
    assert audit(back) == trail
    assert served(back, token) == before
    # Each copy goes on from where its log ends: new events come after the copied ones.
    assert issue_token(back, org="other")["token"]
    assert Log(Ledger(DatabaseURL.parse(back))).head() > events[-1][0]


def test_a_target_holding_other_events_is_refused(tmp_path: Path) -> None:
    source, target = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    issue_token(source)
    issue_token(target, org="other")
    refused = copy(source, target)
    assert refused.returncode == 1
    assert "not copied: the target already holds 2 events up to position 2" in refused.stderr
    assert len(logged(target)) == 2


def test_an_interrupted_copy_continues_where_it_stopped(tmp_path: Path) -> None:
    source, target = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    for org in ("acme", "beta", "gamma"):
        issue_token(source, org=org)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    origin, copy_to = Ledger(DatabaseURL.parse(source)), Ledger(DatabaseURL.parse(target))
    try:
        with pytest.raises(KeyboardInterrupt):
            copy_log(origin, copy_to, interrupt, batch=2)
    finally:
        origin.close()
        copy_to.close()
    assert len(logged(target)) == 2  # the first batch, committed
    resumed = copy(source, target)
    assert resumed.returncode == 0, resumed.stderr
    assert "copied 4 events, continuing after position 2" in resumed.stdout
    assert logged(target) == logged(source)


def test_the_same_database_twice_is_a_usage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    done = copy(url, url)
    assert done.returncode == 2
    assert "--from and --to are the same database" in done.stderr


def test_a_source_that_is_not_there_or_empty_is_refused(tmp_path: Path, postgres_url: str) -> None:
    missing = copy(f"sqlite:///{tmp_path}/typo.db", postgres_url)
    assert missing.returncode == 2
    assert f"there is no SQLite database at {tmp_path}/typo.db" in missing.stderr
    assert not (tmp_path / "typo.db").exists()
    empty = copy(postgres_url, f"sqlite:///{tmp_path}/copy.db")
    assert empty.returncode == 1
    assert "holds no events: nothing to copy" in empty.stderr
    assert not (tmp_path / "copy.db").exists()


def test_a_quick_start_database_is_copied_to_postgresql_with_its_own_master_key(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded default keeps its master key beside the database; PostgreSQL runs with
    another, given: the copy opens the source with its own (--from-master-key), and the
    target holds its data keys wrapped by its own."""
    configured = os.environ[MASTER_KEY_ENV]
    monkeypatch.delenv(MASTER_KEY_ENV)
    source = f"sqlite:///{tmp_path}/quick.db"
    ledger = Ledger(DatabaseURL.parse(source))
    try:
        ledger.create_user(context_for(ledger), NewUser({"userName": "zoe@example.com"}))
        webhook_id, secret = added_webhook(ledger)
    finally:
        ledger.close()
    assert (tmp_path / "quick.db.key").exists()
    monkeypatch.setenv(MASTER_KEY_ENV, configured)

    refused = copy(source, postgres_url)
    assert refused.returncode == 2
    assert "wrapped by another master key" in refused.stderr
    done = main_in_process(
        "ledger", "copy", "--from", source, "--to", postgres_url,
        "--from-master-key", str(tmp_path / "quick.db.key"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = [line for line in audit(postgres_url) if "zoe@example.com" in line]
    assert len(names) == 1  # user.created, read with the data key wrapped again
    # The webhook's signing secret, sealed again with the target's master key.
    copied = Ledger(DatabaseURL.parse(postgres_url))
    try:
        found = copied.webhook(webhook_id)
        assert copied.webhook_signing_secrets(found, datetime.now(UTC)) == [secret]
    finally:
        copied.close()
