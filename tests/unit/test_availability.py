"""The gate in front of PostgreSQL connections (ledger/availability.py) and the 503 that
database failures become (http/errors.py)."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import InterfaceError, OperationalError

from scimledger.http.errors import to_scim_error
from scimledger.ledger.availability import PROBE_AFTER, DatabaseUnavailable, Gate


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_an_open_gate_lets_everyone_through() -> None:
    gate = Gate(Clock())
    for _ in range(3):
        gate.enter()
    assert not gate.down


def test_after_a_failure_callers_fail_at_once_until_one_may_probe() -> None:
    clock = Clock()
    gate = Gate(clock)
    gate.failed(ConnectionError())
    assert gate.down
    with pytest.raises(DatabaseUnavailable, match="unreachable"):
        gate.enter()
    clock.now += PROBE_AFTER
    gate.enter()  # this caller probes
    with pytest.raises(DatabaseUnavailable):
        gate.enter()  # the others do not, meanwhile
    gate.succeeded()
    assert not gate.down
    gate.enter()
    gate.enter()


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
    gate.enter()


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
    error = to_scim_error(TimeoutError("scim_read_model_v3 did not reach position 9"))
    assert (error.status, error.detail, error.headers) == (
        503,
        "The server is behind; retry later",
        {"Retry-After": "2"},
    )
