"""Dates, times and durations people type (a token's expiry, the audit trail's since, until
and at, grace periods): one parser and one supported range, so that no value at the edges
(year 1 or 9999, with an offset that moves it out of its year) reaches arithmetic that
overflows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)  # excluded
SUPPORTED = "from 1970-01-01T00:00:00Z to 2999-12-31T23:59:59Z"
MAX_GRACE = timedelta(days=365)  # the longest grace period: a rotated token's, a departure's


def parse_moment(text: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (UTC unless it says otherwise), in UTC, within
    the supported range; ValueError that says why not."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(), UTC)
        else:
            moment = datetime.fromisoformat(value)
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO date or date-time") from exc
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        moment = LATEST
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"{text!r} is out of range: dates go {SUPPORTED}")
    return moment
