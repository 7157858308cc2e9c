"""GET /metrics: Prometheus's text format, read with prometheus-client's own parser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError
from freezegun import freeze_time
from prometheus_client.parser import text_string_to_metric_families

from scimledger.http.metrics import Scraped
from scimledger.http.services import Services
from scimledger.ledger.application import MAX_ATTEMPTS
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.errors import ConcurrentModification
from scimledger.projections.audit import NAME as AUDIT
from scimledger.projections.registry import PROJECTIONS
from scimledger.projections.scim import NAME as SCIM
from tests.conftest import issue
from tests.e2e.conftest import SCIMLEDGER, free_port, running_server
from tests.scim import Client

OPERATOR = Actor(kind="operator", id="tests", name="tester")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scraped(client: Client) -> Samples:
    answer = client.get("/metrics", headers={"Authorization": ""})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def requests(samples: Samples, **labels: str) -> float:
    return samples.get(("scimledger_http_requests_total", tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_template_method_and_status(client: Client) -> None:
    before = scraped(client)
    for _ in range(3):
        assert client.get("/scim/v2/Users?count=1").status_code == 200
    assert client.get("/scim/v2/Users/=cmd|calc").status_code == 404
    assert client.get("/no/such/<script>alert(1)</script>").status_code == 404
    after = scraped(client)
    users = {"route": "/scim/v2/Users", "method": "GET", "status": "200"}
    one = {"route": "/scim/v2/Users/{user_id}", "method": "GET", "status": "404"}
    unrouted = {"route": "(no route)", "method": "GET", "status": "404"}
    assert requests(after, **users) - requests(before, **users) == 3
    assert requests(after, **one) - requests(before, **one) == 1
    assert requests(after, **unrouted) - requests(before, **unrouted) == 1
    labels = " ".join(str(key) for key in after)
    assert "script" not in labels
    assert "calc" not in labels
    count = (
        "scimledger_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/scim/v2/Users")),
    )
    assert after[count] - before.get(count, 0.0) == 3


def test_projections_positions_and_lag_and_the_database(client: Client, services: Services) -> None:
    services.scim.catch_up()
    services.audit.catch_up()
    samples = scraped(client)
    head = samples[("scimledger_log_head", ())]
    assert head >= 2  # the organization's and the token's events
    assert samples[("scimledger_database_up", ())] == 1
    assert samples[("scimledger_database_gate_open", ())] == 1
    scim_name = next(kept.name for kept in PROJECTIONS if kept.name.startswith("scim_"))
    assert samples[("scimledger_projection_lag_events", (("projection", scim_name),))] == 0
    assert samples[("scimledger_projection_position", (("projection", scim_name),))] == head


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no pool
def test_every_metric_the_grafana_dashboard_queries_is_exported(
    client: Client, services: Services
) -> None:
    dashboard = json.loads(
        (Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bscimledger_[a-z_]+", target["expr"])
    }
    assert client.get("/scim/v2/Users?count=1").status_code == 200  # a request counted
    services.ledger.add_webhook(
        "acme", "https://hooks.example.com/", types=[], allow_insecure=False, actor=OPERATOR,
        request=RequestInfo(request_id="test"), now=datetime.now(UTC),
    )  # fmt: skip
    services.tokens.catch_up()  # the test's token and the endpoint, counted
    exported = {name for name, _ in scraped(client)}
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, queried - exported


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_a_create_is_one_save_of_its_events_in_one_commit(client: Client) -> None:
    before = scraped(client)
    answer = client.post("/scim/v2/Users", json={"userName": "metrics@example.com"})
    assert answer.status_code == 201
    after = scraped(client)
    events = after[("scimledger_log_head", ())] - before[("scimledger_log_head", ())]
    assert events >= 2  # the user's and its userName's claim
    assert grew(before, after, "scimledger_ledger_saves_total") == 1
    assert grew(before, after, "scimledger_ledger_events_total") == events
    assert grew(before, after, "scimledger_ledger_commit_saves_count") == 1
    assert grew(before, after, "scimledger_ledger_commit_saves_sum") == 1
    assert grew(before, after, "scimledger_ledger_commit_saves_bucket", le="1.0") == 1


def test_conflicts_and_their_retries_are_counted(client: Client, services: Services) -> None:
    tries: list[bool] = []

    def conflicts_once(first: bool) -> str:
        tries.append(first)
        if first:
            raise IntegrityError("another write came first")
        return "saved"

    def conflicts_always(first: bool) -> str:
        raise IntegrityError("another write came first")

    before = scraped(client)
    assert services.ledger._retried(conflicts_once, "user") == "saved"
    assert tries == [True, False]
    after = scraped(client)
    assert grew(before, after, "scimledger_ledger_conflicts_total") == 1
    assert grew(before, after, "scimledger_ledger_retries_total") == 1
    with pytest.raises(ConcurrentModification):
        services.ledger._retried(conflicts_always, "user")
    last = scraped(client)
    assert grew(after, last, "scimledger_ledger_conflicts_total") == MAX_ATTEMPTS
    assert grew(after, last, "scimledger_ledger_retries_total") == MAX_ATTEMPTS - 1


def test_lag_in_seconds_is_the_age_of_the_oldest_event_not_applied(services: Services) -> None:
    services.audit.catch_up()
    written = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    with freeze_time(written):
        issue(services.ledger, org="acme", name="Later")  # the audit trail has not read it
    with freeze_time(written + timedelta(seconds=1)):
        issue(services.ledger, org="acme", name="Later still")
    collector = Scraped(services, clock=lambda: written + timedelta(seconds=42.5))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }
    assert samples[("scimledger_projection_lag_seconds", (("projection", AUDIT),))] == 42.5
    assert samples[("scimledger_projection_lag_seconds", (("projection", SCIM),))] == 0.0
    assert samples[("scimledger_projection_lag_events", (("projection", AUDIT),))] >= 2


def test_tokens_are_counted_by_organization_and_status(client: Client, services: Services) -> None:
    revoked = issue(services.ledger, org="beta", name="Okta")
    issue(services.ledger, org="beta", name="Entra")
    services.ledger.revoke_token(revoked.id, OPERATOR, RequestInfo(request_id="test"))
    services.tokens.catch_up()
    samples = scraped(client)
    counted = {
        labels: value for (name, labels), value in samples.items() if name == "scimledger_tokens"
    }
    assert counted == {
        (("organization", "acme"), ("status", "active")): 1.0,
        (("organization", revoked.org), ("status", "active")): 1.0,
        (("organization", revoked.org), ("status", "revoked")): 1.0,
    }


@pytest.mark.sqlite_only  # the tokens' count, read the same way, runs on both
def test_webhook_endpoints_are_counted_by_organization_and_status(
    client: Client, services: Services
) -> None:
    ledger, now = services.ledger, datetime.now(UTC)
    added = [
        ledger.add_webhook(
            "acme", f"https://hooks{n}.example.com/", types=[], allow_insecure=False,
            actor=OPERATOR, request=RequestInfo(request_id="test"), now=now,
        )[0]
        for n in range(3)
    ]  # fmt: skip
    ledger.mark_webhook_failing(added[0].id, "no 2xx for 3 days")
    ledger.change_webhook(added[1].id, "remove", OPERATOR, RequestInfo(request_id="test"))
    services.tokens.catch_up()
    samples = scraped(client)
    counted = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "scimledger_webhook_endpoints"
    }
    assert counted == {
        (("organization", "acme"), ("status", "enabled")): 1.0,
        (("organization", "acme"), ("status", "failing")): 1.0,
    }


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no pool
def test_the_connection_pool_is_sampled_when_scraped(client: Client) -> None:
    samples = scraped(client)
    # A pool of 4 connections, opening up to 16 more under load (ledger.database).
    assert samples[("scimledger_database_pool_max_connections", ())] == 20
    in_use = samples[("scimledger_database_pool_connections", (("state", "in_use"),))]
    idle = samples[("scimledger_database_pool_connections", (("state", "idle"),))]
    assert 0 <= in_use <= 20
    assert in_use + idle >= 4  # opened at once


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_on_a_port_of_their_own(tmp_path: Path, workers: str) -> None:
    """`serve --metrics-port`: /metrics there and not on the API's port; the API not there."""
    metrics_port = free_port()
    database = f"sqlite:///{tmp_path}/scimledger.db"
    options = ("--metrics-port", str(metrics_port), "--workers", workers)
    with running_server(database, *options) as server:
        api = server.base_url.removesuffix("/scim/v2")
        own = f"http://127.0.0.1:{metrics_port}"
        assert f"Metrics: {own}/metrics" in server.output()
        with urllib.request.urlopen(f"{own}/metrics", timeout=10) as answer:
            families = {f.name for f in text_string_to_metric_families(answer.read().decode())}
        assert "scimledger_http_requests" in families
        assert status_of(f"{api}/metrics") == 404
        assert status_of(f"{own}/scim/v2/ServiceProviderConfig") == 404
        assert status_of(f"{own}/console/") == 404
        for probe in ("/healthz", "/readyz"):
            assert status_of(f"{api}{probe}") == 200
            assert status_of(f"{own}{probe}") == 200


def test_the_metrics_port_must_not_be_the_api_port(tmp_path: Path) -> None:
    finished = subprocess.run(
        [SCIMLEDGER, "serve", "--port", "8123", "--metrics-port", "8123"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SCIMLEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
        check=False,
    )
    assert finished.returncode == 2
    assert "--metrics-port must differ from --port (8123)" in finished.stderr
    assert not (tmp_path / "x.db").exists()
