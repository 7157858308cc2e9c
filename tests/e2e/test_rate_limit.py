"""A token over its rate gets 429 with Retry-After and changes nothing; other tokens go on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from scimledger.http.app import create_app
from scimledger.http.rate_limit import RateLimit
from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken
from tests.conftest import issue
from tests.e2e.conftest import Server, call, issue_token, start_server
from tests.scim import Client

# Answered before any storage is read or written: the same on both databases.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def limited(services: Services, token: IssuedToken) -> Iterator[Client]:
    """The app with 1 request per second and bursts of 2 per token (a clock that does not
    move within the test: the bucket does not refill in a few milliseconds)."""
    limit = RateLimit(1, burst=2, clock=lambda: 0.0)
    app = create_app(dataclasses.replace(services, rate_limit=limit))
    with TestClient(app=app, base_url="http://scim.test") as client:
        client.headers["Authorization"] = f"Bearer {token.token}"
        yield client


def test_over_the_burst_a_token_gets_429_with_retry_after(
    limited: Client,
) -> None:
    assert [limited.get("/scim/v2/Users").status_code for _ in range(2)] == [200, 200]
    refused = limited.get("/scim/v2/Users")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "429",
        "detail": "Too many requests with this token: at most 1 per second; retry in 1 s",
    }


def test_a_refused_write_changes_nothing(
    limited: Client,
    services: Services,
) -> None:
    limited.get("/scim/v2/Users")
    limited.get("/scim/v2/Users")
    position = services.ledger.recorder.max_notification_id()
    refused = limited.post("/scim/v2/Users", json={"userName": "bjensen@example.com"})
    assert refused.status_code == 429
    assert services.ledger.recorder.max_notification_id() == position


def test_another_token_has_its_own_allowance(
    limited: Client,
    services: Services,
) -> None:
    for _ in range(3):
        limited.get("/scim/v2/Users")
    other = issue(services.ledger, name="Entra")
    answered = limited.get("/scim/v2/Users", headers={"Authorization": f"Bearer {other.token}"})
    assert answered.status_code == 200


def test_requests_without_a_valid_token_are_401_not_429(
    limited: Client,
) -> None:
    answers = [
        limited.get("/scim/v2/Users", headers={"Authorization": "Bearer nope"}).status_code
        for _ in range(5)
    ]
    assert answers == [401] * 5


def _get(server: Server, token: str) -> tuple[int | None, str | None]:
    """(status, Retry-After); an error's SCIM body must carry the same status."""
    reply = call(server, "GET", "/Users", token, timeout=10)
    if reply.status is not None and reply.status >= 400:
        body_status = int(reply.body["status"])
        return body_status if body_status == reply.status else -1, reply.header("Retry-After")
    return reply.status, reply.header("Retry-After")


def test_serve_rate_limit_applies_to_a_running_server(database_url: str) -> None:
    server = start_server(database_url, "--rate-limit", "0.5", "--rate-burst", "3")
    try:
        token = issue_token(database_url)["token"]
        answers = [_get(server, token) for _ in range(4)]
        assert answers == [(200, None)] * 3 + [(429, "2")]
    finally:
        server.stop()
        server.log.close()


def test_serve_without_rate_limit_does_not_limit(server: Server) -> None:
    token = issue_token(server.database)["token"]
    assert {_get(server, token)[0] for _ in range(300)} == {200}


def test_refusals_are_counted_in_the_metrics(limited: Client) -> None:
    def refused() -> float:
        text = limited.get("/metrics").text
        return next(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "scimledger_rate_limited_requests_total"
        )

    before = refused()
    statuses = [limited.get("/scim/v2/Users?count=1").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert refused() - before == 2
