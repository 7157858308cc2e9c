"""Shared by the fuzz tests: how many examples a run tries.

`SCIMLEDGER_FUZZ_EXAMPLES` sets it for a longer run than CI's defaults."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def examples(default: int) -> int:
    return int(os.environ.get("SCIMLEDGER_FUZZ_EXAMPLES", str(default)))


# The property tests' settings: no deadline (a shared machine is noisy), no example database.
FUZZ = settings(
    max_examples=examples(100),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
