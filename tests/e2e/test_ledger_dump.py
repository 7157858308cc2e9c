"""`scimledger ledger export` and `ledger import`: the log as JSON lines that prove themselves."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.keys import MASTER_KEY_ENV, MasterKey
from scimledger.ledger.users import User
from scimledger.scripts.ledger_copy import Log
from tests.conftest import TEST_MASTER_KEY, issue
from tests.e2e.conftest import SCIMLEDGER, cli
from tests.e2e.test_ledger_copy import audit, logged, postgres_url

__all__ = ["postgres_url"]  # the fixture, from test_ledger_copy

pytestmark = pytest.mark.slow
MASTER_ID = MasterKey(TEST_MASTER_KEY).id


def filled(url: str, users: int = 4) -> None:
    ledger = Ledger(DatabaseURL.parse(url))
    try:
        issue(ledger)
        org_id = ledger.organization_id("acme")
        assert org_id is not None
        context = CommandContext(org_id, Actor.operator("tests"), RequestInfo("r"))
        for n in range(users):
            ledger.create_user(context, NewUser({"userName": f"u{n}@example.com"}))
    finally:
        ledger.close()


def scimledger(*args: str, master_key: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`scimledger ledger ...`; with the tests' master key, or with `master_key`'s."""
    env = {**os.environ, MASTER_KEY_ENV: str(master_key)} if master_key else None
    return subprocess.run(
        [SCIMLEDGER, "ledger", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def exported(url: str, path: Path) -> list[str]:
    done = scimledger("export", "--output", str(path), "--database", url)
    assert done.returncode == 0, done.stderr
    return path.read_text().splitlines()


@dataclass(frozen=True)
class Exported:
    """A filled SQLite database and its export, shared by the tests that only read them."""

    source: str
    path: Path
    lines: list[str]


@pytest.fixture(scope="module")
def exported_once(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """One export (a CLI process) for the import tests of this module, instead of one each:
    they read the source and the file, never write them."""
    directory = tmp_path_factory.mktemp("exported")
    source = f"sqlite:///{directory}/source.db"
    filled(source)
    path = directory / "log.jsonl"
    return Exported(source, path, exported(source, path))


def test_an_export_restores_into_either_database_and_exports_again_the_same(
    tmp_path: Path, postgres_url: str
) -> None:
    source = f"sqlite:///{tmp_path}/source.db"
    filled(source)
    lines = exported(source, tmp_path / "log.jsonl")
    assert json.loads(lines[0]) == {
        "format": "scimledger-log",
        "version": 2,
        "head": 10,
        "master_id": MASTER_ID,
    }
    assert len(lines) == 1 + 10 + 5 + 1  # the header, events, data keys (4 users', the index's)
    assert json.loads(lines[-1])["events"] == 10
    assert json.loads(lines[-1])["keys"] == 5
    done = scimledger("import", str(tmp_path / "log.jsonl"), "--database", postgres_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 10 events, up to position 10, in ")
    assert logged(postgres_url) == logged(source)
    assert audit(postgres_url) == audit(source)
    assert cli("ledger", "verify", database=postgres_url).returncode == 0
    assert exported(postgres_url, tmp_path / "again.jsonl") == lines  # the same, line by line
    again = scimledger("import", str(tmp_path / "log.jsonl"), "--database", postgres_url)
    assert again.returncode == 0, again.stderr
    assert "imported 0 events (10 were in already)" in again.stdout


def test_an_import_interrupted_continues_where_it_stopped(
    tmp_path: Path, exported_once: Exported
) -> None:
    source, target = exported_once.source, f"sqlite:///{tmp_path}/b.db"
    ledger = Ledger(DatabaseURL.parse(target))
    try:  # what a first import committed before it stopped
        Log(ledger).append(logged(source)[:4])
    finally:
        ledger.close()
    done = scimledger("import", str(exported_once.path), "--database", target)
    assert done.returncode == 0, done.stderr
    assert "imported 6 events (4 were in already), up to position 10" in done.stdout
    assert logged(target) == logged(source)


def altered(lines: list[str], index: int, **changes: object) -> list[str]:
    line = json.loads(lines[index])
    return [*lines[:index], json.dumps({**line, **changes}), *lines[index + 1 :]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda lines: altered(lines, 3, topic="x:Y.Z"),
            "the event at position 3 does not match its link",
        ),
        (lambda lines: lines[:-1], "it has no end line: it was cut short"),
        (lambda lines: [*lines[:5], *lines[6:]], "the event at position 6 does not match its link"),
        (lambda lines: altered(lines, -1, events=3), "its end line does not match its events"),
        (lambda lines: [*lines[:-2], lines[-1]], "its end line does not match its data keys"),
        (
            lambda lines: altered(lines, -2, wrapped="A" * 10_000),
            "the data key after position 10 is not well formed",
        ),
        (lambda lines: ["{}", *lines[1:]], "not a scimledger-log file of version 1 or 2"),
        (lambda lines: [*lines[:2], "not json", *lines[2:]], "line 3 is not JSON"),
    ],
)
def test_a_file_altered_or_cut_short_is_refused_before_anything_is_written(
    tmp_path: Path, exported_once: Exported, change: object, message: str
) -> None:
    target = f"sqlite:///{tmp_path}/b.db"
    lines = exported_once.lines
    (tmp_path / "bad.jsonl").write_text("\n".join(change(lines)) + "\n")  # type: ignore[operator]
    done = scimledger("import", str(tmp_path / "bad.jsonl"), "--database", target)
    assert done.returncode == 1
    assert f"not imported: {tmp_path}/bad.jsonl: {message}" in done.stderr
    assert not (tmp_path / "b.db").exists()


def test_a_database_holding_other_events_is_refused(
    tmp_path: Path, exported_once: Exported
) -> None:
    target = f"sqlite:///{tmp_path}/b.db"
    filled(target, users=1)
    before = logged(target)
    done = scimledger("import", str(exported_once.path), "--database", target)
    assert done.returncode == 1
    assert "not imported: the target already holds 4 events" in done.stderr
    assert logged(target) == before


def test_an_import_under_another_master_key_wraps_the_data_keys_again_with_it(
    tmp_path: Path, exported_once: Exported
) -> None:
    """A database whose master key is not the one the file's keys were wrapped by: refused
    before anything is written unless that key is given; then every person reads as before."""
    target = f"sqlite:///{tmp_path}/b.db"
    other = tmp_path / "other.key"
    other.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    refused = scimledger("import", str(exported_once.path), "--database", target, master_key=other)
    assert refused.returncode == 1
    assert (
        f"not imported: the file's data keys were wrapped by master key {MASTER_ID}, and this"
        f" database's is {MasterKey(bytes(range(32))).id}: give that key's file with"
        " --export-master-key" in refused.stderr
    )
    assert logged_with(target, other) == []
    ours = tmp_path / "ours.key"
    ours.write_text(base64.b64encode(TEST_MASTER_KEY).decode() + "\n")
    done = scimledger(
        "import",
        str(exported_once.path),
        "--database",
        target,
        "--export-master-key",
        str(ours),
        master_key=other,
    )
    assert done.returncode == 0, done.stderr
    names = user_names(target, other)
    assert names == [f"u{n}@example.com" for n in range(4)]


def logged_with(database: str, master_key: Path) -> list[object]:
    os.environ[MASTER_KEY_ENV], before = str(master_key), os.environ[MASTER_KEY_ENV]
    try:
        return list(logged(database))
    finally:
        os.environ[MASTER_KEY_ENV] = before


def user_names(database: str, master_key: Path) -> list[str]:
    """The userNames of the database's users, read from their sealed events."""
    os.environ[MASTER_KEY_ENV], before = str(master_key), os.environ[MASTER_KEY_ENV]
    try:
        ledger = Ledger(DatabaseURL.parse(database))
        try:
            events = [
                ledger.mapper.to_domain_event(notification)
                for notification in ledger.recorder.select_notifications(1, 100)
            ]
            return sorted(
                str(event.attributes["userName"])
                for event in events
                if isinstance(event, User.UserCreated)
            )
        finally:
            ledger.close()
    finally:
        os.environ[MASTER_KEY_ENV] = before


def test_a_master_key_id_that_is_not_one_is_refused_and_not_shown(
    tmp_path: Path, exported_once: Exported
) -> None:
    target = f"sqlite:///{tmp_path}/b.db"
    lines = altered(exported_once.lines, 0, master_id="\x1b[2J\x1b[31m" + "a" * 200)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")

    done = scimledger("import", str(tmp_path / "bad.jsonl"), "--database", target)

    assert done.returncode == 1
    assert done.stderr.endswith(": its master key id is not one (16 hexadecimal digits)\n")
    assert "\x1b" not in done.stderr
    assert logged_with(target, Path(os.environ[MASTER_KEY_ENV])) == []


def test_an_altered_data_key_is_refused_before_anything_is_written(
    tmp_path: Path, exported_once: Exported
) -> None:
    """The hash chain covers the events, not the keys beside them: each key must open with
    the master key it names, or nothing is imported."""
    target = f"sqlite:///{tmp_path}/b.db"
    key_line = json.loads(exported_once.lines[-2])
    wrapped = str(key_line["wrapped"])
    flipped = wrapped[:20] + ("B" if wrapped[20] != "B" else "C") + wrapped[21:]
    lines = altered(exported_once.lines, -2, wrapped=flipped)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    done = scimledger("import", str(tmp_path / "bad.jsonl"), "--database", target)
    assert done.returncode == 1
    assert (
        f"not imported: the file's data key of {key_line['key']} does not open with master key"
        f" {MASTER_ID}: it was altered" in done.stderr
    )
    assert logged_with(target, Path(os.environ[MASTER_KEY_ENV])) == []
