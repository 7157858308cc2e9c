"""No token value or password ever appears in logs, stored events, listings or the trail."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.tokens import parse_token
from scimledger.projections import audit
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from tests.conftest import all_stored
from tests.e2e.conftest import Server, issue_token
from tests.scim import Client

SCIMLEDGER = str(Path(sys.executable).parent / "scimledger")
PASSWORD = "Corr3ct-Horse-Battery"


def all_stored_bytes(services: Services) -> bytes:
    return all_stored(services.ledger)


def test_secrets_stay_out_of_logs_events_lists_and_the_trail(
    client: Client,
    services: Services,
    token: IssuedToken,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = parse_token(token.token).secret
    caplog.set_level(logging.DEBUG)
    user = client.post(
        "/scim/v2/Users", json={"userName": "bjensen@example.com", "password": PASSWORD}
    ).json()
    client.put(
        f"/scim/v2/Users/{user['id']}",
        json={"userName": "bjensen@example.com", "password": PASSWORD + "2"},
    )
    client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token.token}x"})  # 401
    client.get("/scim/v2/Users", headers={"Authorization": token.token})
    Runner(services.ledger, audit.AuditProjection()).run_once()
    with SQL(services.ledger).transaction(commit=False) as cursor:
        trail = str(audit.page(cursor, audit.AuditQuery(), 1000))
    listed = subprocess.run(
        [
            SCIMLEDGER,
            "tokens",
            "list",
            "--format",
            "jsonl",
            "--database",
            services.ledger.database.url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    for place, text in (
        ("logs", caplog.text),
        ("stored events", all_stored_bytes(services).decode(errors="replace")),
        ("audit trail", trail),
        ("tokens list", listed.stdout + listed.stderr),
    ):
        assert secret not in text, place
        assert PASSWORD not in text, place


def test_the_servers_own_output_holds_no_token(server: Server) -> None:
    issued = issue_token(server.database)
    for auth in (issued["token"], issued["token"] + "x", "Bearer " + issued["token"]):
        request = urllib.request.Request(
            server.base_url + "/Users", headers={"Authorization": auth}
        )
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10).read()
    server.stop()
    output = server.output()
    assert "GET /scim/v2/Users" in output  # the access log was captured
    assert parse_token(issued["token"]).secret not in output
