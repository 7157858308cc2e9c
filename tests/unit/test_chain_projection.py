"""The hash chain's projection (projections.chain.ChainProjection) fed stored events
directly: events made by the aggregates, turned into log entries as the ledger stores them,
applied through the projection protocol on an in-memory SQLite database, and the exact links
they leave. No ledger, no event store."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, Mapper

from scimledger.ledger.groups import Group
from scimledger.ledger.names import NameIndex
from scimledger.ledger.organizations import Organization
from scimledger.ledger.transcoding import LEDGER_TRANSCODINGS, LedgerTranscoder
from scimledger.ledger.users import User
from scimledger.projections.chain import GENESIS, ChainProjection, link
from scimledger.projections.runner import LogEntry
from scimledger.projections.sql import Cursor
from tests.unit.events import CONTEXT, OPERATOR, ORG_ID, Event, clock, database, feed, rows

ADA_CREATED = LogEntry(
    1, UUID(int=1), 1, "scimledger.ledger.users:User.UserCreated", b'{"userName":"ada"}'
)
ADA_DELETED = LogEntry(2, UUID(int=1), 2, "scimledger.ledger.users:User.UserDeleted", b"{}")


@pytest.fixture
def projection() -> ChainProjection:
    return ChainProjection()


@pytest.fixture
def cursor(projection: ChainProjection) -> Cursor:
    return database(projection)


def log(events: Sequence[Event], first: int = 1) -> list[LogEntry]:
    """The events as the ledger stores them, at positions `first`, `first + 1`, ..."""
    transcoder = LedgerTranscoder()
    for transcoding in (DecimalAsStr(), DatetimeAsISO(), *LEDGER_TRANSCODINGS):
        transcoder.register(transcoding)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    entries = []
    for position, event in enumerate(events, start=first):
        stored = mapper.to_stored_event(event)
        entries.append(
            LogEntry(
                position,
                stored.originator_id,
                stored.originator_version,
                stored.topic,
                stored.state,
            )
        )
    return entries


def some_events() -> list[Event]:
    """Events of every kind of aggregate, as one request would store them."""
    with clock():
        user = User(org_id=ORG_ID, attributes={"userName": "ada"}, active=True, context=CONTEXT)
        index = NameIndex(org_id=ORG_ID, kind="userName", name="ada", owner_id=user.id)
        group = Group(org_id=ORG_ID, display_name="Admins", external_id=None, context=CONTEXT)
        group.add_members([user.id], CONTEXT)
        organization = Organization(slug="acme", context=OPERATOR)
    return [
        *user.collect_events(),
        *index.collect_events(),
        *group.collect_events(),
        *organization.collect_events(),
    ]


def chained(entries: Sequence[LogEntry], previous: bytes = GENESIS) -> list[dict[str, object]]:
    """The rows the chain should hold for `entries`, linked from `previous`."""
    expected: list[dict[str, object]] = []
    for entry in entries:
        previous = link(previous, entry)
        expected.append({"position": entry.id, "link": previous.hex()})
    return expected


def links(cursor: Cursor) -> list[dict[str, object]]:
    return rows(cursor, "SELECT position, link FROM ledger_chain ORDER BY position")


def test_a_link_hashes_the_previous_link_and_the_event_as_stored() -> None:
    topic = b"scimledger.ledger.users:User.UserCreated"
    state = b'{"userName":"ada"}'
    digest = hashlib.sha256(GENESIS)
    digest.update((1).to_bytes(8, "big"))
    digest.update(UUID(int=1).bytes)
    digest.update((1).to_bytes(8, "big"))
    digest.update(len(topic).to_bytes(4, "big") + topic)
    digest.update(len(state).to_bytes(8, "big") + state)
    assert link(GENESIS, ADA_CREATED) == digest.digest()


def test_links_never_change_for_the_same_events() -> None:
    # Chains and digests exported earlier are checked against these: the format is fixed.
    first = link(GENESIS, ADA_CREATED)
    assert first.hex() == "5a8284a71de89aa59c07ca14ff0a1fb9599ead9bb018c3af72f479567e74162d"
    assert link(first, ADA_DELETED).hex() == (
        "9413da301e2ab2d9d8d15919157606b46c8eec766a3fa8027d2d194f3ecfc65b"
    )


class TextEntry(NamedTuple):
    """A stored event whose payload was read back as text (rewritten as text in SQL)."""

    id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: str


def test_a_payload_read_as_text_links_as_its_bytes() -> None:
    as_text = TextEntry(*ADA_CREATED[:4], state=ADA_CREATED.state.decode())
    assert link(GENESIS, as_text) == link(GENESIS, ADA_CREATED)


def test_it_links_every_stored_event_whatever_its_aggregate() -> None:
    projection = ChainProjection()
    assert (projection.raw, projection.topics) == (True, ())


def test_a_batch_gets_one_link_per_event_chained_from_the_genesis(
    projection: ChainProjection, cursor: Cursor
) -> None:
    entries = log(some_events())
    feed(projection, cursor, entries)
    assert len(entries) == 5
    assert links(cursor) == chained(entries)


def test_a_later_batch_continues_from_the_stored_head(
    projection: ChainProjection, cursor: Cursor
) -> None:
    entries = log(some_events())
    feed(projection, cursor, entries[:2])
    feed(ChainProjection(), cursor, entries[2:], first=3)
    assert links(cursor) == chained(entries)


def test_positions_are_kept_with_their_gaps(projection: ChainProjection, cursor: Cursor) -> None:
    entries = [ADA_CREATED, ADA_DELETED._replace(id=7)]
    projection.begin(cursor)
    for entry in entries:
        projection.add(cursor, projection.prepare(entry), entry.id)
    projection.end(cursor)
    assert [row["position"] for row in links(cursor)] == [1, 7]
    assert links(cursor) == chained(entries)


def test_an_empty_batch_writes_nothing(projection: ChainProjection, cursor: Cursor) -> None:
    feed(projection, cursor, [])
    assert links(cursor) == []


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_chain SET link = 'forged'", "DELETE FROM ledger_chain"],
)
def test_the_chain_is_append_only(
    projection: ChainProjection, cursor: Cursor, statement: str
) -> None:
    feed(projection, cursor, [ADA_CREATED])
    with pytest.raises(sqlite3.IntegrityError) as refused:
        cursor.execute(statement)
    assert str(refused.value) == (
        "ledger_chain is append-only: stored events are never changed or removed"
    )
    assert links(cursor) == chained([ADA_CREATED])
