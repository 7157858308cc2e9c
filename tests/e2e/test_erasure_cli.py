"""`scimledger users erase` and `scimledger keys`: erasure and the master key from a terminal."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.keys import MASTER_KEY_ENV, MasterKey
from scimledger.ledger.sealing import ERASED
from tests.conftest import TEST_MASTER_KEY
from tests.e2e.conftest import cli_in_process, main_in_process
from tests.integration.test_ledger import context_for, loaded


def users(database: str, *names: str, active: bool = False) -> list[str]:
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        context = context_for(ledger)
        return [
            str(ledger.create_user(context, NewUser({"userName": name}, active=active)).id)
            for name in names
        ]
    finally:
        ledger.close()


def user_name(database: str, user_id: str) -> Any:
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        return loaded(ledger, UUID(user_id)).attributes["userName"]
    finally:
        ledger.close()


def test_a_user_is_erased_by_user_name_or_id(database_url: str) -> None:
    ada, grace = users(database_url, "ada@example.com", "grace@example.com")
    done = cli_in_process(
        "users", "erase", "ada@example.com", "--org", "acme", "--reason", "DSR-9",
        database=database_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"erased user {ada}: their data key is destroyed; recorded at")
    assert user_name(database_url, ada) == ERASED
    again = cli_in_process(
        "users", "erase", ada, "--org", "acme", "--reason", "DSR-9", database=database_url
    )
    assert again.returncode == 0
    assert again.stdout == f"user {ada} was erased already: nothing changed\n"
    assert user_name(database_url, grace) == "grace@example.com"


@pytest.mark.sqlite_only
def test_an_active_user_needs_force_and_a_bad_reason_is_refused(database_url: str) -> None:
    [ada] = users(database_url, "ada@example.com", active=True)
    refused = cli_in_process(
        "users", "erase", ada, "--org", "acme", "--reason", "DSR-9", database=database_url
    )
    assert refused.returncode == 1
    assert "is active: deactivate or delete them first, or force the erasure" in refused.stderr
    hostile = cli_in_process(
        "users", "erase", ada, "--org", "acme", "--reason", "\x1b[2J", "--force",
        database=database_url,
    )  # fmt: skip
    assert hostile.returncode == 1
    assert "without control characters" in hostile.stderr
    assert "\x1b" not in hostile.stderr
    assert user_name(database_url, ada) == "ada@example.com"
    forced = cli_in_process(
        "users", "erase", ada, "--org", "acme", "--reason", "DSR-9", "--force",
        database=database_url,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    unknown = cli_in_process(
        "users", "erase", "nobody@example.com", "--org", "acme", "--reason", "x",
        database=database_url,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "no subject 'nobody@example.com' in the audit trail" in unknown.stderr


@pytest.mark.sqlite_only
def test_the_master_key_is_made_shown_and_rotated_without_touching_an_event(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [ada] = users(database_url, "ada@example.com")
    webhook_id, secret = webhook_added(database_url)
    new = tmp_path / "new.key"
    made = main_in_process("keys", "new-master", "--file", str(new))
    assert made.returncode == 0, made.stderr
    key = MasterKey.read(new)
    assert made.stdout.startswith(f"master key {key.id} written to {new}")
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o600
    again = main_in_process("keys", "new-master", "--file", str(new))
    assert again.returncode == 2
    assert "exists: a master key is never overwritten" in again.stderr

    old = MasterKey(TEST_MASTER_KEY).id
    shown = cli_in_process("keys", "show", database=database_url)
    assert shown.stdout.splitlines()[0] == f"master key: {old}"
    assert shown.stdout.splitlines()[2].startswith("data keys: 2 ")  # ada's, the index's
    rotated = cli_in_process("keys", "rotate-master", "--new", str(new), database=database_url)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith(
        f"2 data keys wrapped and 1 organizations' secrets sealed again: by master key"
        f" {key.id}, no longer by {old}"
    )
    # The old key opens the database no more; the new one reads every person as before.
    refused = cli_in_process("keys", "show", database=database_url)
    assert refused.returncode == 2
    assert f"wrapped by another master key ({key.id}), not by this one ({old})" in refused.stderr
    monkeypatch.setenv(MASTER_KEY_ENV, str(new))
    assert user_name(database_url, ada) == "ada@example.com"
    assert signing_secrets(database_url, webhook_id) == [secret]


def added_webhook(ledger: Ledger) -> tuple[UUID, str]:
    """A webhook of acme's: its id, and its signing secret (an organization's secret)."""
    webhook, secret = ledger.add_webhook(
        "acme",
        "https://hooks.example.com/scim",
        types=[],
        allow_insecure=False,
        actor=Actor.operator("tests"),
        request=RequestInfo.local(),
        now=datetime.now(UTC),
    )
    return webhook.id, secret


def webhook_added(database: str) -> tuple[UUID, str]:
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        return added_webhook(ledger)
    finally:
        ledger.close()


def signing_secrets(database: str, webhook_id: UUID) -> list[str]:
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        return ledger.webhook_signing_secrets(ledger.webhook(webhook_id), datetime.now(UTC))
    finally:
        ledger.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_postgresql_database_needs_a_master_key_given(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV)
    done = cli_in_process("keys", "show", database=database_url)
    assert done.returncode == 2
    assert (
        f"PostgreSQL needs a master key: set {MASTER_KEY_ENV} to a file kept apart from the"
        " database and its backups" in done.stderr
    )


@pytest.mark.sqlite_only
def test_sqlite_makes_its_master_key_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV)
    database = f"sqlite:///{tmp_path}/fresh.db"
    done = cli_in_process("keys", "show", database=database)
    assert done.returncode == 0, done.stderr
    beside = tmp_path / "fresh.db.key"
    assert stat.S_IMODE(os.stat(beside).st_mode) == 0o600
    assert done.stdout.splitlines()[:2] == [
        f"master key: {MasterKey.read(beside).id}",
        f"read from: {beside}",
    ]


@pytest.mark.sqlite_only
def test_serve_says_where_the_master_key_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scimledger.http.connections import Limits
    from scimledger.http.rate_limit import RateLimit
    from scimledger.scripts.serve import Settings, _announce

    monkeypatch.delenv(MASTER_KEY_ENV)
    settings = Settings(
        database=DatabaseURL.parse(f"sqlite:///{tmp_path}/s.db"),
        host="127.0.0.1",
        port=8000,
        project_in_process=True,
        rate_limit=RateLimit(0),
        limits=Limits(),
        max_connections=10,
        public_url=None,
    )
    _announce(settings)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == (
        f"Master key of personal data: {tmp_path}/s.db.key (keep a copy apart from the database"
        " and its backups: without it no one's personal data can be read)"
    )


@pytest.mark.sqlite_only
def test_the_master_key_file_is_given_by_flag_or_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV)
    database = f"sqlite:///{tmp_path}/c.db"
    by_flag, by_file = tmp_path / "flag.key", tmp_path / "file.key"
    for path in (by_flag, by_file):
        assert main_in_process("keys", "new-master", "--file", str(path)).returncode == 0
    shown = cli_in_process("keys", "show", "--master-key-file", str(by_flag), database=database)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == [
        f"master key: {MasterKey.read(by_flag).id}",
        f"read from: {by_flag}",
    ]
    monkeypatch.delenv(MASTER_KEY_ENV)  # the flag set it, for the ledger to read
    config = tmp_path / "scimledger.toml"
    config.write_text(f'master_key_file = "{by_file}"\n')
    from_file = cli_in_process("keys", "show", "--config", str(config), database=database)
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.splitlines()[:2] == [
        f"master key: {MasterKey.read(by_file).id}",
        f"read from: {by_file}",
    ]
    monkeypatch.delenv(MASTER_KEY_ENV)
    config.write_text("master_key_file = 42\n")
    bad = cli_in_process("keys", "show", "--config", str(config), database=database)
    assert bad.returncode == 2
    assert "master_key_file in the config file" in bad.stderr
