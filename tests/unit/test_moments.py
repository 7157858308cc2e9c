"""Dates, times and durations people type: one parser, one supported range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scimledger.ledger.moments import parse_moment
from scimledger.ledger.tokens import TokenRequestError, parse_expiry, parse_grace

NOW = datetime(2026, 12, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T12:00:00", datetime(2027, 1, 31, 12, tzinfo=UTC)),
        ("2027-01-31T12:00:00+02:00", datetime(2027, 1, 31, 10, tzinfo=UTC)),
        (" 1970-01-01T00:00:00Z ", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2999-12-31T23:59:59Z", datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_a_moment_in_range_is_read_in_utc(text: str, moment: datetime) -> None:
    assert parse_moment(text) == moment


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+01:00",
        "0001-01-01",
        "9999-12-31",
        "1969-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "2999-12-31T23:59:59-00:01",
    ],
)
def test_a_moment_out_of_range_is_refused_with_the_range(text: str) -> None:
    with pytest.raises(ValueError, match="out of range") as raised:
        parse_moment(text)
    assert str(raised.value) == (
        f"{text!r} is out of range: dates go from 1970-01-01T00:00:00Z to 2999-12-31T23:59:59Z"
    )


@pytest.mark.parametrize("text", ["", "tomorrow", "2027-13-01", "2027-01-01T25:00:00"])
def test_a_moment_that_is_no_date_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO date or date-time"):
        parse_moment(text)


def test_an_expiry_at_the_edge_is_refused_with_the_range() -> None:
    with pytest.raises(TokenRequestError) as raised:
        parse_expiry("9999-12-31T23:59:59-14:00", NOW)
    assert str(raised.value) == (
        "expiry: '9999-12-31T23:59:59-14:00' is out of range: dates go from "
        "1970-01-01T00:00:00Z to 2999-12-31T23:59:59Z; use never, a number of days such as "
        "30d, or an ISO date"
    )
    assert parse_expiry("99999d", NOW) == NOW + timedelta(days=99999)
    assert parse_expiry("2999-12-31", NOW) == datetime(2999, 12, 31, tzinfo=UTC)


def test_a_grace_is_at_most_365_days() -> None:
    assert parse_grace("365d") == timedelta(days=365)
    assert parse_grace("8760h") == timedelta(days=365)
    for text in ("366d", "8761h", "999999d", "999999m"):
        with pytest.raises(TokenRequestError, match="at most 365d"):
            parse_grace(text)
