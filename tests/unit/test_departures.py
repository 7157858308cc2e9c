"""The departed-issuer sweep (ledger.departures.Sweeper): every candidate is swept with one
clock reading, and the count is of the tokens revoked."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

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
