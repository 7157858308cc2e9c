"""/healthz and /readyz: for load balancers and orchestrators, without a token."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from scimledger.http import health
from scimledger.http.health import Readiness, Report
from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.projections.runner import Runner
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from tests.conftest import issue
from tests.e2e.conftest import Server, call, issue_token, start_server
from tests.e2e.test_database_outage import Proxy, proxied
from tests.scim import Client

__all__ = ["proxied"]  # the fixture, from test_database_outage

READY = {
    "status": "ready",
    "database": "ok",
    "scim_read_model_lag_events": 0,
    "max_lag_events": health.MAX_LAG_EVENTS,
    "shutting_down": False,
}


def test_healthz_answers_without_a_token(client: Client) -> None:
    del client.headers["Authorization"]
    answer = client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"


def test_readyz_says_ready_without_a_token(client: Client) -> None:
    del client.headers["Authorization"]
    answer = client.get("/readyz")
    assert (answer.status_code, answer.json()) == (200, READY)


def test_readyz_is_503_from_shutdown_on_while_requests_are_still_served(
    client: Client, services: Services
) -> None:
    services.lifecycle.stop()
    answer = client.get("/readyz")
    assert (answer.status_code, answer.json()) == (
        503,
        {**READY, "status": "not ready", "shutting_down": True},
    )
    assert client.get("/scim/v2/Users?count=1").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_the_read_model_behind_the_log_is_counted_and_beyond_the_bound_not_ready(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events the SCIM read model has not applied (written by a process without the inline
    projection, with no follower running) make the lag."""
    Runner(ledger, ScimProjection()).run_once()  # its tables and tracking row, at the head
    issue(ledger)  # the organization's event and the token's
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    context = CommandContext(org_id, Actor.operator("tests"), RequestInfo("r"))
    for n in range(3):  # each: the user and its userName's claim
        ledger.create_user(context, NewUser({"userName": f"u{n}@example.com"}))
    services: Any = SimpleNamespace(ledger=ledger, sql=SQL(ledger))
    report = health.check(services)
    assert report == Report("ok", 2 + 6)
    assert report.ready
    monkeypatch.setattr(health, "MAX_LAG_EVENTS", 7)
    assert not report.ready


def test_a_check_runs_at_most_once_a_second_and_is_given_up_on_after_its_timeout() -> None:
    now = [100.0]
    calls: list[float] = []
    slow = threading.Event()

    def check() -> Report:
        calls.append(now[0])
        if slow.is_set():
            time.sleep(0.5)
        return Report("ok", 0)

    readiness = Readiness(check, fresh_for=1.0, timeout=0.2, clock=lambda: now[0])

    async def probes() -> list[Report]:
        first = await readiness.report()
        second = await readiness.report()  # within the second: the same answer
        now[0] += 1.0
        slow.set()
        third = await readiness.report()  # a new check, which takes too long
        now[0] += 1.0
        await asyncio.sleep(0.5)  # that check has finished meanwhile
        slow.clear()
        fourth = await readiness.report()
        return [first, second, third, fourth]

    reports = asyncio.run(probes())
    assert reports == [Report("ok", 0), Report("ok", 0), Report("timeout"), Report("ok", 0)]
    assert calls == [100.0, 101.0, 102.0]


def root(server: Server, path: str) -> tuple[int, dict[str, Any]]:
    """A request for `path` at the server's root, without a token."""
    url = server.base_url.removesuffix("/scim/v2") + path
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, msgspec.json.decode(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, msgspec.json.decode(error.read())


@pytest.mark.sqlite_only  # the process's handling, whatever the database (CI time)
@pytest.mark.slow
def test_sigterm_drains_first_ready_503_and_requests_served_then_stops(database_url: str) -> None:
    server = start_server(database_url, "--drain-seconds", "3")
    try:
        token = issue_token(database_url)["token"]
        assert root(server, "/readyz")[0] == 200
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # Until the server has handled the signal: then, and within the drain, 503.
        while (ready := root(server, "/readyz"))[0] == 200 and time.monotonic() - signalled < 2:
            time.sleep(0.02)
        status, body = ready
        assert (status, body["shutting_down"]) == (503, True)
        assert root(server, "/healthz") == (200, {"status": "ok"})
        assert call(server, "GET", "/Users?count=1", token).status == 200
        assert time.monotonic() - signalled < 3  # still within the drain
        assert server.process.wait(timeout=20) == 0
        assert time.monotonic() - signalled >= 3
        assert "draining for 3 s before shutting down" in server.output()
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.log.close()


@pytest.mark.slow
def test_during_a_database_outage_readyz_is_503_and_healthz_200(
    proxied: tuple[Proxy, str],
) -> None:
    proxy, through = proxied
    server = start_server(through)
    try:
        assert root(server, "/readyz") == (200, READY)
        proxy.cut()
        time.sleep(health.FRESH_FOR)  # past the last answer kept
        status, body = root(server, "/readyz")
        assert (status, body["database"]) == (503, "unavailable"), body
        assert root(server, "/healthz") == (200, {"status": "ok"})
        url = server.base_url.removesuffix("/scim/v2") + "/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        assert "scimledger_database_up 0.0" in text.splitlines()
        assert "scimledger_database_gate_open 0.0" in text.splitlines()
        proxy.restore()
        deadline = time.monotonic() + 30
        while root(server, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
    finally:
        server.stop()
        server.log.close()


def test_a_probes_success_is_logged_at_debug_its_failure_as_any_request(
    client: Client, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="scimledger.access")
    assert client.get("/readyz").status_code == 200
    assert client.get("/healthz").status_code == 200
    services.lifecycle.stop()
    assert client.get("/readyz").status_code == 503
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "scimledger.access"]
    assert lines == [
        ("DEBUG", "GET /readyz 200"),
        ("DEBUG", "GET /healthz 200"),
        ("INFO", "GET /readyz 503"),
    ]
