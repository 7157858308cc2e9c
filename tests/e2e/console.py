"""What the console's tests share: its people, signing in over HTTP, the CSRF token of a page,
the events recorded. The `console` client and the `oidc_provider` are fixtures
(tests/e2e/conftest.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from eventsourcing.persistence import Notification

from scimledger.http.services import Services
from scimledger.ledger.context import Actor
from tests.scim import Client

ORIGIN = {"origin": "http://scim.test"}
OPERATOR = Actor.operator("scimledger console link")
ADA = "ada@acme.example"
RITA = "rita@acme.example"


def link_for(services: Services, email: str = ADA, org: str = "acme") -> str:
    presented, _ = services.ledger.issue_sign_in_link(org, email, OPERATOR, datetime.now(UTC))
    return f"/console/sign-in/{presented}"


def sign_in(console: Client, services: Services, email: str = ADA) -> str:
    """Signs `email` in; the CSRF token of their session."""
    response = console.post(link_for(services, email), headers=ORIGIN, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/console/setup")
    return csrf_of(console.get("/console/setup").text)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def once_of(page: str) -> str:
    """The key of a once-only form on the page (a new token's, a rotation's)."""
    found = re.search(r'name="once" value="([A-Za-z0-9_-]{22})"', page)
    assert found is not None, "no once-only key on the page"
    return found.group(1)


def events_of(services: Services, kind: type) -> list[Notification]:
    topic = f"{kind.__module__}:{kind.__qualname__}"
    return [
        n
        for n in services.ledger.recorder.select_notifications(start=1, limit=10_000)
        if n.topic == topic
    ]
