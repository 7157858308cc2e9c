"""Requests per token: a token bucket each, refilled at `rate` per second up to `burst`.

A request over the limit answers 429 with `Retry-After` (whole seconds until a request would
be allowed; Okta waits that long). Off unless `scimledger serve --rate-limit` sets it. The
limit is per server process: with N API workers a token may send up to N times the rate.
Memory: one small entry per token that sent a request, tokens being few (a handful per
organization); entries idle long enough to be full again are dropped.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimit:
    def __init__(
        self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate < 0:
            raise ValueError("the rate limit cannot be negative")
        self.rate = rate
        self.burst = burst if burst is not None else max(1, math.ceil(2 * rate))
        if rate and self.burst < 1:
            raise ValueError("the burst must allow at least one request")
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    @classmethod
    def off(cls) -> RateLimit:
        return cls(0)

    def take(self, key: str) -> float:
        """0 if `key` may make a request now (and counts it), else the seconds to wait."""
        if not self.rate:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                if len(self._buckets) > 1024:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {
            key: (tokens, at)
            for key, (tokens, at) in self._buckets.items()
            if now - at < full_after
        }
