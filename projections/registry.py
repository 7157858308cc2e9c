"""Every projection scimledger keeps, in one list: what `serve` and `project` follow, what
`projections status` reports and what `projections rebuild` may rebuild."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scimledger.projections import audit, chain, scim, scim_projection, tokens
from scimledger.projections.runner import Projection


@dataclass(frozen=True)
class Kept:
    name: str  # its tracking row's, carrying the version
    build: Callable[[str], Projection]  # the projection, its tables under a prefix ("": live)
    # How long a follower waits for more events before applying a batch, to gather bursts:
    # the SCIM read model's follower only catches up what was written without it
    # (projections.inline); the chain and the tokens list are read by admins and compliance,
    # whose readers catch up anyway. The audit trail is what the events feed and webhooks
    # send on: its wait is all of their latency (tests/benchmarks/webhook_latency.py).
    settle: float
    # The hash chain is not: it is the evidence the log was not altered, so it is never
    # recomputed from the log.
    rebuildable: bool


def _chain(_prefix: str) -> Projection:
    return chain.ChainProjection()


# Measured: 0.2 s held webhooks at p50 ~200 ms; 0.01 s took ~15% of SQLite's creates (one
# run each); 0.05 s gave p99 98 ms at 200 changes/s on PostgreSQL, creates as with 0.2.
AUDIT_SETTLE = 0.05

PROJECTIONS: tuple[Kept, ...] = (
    Kept(scim.NAME, scim_projection.ScimProjection, settle=0.2, rebuildable=True),
    Kept(chain.ChainProjection.name, _chain, settle=0.2, rebuildable=False),
    Kept(audit.NAME, audit.AuditProjection, settle=AUDIT_SETTLE, rebuildable=True),
    Kept(tokens.NAME, tokens.TokensProjection, settle=0.2, rebuildable=True),
)
REBUILDABLE = {kept.name: kept.build for kept in PROJECTIONS if kept.rebuildable}


def all_projections() -> list[Projection]:
    """Every projection, live, in the order serve starts them."""
    return [kept.build("") for kept in PROJECTIONS]
