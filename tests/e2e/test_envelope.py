"""Every response carries a request id and the security headers; the log is JSON lines that
name routes and ids, never a URL, an attribute or a secret (http/envelope.py, scripts/logs.py).
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from scimledger.http.services import Services
from scimledger.ledger.tokens import parse_token
from scimledger.projections import audit
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from tests.e2e.conftest import Server, call, issue_token
from tests.scim import Client

# Answered before any storage is read or written: the same on both databases. The tests that
# write nothing (refused requests included) share one client (tests/conftest.py).
pytestmark = pytest.mark.sqlite_only

SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "strict-transport-security": "max-age=31536000",
}
FRESH_ID = re.compile(r"^[0-9a-f]{32}$")

# (method, path, body, authenticated, expected status): every kind of outcome.
EXCHANGES = [
    ("GET", "/scim/v2/Users", None, True, 200),
    ("GET", "/scim/v2/ServiceProviderConfig", None, False, 200),
    ("GET", "/scim/v2/Users", None, False, 401),
    ("GET", "/scim/v2/Users/5b0c9d5e-0000-4000-8000-000000000000", None, True, 404),
    ("GET", "/no/such/route", None, True, 404),
    ("DELETE", "/scim/v2/ServiceProviderConfig", None, True, 405),
    ("POST", "/scim/v2/Users", {"userName": ""}, True, 400),
    ("POST", "/scim/v2/Users", {"userName": "x" * (1024 * 1024 + 1)}, True, 413),
    ("GET", "/admin/v1/tokens", None, True, 403),
]


@pytest.mark.parametrize("exchange", EXCHANGES, ids=lambda e: f"{e[0]} {e[1][:40]} {e[4]}")
def test_every_response_has_a_request_id_and_the_security_headers(
    module_client: Client,
    exchange: tuple[str, str, dict[str, Any] | None, bool, int],
) -> None:
    method, path, body, authenticated, status = exchange
    headers = {} if authenticated else {"Authorization": ""}
    response = module_client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert FRESH_ID.match(response.headers["x-request-id"])
    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert "server" not in response.headers


def test_two_requests_get_two_ids(module_client: Client) -> None:
    first = module_client.get("/scim/v2/Users").headers["x-request-id"]
    second = module_client.get("/scim/v2/Users").headers["x-request-id"]
    assert first != second


def test_a_clients_request_id_is_returned_and_recorded_on_its_events(
    client: Client,
    services: Services,
) -> None:
    created = client.post(
        "/scim/v2/Users",
        json={"userName": "bjensen@example.com"},
        headers={"X-Request-Id": "okta-7f3a:42.b_c"},
    )
    assert created.status_code == 201
    assert created.headers["x-request-id"] == "okta-7f3a:42.b_c"
    Runner(services.ledger, audit.AuditProjection()).run_once()
    with SQL(services.ledger).transaction(commit=False) as cursor:
        entries = audit.page(cursor, audit.AuditQuery(), 100)
    recorded = {
        entry["request_id"] for entry in entries if entry["subject_id"] == created.json()["id"]
    }
    assert recorded == {"okta-7f3a:42.b_c"}


@pytest.mark.parametrize(
    "given",
    ["", "has space", "x" * 129, "semi;colon", 'quote"d', "é-accent", "new\nline"],
)
def test_an_unusable_request_id_is_replaced_by_a_fresh_one(
    module_client: Client,
    given: str,
) -> None:
    response = module_client.get(
        "/scim/v2/Users",
        headers=[(b"X-Request-Id", given.encode("utf-8"))],
    )
    assert response.status_code == 200
    assert FRESH_ID.match(response.headers["x-request-id"])


def test_the_server_logs_json_lines_with_ids_and_no_personal_data(server: Server) -> None:
    issued = issue_token(server.database)
    email = "personal.data@example.com"
    created = call(
        server,
        "POST",
        "/Users",
        issued["token"],
        {"userName": email},
        headers={"X-Request-Id": "create-1"},
        timeout=10,
    )
    assert created.status == 201
    found = call(
        server,
        "GET",
        f'/Users?filter=userName%20eq%20"{email}"',
        issued["token"],
        headers={"X-Request-Id": "find-1"},
        timeout=10,
    )
    assert (found.status, found.body["totalResults"]) == (200, 1)
    assert found.header("X-Request-Id") == "find-1"
    missing = call(server, "GET", f"/Users/{email}", issued["token"], timeout=10)
    assert missing.status == 404
    assert server.stop() == 0
    output = server.output()

    lines = [line for line in output.splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    access = [record for record in records if record["logger"] == "scimledger.access"]
    by_id = {record.get("request_id"): record for record in access}
    found_line = by_id["find-1"]
    assert {key: found_line[key] for key in ("method", "route", "status", "token_id")} == {
        "method": "GET",
        "route": "/scim/v2/Users",
        "status": 200,
        "token_id": issued["id"],
    }
    assert found_line["message"] == "GET /scim/v2/Users 200"
    assert by_id["create-1"]["status"] == 201
    assert [record["route"] for record in access if record["status"] == 404] == [
        "/scim/v2/Users/{user_id}"
    ]
    assert not any(record["logger"] == "uvicorn.access" for record in records)
    # Ids only: neither the email (in a filter, in a path) nor the token's secret.
    assert email not in output
    assert "personal.data" not in output
    assert parse_token(issued["token"]).secret not in output


def test_a_real_server_sends_no_server_banner(server: Server) -> None:
    request = urllib.request.Request(server.base_url + "/ServiceProviderConfig")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert "server" not in {name.lower() for name in response.headers}
        assert response.headers["x-request-id"]
