"""The retention policy: users deleted longer ago than their organization's
`erase_deleted_after_seconds` are erased (Ledger.erase_user), recorded as done by the
policy. A sweep (ledger.departures.Sweeper) runs it once a minute in the server; the users
it looks at are those the audit trail has as deleted and not erased (`candidates`), and the
ledger decides each one on its own events (Ledger.sweep_retention)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from scimledger.ledger.context import Actor
from scimledger.ledger.errors import InvalidSettings

# Who erases under the policy, as the events record it.
POLICY = Actor(kind="operator", id="retention policy", name="scimledger")
BATCH = 1_000  # users looked at per organization and sweep


def parse_period(text: str) -> int | None:
    """`never`, or a number of days (30d) or hours (12h), up to 3650 days: in seconds."""
    if text.strip() == "never":
        return None
    match = re.fullmatch(r"\s*(\d{1,7})\s*([hd])\s*", text)
    if match is None:
        raise InvalidSettings(
            f"erase deleted after {text[:40]!r}: use never, or days or hours such as 30d, 12h"
        )
    seconds = int(match.group(1)) * (86_400 if match.group(2) == "d" else 3_600)
    if seconds > 3650 * 86_400:
        raise InvalidSettings(f"erase deleted after {text!r}: at most 3650d")
    return seconds


def reason(seconds: int) -> str:
    """The reason an erasure by the policy records: the period it applied."""
    period = timedelta(seconds=seconds)
    shown = f"{period.days}d" if period.days and not period.seconds else f"{seconds}s"
    return f"retention policy: deleted more than {shown} ago"


def candidates(
    organizations: Callable[[], list[tuple[str, int]]],
    deleted_before: Callable[[str, datetime], list[str]],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[UUID]:
    """The users the policy may erase now: for each organization with a period (its id and
    the period, in seconds), those deleted longer ago than it and not erased."""
    moment = now()
    found: list[UUID] = []
    for org_id, seconds in organizations():
        cutoff = moment - timedelta(seconds=seconds)
        found += [UUID(user_id) for user_id in deleted_before(org_id, cutoff)]
    return found
