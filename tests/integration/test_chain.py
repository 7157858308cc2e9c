"""Tamper evidence: the hash chain catches events altered, deleted or reordered in SQL.

The tests play an attacker with full database rights: they switch the append-only
triggers off, then change stored rows directly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.database import DatabaseURL
from scimledger.projections import chain
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL, Cursor
from tests.conftest import issue

SCIMLEDGER = str(Path(sys.executable).parent / "scimledger")


@pytest.fixture
def filled(database_url: str) -> Iterator[Ledger]:
    """A ledger with 8 events (an organization, a token, three users and their userNames),
    all chained."""
    ledger = Ledger(DatabaseURL.parse(database_url))
    issue(ledger)
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    context = CommandContext(org_id, Actor(kind="token", id="t", name="Okta"), RequestInfo("r"))
    for n in range(3):
        ledger.create_user(context, NewUser({"userName": f"user{n}@example.com"}))
    Runner(ledger, chain.ChainProjection()).run_once()
    try:
        yield ledger
    finally:
        ledger.close()


def position_column(ledger: Ledger) -> str:
    return "rowid" if ledger.database.kind == "sqlite" else "notification_id"


def replace_in_payload(ledger: Ledger, position: int, old: str, new: str) -> str:
    """The statement an attacker runs to replace `old` by `new` in the payload at
    `position`, stored compressed as the ledger stores it (so that it still decodes)."""
    [stored] = ledger.recorder.select_notifications(start=position, limit=1)
    assert stored.id == position
    compressor = ledger.mapper.compressor
    assert compressor is not None
    payload = compressor.decompress(stored.state)
    assert old.encode() in payload
    altered = compressor.compress(payload.replace(old.encode(), new.encode())).hex()
    literal = f"X'{altered}'" if ledger.database.kind == "sqlite" else f"'\\x{altered}'::bytea"
    return f"UPDATE {{table}} SET state = {literal} WHERE {{pos}} = {position}"


def tamper(ledger: Ledger, *statements: str) -> None:
    """Runs statements with the append-only protection switched off, as an attacker could."""
    table = ledger.events_table
    with SQL(ledger).transaction(commit=True) as cursor:
        _triggers(cursor, ledger, table, on=False)
        for statement in statements:
            cursor.execute(statement.format(table=table, pos=position_column(ledger)))
        _triggers(cursor, ledger, table, on=True)


def _triggers(cursor: Cursor, ledger: Ledger, table: str, *, on: bool) -> None:
    if ledger.database.kind == "postgresql":
        cursor.execute(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} TRIGGER USER")
        cursor.execute(f"ALTER TABLE {chain.TABLE} {'ENABLE' if on else 'DISABLE'} TRIGGER USER")
        return
    if not on:
        for name in (table, chain.TABLE):
            cursor.execute(f"DROP TRIGGER {name}_no_update")
            cursor.execute(f"DROP TRIGGER {name}_no_delete")


def test_an_untouched_ledger_verifies(filled: Ledger) -> None:
    result = chain.verify(filled)
    assert (result.ok, result.checked, result.head_position) == (True, 8, 8)


def test_an_altered_payload_is_caught_at_its_position(filled: Ledger) -> None:
    tamper(filled, replace_in_payload(filled, 5, '"active":true', '"active":false'))
    result = chain.verify(filled)
    assert result.checked == 4
    assert result.problem is not None
    assert result.problem.startswith("event at position 5 (")
    assert "does not match its link" in result.problem


def test_an_altered_topic_is_caught(filled: Ledger) -> None:
    tamper(filled, "UPDATE {table} SET topic = topic || 'x' WHERE {pos} = 3")
    assert chain.verify(filled).checked == 2


def test_a_deleted_event_is_caught(filled: Ledger) -> None:
    tamper(filled, "DELETE FROM {table} WHERE {pos} = 6")
    result = chain.verify(filled)
    assert result.checked == 5
    assert result.problem == "event at position 6 is missing: it was deleted"


def test_a_deleted_last_event_is_caught(filled: Ledger) -> None:
    tamper(filled, "DELETE FROM {table} WHERE {pos} = 8")
    assert chain.verify(filled).problem == "event at position 8 is missing: it was deleted"


def test_reordered_events_are_caught(filled: Ledger) -> None:
    tamper(
        filled,
        "UPDATE {table} SET {pos} = -1 WHERE {pos} = 4",
        "UPDATE {table} SET {pos} = 4 WHERE {pos} = 6",
        "UPDATE {table} SET {pos} = 6 WHERE {pos} = -1",
    )
    result = chain.verify(filled)
    assert result.checked == 3
    assert result.problem is not None
    assert result.problem.startswith("event at position 4 (")


def test_a_rewritten_chain_is_caught_by_an_earlier_digest(filled: Ledger) -> None:
    exported = chain.digest(chain.verify(filled), key=b"k")
    # The attacker alters an event, then recomputes the whole chain to match.
    tamper(
        filled,
        replace_in_payload(filled, 3, '"active":true', '"active":false'),
        f"DELETE FROM {chain.TABLE}",
        f"DELETE FROM projection_tracking WHERE name = '{chain.ChainProjection.name}'",
    )
    Runner(filled, chain.ChainProjection()).run_once()
    assert chain.verify(filled).ok
    assert chain.check_digest(filled, exported, b"k") == (
        "the log up to position 8 no longer hashes to the digest's link: "
        "events at or before it were changed"
    )


def test_a_digest_holds_while_the_log_grows(filled: Ledger) -> None:
    exported = chain.digest(chain.verify(filled), key=b"k")
    issue(filled, name="later")
    Runner(filled, chain.ChainProjection()).run_once()
    assert chain.verify(filled).head_position == 9
    assert chain.check_digest(filled, exported, b"k") is None


def test_a_forged_digest_is_caught_by_its_signature(filled: Ledger) -> None:
    exported = chain.digest(chain.verify(filled), key=b"k")
    forged = exported.replace('"position": 8', '"position": 7')
    assert chain.check_digest(filled, forged, b"k") == (
        "the digest's signature does not match: the digest itself was changed"
    )


def test_cli_verify_exits_0_on_a_good_ledger_and_1_on_a_broken_one(
    filled: Ledger, tmp_path: Path
) -> None:
    url = filled.database.url
    key = tmp_path / "key"
    key.write_text("operator secret\n")
    made = subprocess.run(
        [SCIMLEDGER, "ledger", "digest", "--key", str(key), "--database", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    (tmp_path / "digest.json").write_text(made.stdout)
    good = subprocess.run(
        [
            SCIMLEDGER,
            "ledger",
            "verify",
            "--digest",
            str(tmp_path / "digest.json"),
            "--key",
            str(key),
            "--database",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("OK: 8 events verified; head at position 8: ")
    tamper(filled, "DELETE FROM {table} WHERE {pos} = 2")
    bad = subprocess.run(
        [SCIMLEDGER, "ledger", "verify", "--database", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr == (
        "BROKEN after 1 good events: event at position 2 is missing: it was deleted\n"
    )
