"""The hash chain over the event log: tamper evidence (`scimledger ledger verify`).

Each stored event gets a link: SHA-256 over the previous link and the event as stored
(position, aggregate id, version, topic, payload). The chain is kept up to date like a
projection, exactly once and in log order, in the `ledger_chain` table, itself append-only.

Verification recomputes every link from the events and compares: an altered, deleted,
inserted or moved event breaks the chain at that position. Someone able to rewrite both the
events and the chain could recompute it; a digest exported earlier (the link at a position,
kept outside the database) catches that too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from scimledger.ledger import append_only
from scimledger.ledger.application import Ledger
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL, Cursor

GENESIS = bytes(32)
TABLE = "ledger_chain"
BATCH = 5000  # events and links read at once: memory stays flat however long the log is


def link(previous: bytes, notification: Any) -> bytes:
    """The link of one stored event, given the previous link."""
    digest = hashlib.sha256(previous)
    digest.update(int(notification.id).to_bytes(8, "big"))
    originator = notification.originator_id
    digest.update(originator.bytes if isinstance(originator, UUID) else str(originator).encode())
    digest.update(int(notification.originator_version).to_bytes(8, "big"))
    topic = notification.topic.encode()
    digest.update(len(topic).to_bytes(4, "big") + topic)
    state = notification.state
    if isinstance(state, str):  # a payload rewritten as text in SQL: hash its bytes
        state = state.encode()
    state = bytes(state)
    digest.update(len(state).to_bytes(8, "big") + state)
    return digest.digest()


class ChainProjection:
    """Appends a link for each stored event (a `raw` projection: it sees every event as
    stored, undecoded)."""

    name = "ledger_chain_v1"
    tables: tuple[str, ...] = (TABLE,)
    topics: tuple[type, ...] = ()
    raw = True

    def ddl(self, dialect: str) -> tuple[str, ...]:
        protect = (
            append_only.postgresql_statements(TABLE)
            if dialect == "postgresql"
            else append_only.sqlite_statements(TABLE)
        )
        return (
            f"CREATE TABLE IF NOT EXISTS {TABLE} (position BIGINT PRIMARY KEY, link TEXT NOT NULL)",
            *protect,
        )

    def __init__(self) -> None:
        self._previous = GENESIS
        self._links: list[tuple[int, str]] = []

    def prepare(self, event: Any) -> Any:
        return event

    def begin(self, cursor: Cursor) -> None:
        # Read the head in the batch's own transaction: another process may have moved it.
        cursor.execute(f"SELECT link FROM {TABLE} ORDER BY position DESC LIMIT 1")
        row = cursor.fetchone()
        self._previous = bytes.fromhex(row["link"]) if row is not None else GENESIS
        self._links = []

    def add(self, cursor: Cursor, notification: Any, position: int) -> None:
        self._previous = link(self._previous, notification)
        self._links.append((position, self._previous.hex()))

    def end(self, cursor: Cursor) -> None:
        cursor.insert_rows(TABLE, ("position", "link"), self._links)
        self._links = []


@dataclass(frozen=True)
class Verification:
    checked: int
    head_position: int
    head_link: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _chain_rows(sql: SQL) -> Iterator[tuple[int, str]]:
    after = 0
    while True:
        with sql.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT position, link FROM {TABLE} WHERE position > ? ORDER BY position LIMIT ?",
                (after, BATCH),
            )
            rows = [(int(r["position"]), str(r["link"])) for r in cursor.fetchall()]
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1][0]


def _events(ledger: Ledger) -> Iterator[Any]:
    after = 0
    while True:
        notifications = ledger.recorder.select_notifications(
            start=after, limit=BATCH, inclusive_of_start=False
        )
        yield from notifications
        if len(notifications) < BATCH:
            return
        after = notifications[-1].id


def verify(ledger: Ledger, progress: Callable[[int], None] | None = None) -> Verification:
    """Walks the whole log and its chain in step, in batches; stops at the first broken
    link."""
    previous, checked, head = GENESIS, 0, 0

    def verified(problem: str | None = None) -> Verification:
        return Verification(checked, head, previous.hex(), problem)

    events = _events(ledger)
    event = next(events, None)
    for position, stored in _chain_rows(SQL(ledger)):
        if event is None or event.id > position:
            return verified(f"event at position {position} is missing: it was deleted")
        if event.id < position:
            return verified(
                f"event at position {event.id} has no link: it was added behind the chain, or moved"
            )
        expected = link(previous, event)
        if expected.hex() != stored:
            return verified(
                f"event at position {position} ({event.topic}, aggregate "
                f"{event.originator_id} v{event.originator_version}) does not "
                "match its link: it was altered, or events were reordered"
            )
        previous, head, checked = expected, position, checked + 1
        if progress is not None and checked % BATCH == 0:
            progress(checked)
        event = next(events, None)
    if event is not None:
        return verified(
            f"event at position {event.id} and later have no link yet: run "
            "the chain (scimledger serve does) and verify again"
        )
    return verified()


def extend_and_verify(
    ledger: Ledger, progress: Callable[[int], None] | None = None
) -> Verification:
    """Extends the chain to the end of the log, then verifies all of it (`ledger verify`,
    the console's "Verify now")."""
    Runner(ledger, ChainProjection()).run_once()
    return verify(ledger, progress=progress)


def digest(verification: Verification, key: bytes | None) -> str:
    """A digest of a verified chain head, as JSON; signed with HMAC-SHA256 when a key is
    given."""
    record: dict[str, Any] = {
        "position": verification.head_position,
        "link": verification.head_link,
        "created_at": datetime.now(UTC).isoformat(),
    }
    if key is not None:
        record["hmac_sha256"] = _sign(key, record)
    return json.dumps(record)


def _sign(key: bytes, record: dict[str, Any]) -> str:
    message = f"{record['position']}:{record['link']}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check_digest(ledger: Ledger, text: str, key: bytes | None) -> str | None:
    """What is wrong with the chain against an exported digest, or None if it holds."""
    record = json.loads(text)
    if key is not None and not hmac.compare_digest(
        str(record.get("hmac_sha256", "")), _sign(key, record)
    ):
        return "the digest's signature does not match: the digest itself was changed"
    position = int(record["position"])
    previous = GENESIS
    for event in _events(ledger):
        if event.id > position:
            break
        previous = link(previous, event)
        if event.id == position:
            break
    if previous.hex() != record["link"]:
        return (
            f"the log up to position {position} no longer hashes to the digest's link: "
            "events at or before it were changed"
        )
    return None
