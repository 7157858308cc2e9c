"""The departed-issuer sweep (ledger.departures.Sweeper): every candidate is swept with one
clock reading, and the count is of the tokens revoked."""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

import pytest

from scimledger.ledger.availability import DatabaseUnavailable
from scimledger.ledger.departures import Sweeper

TOKENS = [UUID(int=n) for n in range(1, 4)]


def test_a_sweep_applies_the_policy_to_every_candidate_and_counts_the_revoked() -> None:
    swept: list[tuple[UUID, datetime]] = []

    def sweep(token_id: UUID, now: datetime) -> bool:
        swept.append((token_id, now))
        return token_id != TOKENS[1]

    revoked = Sweeper(lambda: TOKENS, sweep).sweep()

    assert revoked == 2
    assert [token_id for token_id, _ in swept] == TOKENS
    assert len({now for _, now in swept}) == 1


def test_a_sweep_without_candidates_revokes_nothing() -> None:
    assert Sweeper(list, lambda _token, _now: True).sweep() == 0


def test_a_token_whose_sweep_fails_is_logged_once_and_never_stops_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    swept: list[UUID] = []

    def sweep(token_id: UUID, _now: datetime) -> bool:
        swept.append(token_id)
        if token_id == TOKENS[0]:
            raise OverflowError("date value out of range")
        return True

    sweeper = Sweeper(lambda: TOKENS, sweep)
    with caplog.at_level(logging.ERROR, logger="scimledger.ledger.departures"):
        assert sweeper.sweep() == 2
        assert sweeper.sweep() == 2
    assert swept == TOKENS + TOKENS
    assert [r.getMessage() for r in caplog.records] == [
        f"departure sweep of token {TOKENS[0]} failed"
    ]


def test_an_outage_ends_the_sweep_for_the_next_minute() -> None:
    def sweep(_token_id: UUID, _now: datetime) -> bool:
        raise DatabaseUnavailable("the database is down")

    with pytest.raises(DatabaseUnavailable):
        Sweeper(lambda: TOKENS, sweep).sweep()
