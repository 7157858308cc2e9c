"""GET /metrics: Prometheus's text format, read with prometheus-client's own parser."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from scimledger.http.services import Services
from scimledger.projections.registry import PROJECTIONS
from tests.scim import Client


def scraped(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics", headers={"Authorization": ""})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def requests(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], **labels: str) -> float:
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


def test_every_metric_the_grafana_dashboard_queries_is_exported(client: Client) -> None:
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
    exported = {name for name, _ in scraped(client)}
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, queried - exported
