"""`scimledger webhooks ...`: endpoints added, listed, disabled, enabled, removed, their
signing secrets rotated; every step an event, no secret in any."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from freezegun import freeze_time

from scimledger.ledger.application import Ledger
from scimledger.ledger.webhooks import Webhook
from scimledger.projections import audit
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from tests.conftest import issue
from tests.e2e.conftest import cli_in_process


@pytest.fixture
def acme(ledger: Ledger) -> str:
    issue(ledger, org="acme")
    return "acme"


def add(database: str, *more: str) -> dict[str, object]:
    done = cli_in_process(
        "webhooks", "add", "--org", "acme", "--url", "https://hooks.example.com/scim", "--json",
        *more, database=database,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    added: dict[str, object] = json.loads(done.stdout)
    return added


def listed(database: str, *more: str) -> list[dict[str, str]]:
    done = cli_in_process("webhooks", "list", "--format", "csv", *more, database=database)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_an_endpoint_is_added_with_a_secret_shown_once_alone_on_stdout(
    database_url: str, acme: str
) -> None:
    done = cli_in_process(
        "webhooks", "add", "--org", "acme", "--url", "https://hooks.example.com/scim",
        "--types", "user.deactivated,user.deleted", database=database_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert done.stdout == secret + "\n"
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert "posts user.deactivated, user.deleted to https://hooks.example.com/scim" in done.stderr
    assert "shown only this once" in done.stderr
    [row] = listed(database_url)
    assert (row["org"], row["url"], row["types"], row["status"]) == (
        "acme",
        "https://hooks.example.com/scim",
        "user.deactivated,user.deleted",
        "enabled",
    )
    assert secret not in json.dumps(row)


def test_disable_enable_remove_and_rotate_are_events_and_no_secret_is_in_any(
    database_url: str, ledger: Ledger, acme: str
) -> None:
    added = add(database_url)
    webhook_id = str(added["id"])
    rotated = cli_in_process(
        "webhooks", "rotate-secret", webhook_id, "--json", database=database_url
    )
    assert rotated.returncode == 0, rotated.stderr
    new_secret = json.loads(rotated.stdout)["secret"]
    for how in ("disable", "enable", "disable"):
        done = cli_in_process("webhooks", how, webhook_id, database=database_url)
        assert done.returncode == 0, done.stderr
    assert [row["status"] for row in listed(database_url)] == ["disabled"]
    assert cli_in_process("webhooks", "remove", webhook_id, database=database_url).returncode == 0
    assert listed(database_url) == []
    assert [row["status"] for row in listed(database_url, "--removed")] == ["removed"]
    events = [
        event
        for event in ledger.events.get(UUID(webhook_id))
        if isinstance(event, Webhook.Added | Webhook.Event)
    ]
    assert [type(event).__name__ for event in events] == [
        "Added", "SecretRotated", "Disabled", "Enabled", "Disabled", "Removed",
    ]  # fmt: skip
    stored = b"".join(
        ledger.mapper.compressor.decompress(item.state)  # type: ignore[union-attr]
        for item in ledger.recorder.select_notifications(start=1, limit=1000)
    )
    for secret in (str(added["secret"]), new_secret):
        assert secret.encode() not in stored
        assert secret.removeprefix("whsec_").encode() not in stored
    trail = Runner(ledger, audit.AuditProjection())
    trail.run_once()
    with SQL(ledger).read() as cursor:
        page = audit.page(cursor, audit.AuditQuery(actions=("webhook.secret_rotated",)), 10)
    [entry] = page
    assert entry["subject_name"] == "https://hooks.example.com/scim"
    assert entry["actor_name"]  # the OS user who ran the command


def test_a_removed_endpoints_secrets_are_deleted(
    database_url: str, ledger: Ledger, acme: str
) -> None:
    webhook_id = UUID(str(add(database_url)["id"]))
    webhook = ledger.webhook(webhook_id)
    assert len(ledger.webhook_signing_secrets(webhook, datetime.now(UTC))) == 1
    assert (
        cli_in_process("webhooks", "remove", str(webhook_id), database=database_url).returncode == 0
    )
    assert ledger.webhook_signing_secrets(ledger.webhook(webhook_id), datetime.now(UTC)) == []


def test_both_secrets_sign_during_a_rotations_grace_period_then_only_the_new_one(
    database_url: str, ledger: Ledger, acme: str
) -> None:
    added = add(database_url)
    webhook_id = UUID(str(added["id"]))
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    with freeze_time(start):
        done = cli_in_process(
            "webhooks", "rotate-secret", str(webhook_id), "--grace", "1h", "--json",
            database=database_url,
        )  # fmt: skip
    new = json.loads(done.stdout)["secret"]
    webhook = ledger.webhook(webhook_id)
    assert ledger.webhook_signing_secrets(webhook, start + timedelta(minutes=59)) == [
        new,
        added["secret"],
    ]
    assert ledger.webhook_signing_secrets(webhook, start + timedelta(hours=1)) == [new]


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("url", "more", "error"),
    [
        ("http://hooks.example.com/", (), "must be https; http only for development"),
        ("https://u:p@hooks.example.com/", (), "may not hold a user name or password"),
        ("https://hooks.example.com/#x", (), "may not hold a fragment"),
        ("https:///nohost", (), "names a host"),
        ("ftp://hooks.example.com/", (), "starts with https://"),
        ("https://hooks.example.com/\x1b[31m", (), "may not hold spaces or control characters"),
        ("https://hooks.example.com/" + "a" * 2048, (), "1 to 2048 characters"),
        ("https://hooks.example.com/", ("--types", "token.issued"), "unknown type 'token.issued'"),
    ],
)
@pytest.mark.usefixtures("acme")
def test_a_url_or_type_that_cannot_be_used_is_refused_and_nothing_is_recorded(
    database_url: str, ledger: Ledger, url: str, more: tuple[str, ...], error: str
) -> None:
    head = ledger.recorder.max_notification_id()
    done = cli_in_process(
        "webhooks", "add", "--org", "acme", "--url", url, *more, database=database_url
    )
    assert done.returncode == 2
    assert error in done.stderr
    assert "\x1b" not in done.stderr
    assert done.stdout == ""
    assert ledger.recorder.max_notification_id() == head


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_http_is_accepted_for_development_when_asked(database_url: str, acme: str) -> None:
    done = cli_in_process(
        "webhooks", "add", "--org", "acme", "--url", "http://127.0.0.1:9/hook",
        "--allow-insecure-url", database=database_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_an_unknown_endpoint_is_said_so(database_url: str, acme: str) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    done = cli_in_process("webhooks", "disable", missing, database=database_url)
    assert done.returncode == 1
    assert done.stderr == f"scimledger: error: no webhook {missing}\n"
    done = cli_in_process("webhooks", "disable", "=cmd|calc", database=database_url)
    assert done.returncode == 2
    assert "'=cmd|calc' is not a webhook id" in done.stderr


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_an_endpoint_never_posted_to_has_no_attempts(database_url: str, acme: str) -> None:
    webhook_id = str(add(database_url)["id"])  # no deliverer has run: no table of attempts yet
    done = cli_in_process(
        "webhooks", "deliveries", webhook_id, "--format", "csv", database=database_url
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == ["attempted_at,event_id,attempt,status,milliseconds,error"]
