"""Stored and served times: UTC, milliseconds truncated, a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from scimledger.projections.sql_filters import scim_datetime


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (
            datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5))),
            "1999-12-31T18:59:59.123Z",
        ),
        (
            datetime(2026, 6, 30, 20, 0, 0, 1000, tzinfo=timezone(timedelta(hours=-8))),
            "2026-07-01T04:00:00.001Z",
        ),
    ],
)
def test_times_are_utc_with_milliseconds(moment: datetime, expected: str) -> None:
    assert scim_datetime(moment) == expected


def test_freezegun_times_format_the_same() -> None:
    with freeze_time("2026-03-04T05:06:07.891234Z"):
        assert scim_datetime(datetime.now(UTC)) == "2026-03-04T05:06:07.891Z"
