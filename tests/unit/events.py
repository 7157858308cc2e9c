"""Building events for unit tests: command contexts, a clock for event timestamps, replay,
and a projection fed events directly on an in-memory SQLite database (no ledger, no event
store, no file)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from unittest import mock
from uuid import UUID

import eventsourcing.domain
from eventsourcing.domain import Aggregate, CanMutateAggregate

from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.organizations import Organization
from scimledger.projections.runner import Projection
from scimledger.projections.sql import Cursor

ORG_ID = Organization.create_id("acme")
OTHER_ORG_ID = Organization.create_id("globex")
T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
SECOND = timedelta(seconds=1)

OKTA = Actor(
    kind="token", id="6c1d2b7e9f004c3a8e5f1a2b3c4d5e6f", name="Okta", issued_by="ada@acme.example"
)
OKTA_REQUEST = RequestInfo(
    request_id="req-1", client_address="203.0.113.7", user_agent="Okta SCIM Client 1.0.0"
)
CONTEXT = CommandContext(org_id=ORG_ID, actor=OKTA, request=OKTA_REQUEST)
OPERATOR = CommandContext(
    org_id=ORG_ID,
    actor=Actor(kind="operator", id="tokens issue", name="root"),
    request=RequestInfo(request_id="op-1"),
)

Event = CanMutateAggregate[UUID]
A = TypeVar("A", bound=Aggregate)


def at(seconds: int) -> datetime:
    """The timestamp of the event made `seconds` ticks after the first (see `clock`)."""
    return T0 + seconds * SECOND


@contextmanager
def clock(start: datetime = T0, step: timedelta = SECOND) -> Iterator[None]:
    """Stamps every event made meanwhile `step` after the one before, the first at `start`.

    It replaces the one function the library's events read the time from: freezegun would
    do the same, but scans every loaded module each time it starts (~40 ms a test here)."""
    ticks = itertools.count()

    def now() -> datetime:
        return start + next(ticks) * step

    with mock.patch.object(eventsourcing.domain, "datetime_now_with_tzinfo", now):
        yield


def recorded(aggregate: Aggregate) -> list[tuple[type, dict[str, Any]]]:
    """The aggregate's pending events (collected: a second call returns only newer ones),
    each as its class and its fields but the aggregate's id, which every one must carry."""
    events = aggregate.collect_events()
    assert [event.originator_id for event in events] == [aggregate.id] * len(events)
    return [
        (type(event), {k: v for k, v in vars(event).items() if k != "originator_id"})
        for event in events
    ]


def replay(kind: type[A], events: Sequence[Event]) -> A:
    """The aggregate rebuilt from its events alone, as a repository would."""
    aggregate: Any = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, kind)
    return aggregate


def database(projection: Projection) -> Cursor:
    """A cursor on a new in-memory SQLite database holding the projection's tables; its rows
    read as mappings, as on the ledger's own connections."""
    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row
    cursor = Cursor(connection.cursor(), "sqlite")
    for statement in projection.ddl("sqlite"):
        cursor.execute(statement)
    return cursor


def feed(projection: Projection, cursor: Cursor, events: Sequence[Any], first: int = 1) -> None:
    """Applies `events` to the projection as one batch at positions `first`, `first + 1`, ...,
    as the runner does: only events of its topics (all, for a raw projection), each
    prepared, between `begin` and `end`."""
    projection.begin(cursor)
    for position, event in enumerate(events, start=first):
        if projection.raw or type(event) in projection.topics:
            projection.add(cursor, projection.prepare(event), position)
    projection.end(cursor)


def rows(cursor: Cursor, statement: str) -> list[dict[str, Any]]:
    """Every row a query returns, as plain dicts."""
    cursor.execute(statement)
    return [dict(row) for row in cursor.fetchall()]
