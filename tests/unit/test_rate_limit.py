"""The per-token token bucket (http/rate_limit.py), on a clock the tests move."""

from __future__ import annotations

import pytest

from scimledger.http.rate_limit import RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_off_never_limits() -> None:
    limit = RateLimit.off()
    assert limit.rate == 0
    assert [limit.take("t") for _ in range(10_000)] == [0.0] * 10_000


def test_a_burst_is_allowed_then_the_next_request_waits_for_one_token() -> None:
    clock = Clock()
    limit = RateLimit(2, burst=3, clock=clock)
    assert [limit.take("t") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("t") == pytest.approx(0.5)
    clock.now += 0.25
    assert limit.take("t") == pytest.approx(0.25)  # a refused request costs nothing
    clock.now += 0.25
    assert limit.take("t") == 0.0
    assert limit.take("t") == pytest.approx(0.5)


def test_the_bucket_refills_at_the_rate_up_to_the_burst_only() -> None:
    clock = Clock()
    limit = RateLimit(10, burst=5, clock=clock)
    for _ in range(5):
        limit.take("t")
    clock.now += 3600  # an hour idle refills 5, not 36,000
    assert [limit.take("t") for _ in range(6)] == [0.0] * 5 + [pytest.approx(0.1)]


def test_tokens_have_buckets_of_their_own() -> None:
    clock = Clock()
    limit = RateLimit(1, burst=1, clock=clock)
    assert limit.take("a") == 0.0
    assert limit.take("a") == pytest.approx(1.0)
    assert limit.take("b") == 0.0


def test_the_burst_defaults_to_twice_the_rate() -> None:
    assert RateLimit(50).burst == 100
    assert RateLimit(0.2).burst == 1


def test_idle_full_buckets_are_forgotten_when_there_are_many() -> None:
    clock = Clock()
    limit = RateLimit(1, burst=1, clock=clock)
    for n in range(1025):
        limit.take(f"old{n}")
    clock.now += 2  # every bucket is full again
    limit.take("new")
    assert set(limit._buckets) == {"new"}


@pytest.mark.parametrize(("rate", "burst"), [(-1, None), (1, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int | None) -> None:
    with pytest.raises(ValueError, match=r"rate limit cannot be negative|at least one request"):
        RateLimit(rate, burst)
