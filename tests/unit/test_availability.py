"""The gate in front of PostgreSQL connections (ledger/availability.py) and the 503 that
database failures become (http/errors.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import psycopg
import pytest
from eventsourcing.persistence import InterfaceError, OperationalError

from scimledger.http.errors import to_scim_error
from scimledger.ledger import availability
from scimledger.ledger.availability import PROBE_AFTER, DatabaseUnavailable, Gate


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def is_down(gate: Gate) -> bool:
    """gate.down, read afresh: after `assert gate.down`, mypy holds it True across the calls
    that change it."""
    return gate.down


def test_an_open_gate_lets_everyone_through() -> None:
    gate = Gate(Clock())
    for _ in range(3):
        assert gate.enter() is False  # not probing: the database is not known to be down
    assert not gate.down


def test_after_a_failure_callers_fail_at_once_until_one_may_probe() -> None:
    clock = Clock()
    gate = Gate(clock)
    gate.failed(ConnectionError())
    assert gate.down
    with pytest.raises(DatabaseUnavailable, match="unreachable"):
        gate.enter()
    clock.now += PROBE_AFTER
    assert gate.enter() is True  # this caller probes
    with pytest.raises(DatabaseUnavailable):
        gate.enter()  # the others do not, meanwhile
    gate.succeeded()
    assert not is_down(gate)
    assert gate.enter() is False
    assert gate.enter() is False


def test_a_failed_probe_keeps_the_gate_closed_for_another_interval() -> None:
    clock = Clock()
    gate = Gate(clock)
    gate.failed(ConnectionError())
    clock.now += PROBE_AFTER
    gate.enter()
    gate.failed(ConnectionError())
    clock.now += PROBE_AFTER / 2
    with pytest.raises(DatabaseUnavailable):
        gate.enter()
    clock.now += PROBE_AFTER / 2
    assert gate.enter() is True


class Datastore:
    """What `install` needs of eventsourcing's PostgresDatastore: its pool's connections."""

    def __init__(self) -> None:
        self.pool = SimpleNamespace(reconnect_timeout=300.0)
        self.asked = 0

    @contextmanager
    def get_connection(self) -> Iterator[str]:
        self.asked += 1
        yield "a connection"


@pytest.mark.parametrize("reachable", [False, True])
def test_a_probe_asks_the_pool_only_once_the_database_answers(
    monkeypatch: pytest.MonkeyPatch, reachable: bool
) -> None:
    """The pool would make the prober wait its whole timeout for a connection it cannot make;
    a direct connection attempt tells at once (refused) whether the database is back."""
    monkeypatch.setattr(availability, "_reachable", lambda datastore: reachable)
    clock = Clock()
    datastore = Datastore()
    gate = availability.install(datastore, clock)
    gate.failed(ConnectionError())
    clock.now += PROBE_AFTER
    if reachable:
        with datastore.get_connection() as connection:
            assert connection == "a connection"
        assert (datastore.asked, gate.down) == (1, False)
    else:
        with pytest.raises(DatabaseUnavailable), datastore.get_connection():
            pass
        assert (datastore.asked, gate.down) == (0, True)


def test_the_pool_stops_retrying_in_the_background_soon() -> None:
    datastore = Datastore()
    availability.install(datastore)
    assert datastore.pool.reconnect_timeout == availability.RECONNECT_FOR == 2.0


def test_unavailable_is_what_the_event_store_retries() -> None:
    assert issubclass(DatabaseUnavailable, OperationalError)


@pytest.mark.parametrize(
    "exc",
    [
        DatabaseUnavailable("the database is unreachable"),
        OperationalError("database is locked"),
        InterfaceError("connection already closed"),
    ],
)
def test_database_failures_answer_503_with_retry_after(exc: Exception) -> None:
    error = to_scim_error(exc)
    assert (error.status, error.detail, error.headers) == (
        503,
        "The database is unavailable or busy; retry later",
        {"Retry-After": "2"},
    )


def test_a_read_model_that_does_not_catch_up_answers_503() -> None:
    error = to_scim_error(TimeoutError("scim_read_model_v6 did not reach position 9"))
    assert (error.status, error.detail, error.headers) == (
        503,
        "The server is behind; retry later",
        {"Retry-After": "2"},
    )


def test_a_background_task_reports_an_outage_once_and_other_failures_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = availability.BackgroundFailures(logging.getLogger("tests.task"), "projection p")
    with caplog.at_level(logging.INFO, logger="tests.task"):
        for _ in range(3):
            failures.failed(DatabaseUnavailable("the database is unreachable"))
        failures.failed(OperationalError("server closed the connection unexpectedly"))
        failures.succeeded()
        failures.succeeded()
        failures.failed(ValueError("a bug"))
        failures.failed(ValueError("a bug"))
    assert [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("WARNING", "projection p waits for the database (DatabaseUnavailable); will retry", False),
        ("INFO", "projection p resumed", False),
        ("ERROR", "projection p failed; will retry", True),
        ("ERROR", "projection p failed; will retry", True),
    ]


def test_the_log_names_the_database_error_behind_a_503_but_not_its_message() -> None:
    full = OperationalError('could not extend file "base/16384/16385": No space left on device')
    full.__cause__ = psycopg.errors.DiskFull("could not extend file ...")
    assert availability.describe(full) == "OperationalError (DiskFull, SQLSTATE 53100)"
    gone = OperationalError("consuming input failed")
    gone.__cause__ = psycopg.OperationalError("server closed the connection unexpectedly")
    assert availability.describe(gone) == "OperationalError (OperationalError)"
    assert availability.describe(DatabaseUnavailable("unreachable")) == "DatabaseUnavailable"
