"""The console's Operations page (admins): each read model's position against the log's head
and its lag, as `scimledger projections status` shows them, and the command that rebuilds it.
Projections are shared by every organization on the server, so this shows no one's data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, get
from litestar.response import Template

from scimledger.http.console.pages import page
from scimledger.http.console.sessions import person
from scimledger.http.services import Injected, Services
from scimledger.projections.registry import REBUILDABLE, all_projections
from scimledger.projections.runner import status

STALLED_AFTER = 60.0  # seconds, as `projections status` judges by default


@get("/operations", sync_to_thread=True)
def operations(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    who = person(request, services)
    who.must_be_admin()
    rows = [
        {
            "name": item.name,
            "position": item.position,
            "head": item.head,
            "lag_events": item.lag_events,
            "lag_seconds": round(item.lag_seconds, 1),
            "stalled": item.stalled(STALLED_AFTER),
            "rebuild": (
                f"scimledger projections rebuild {item.name}" if item.name in REBUILDABLE else None
            ),
        }
        for item in status(services.ledger, all_projections(), datetime.now(UTC))
    ]
    return page("operations", "Operations", who, projections=rows, stalled_after=STALLED_AFTER)


ROUTES = [operations]
