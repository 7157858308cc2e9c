"""The real server process, driven as an operator and as Okta would drive it.

Starts `scimledger serve` on a free port, issues a token with the CLI, and runs Okta's own
SCIM 2.0 spec test and the replay of Okta's documented request sequences against it. The
tests that only send requests share one server per database (`shared_server`), each in an
organization of its own (`org`); those that stop the server start their own (`server`).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import skip_or_fail
from tests.e2e.conftest import (
    OKTA,
    Server,
    call,
    cli,
    free_port,
    issue_token,
    start_server,
)

pytestmark = pytest.mark.slow


FULL_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "first.user@example.com",
    "name": {"givenName": "First", "familyName": "User"},
    "emails": [{"value": "first.user@example.com", "type": "work", "primary": True}],
    "displayName": "First User",
    "active": True,
}


def require_shared() -> None:
    if not OKTA.is_dir():
        skip_or_fail(f"Okta conformance files not found at {OKTA} (../shared is not in a clone)")


def run_conformance(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(OKTA / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_okta_spec_test_passes(shared_server: Server, org: str) -> None:
    server = shared_server
    require_shared()
    token = issue_token(server.database, org)["token"]
    created = call(server, "POST", "/Users", token, FULL_USER)
    assert created.status == 201
    result = run_conformance(
        "run_okta_runscope.py",
        str(OKTA / "Okta-SCIM-20-SPEC-Test.json"),
        "--base-url",
        server.base_url,
        "--auth",
        f"Bearer {token}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: ALL PASSED" in result.stdout


def test_okta_flow_replay_passes_with_users_and_groups(shared_server: Server, org: str) -> None:
    server = shared_server
    require_shared()
    token = issue_token(server.database, org)["token"]
    result = run_conformance(
        "okta_flow_replay.py",
        "--base-url",
        server.base_url,
        "--auth",
        f"Bearer {token}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: ALL PASSED" in result.stdout


def test_token_issued_while_serving_works_at_once(shared_server: Server, org: str) -> None:
    server = shared_server
    token = issue_token(server.database, org)["token"]
    listed = call(server, "GET", "/Users?startIndex=1&count=2", token)
    assert (listed.status, listed.body["totalResults"]) == (200, 0)


def test_tokens_issue_prints_only_the_token_on_stdout(database_url: str) -> None:
    result = cli(
        "tokens",
        "issue",
        "--org",
        "acme",
        "--name",
        "Okta",
        "--expires",
        "30d",
        database=database_url,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"scl_[0-9a-f]{32}_[A-Za-z0-9_-]{43}\n", result.stdout)
    assert "shown only this once" in result.stderr


def test_tokens_issue_json_prints_id_name_org_token_expiry(database_url: str) -> None:
    result = cli(
        "tokens",
        "issue",
        "--org",
        "Acme",
        "--name",
        "Okta",
        "--expires",
        "2099-01-31",
        "--json",
        database=database_url,
    )
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert sorted(issued) == ["expires_at", "id", "name", "org", "token"]
    assert issued["org"] == "acme"
    assert issued["name"] == "Okta"
    assert issued["expires_at"] == "2099-01-31T00:00:00+00:00"
    assert issued["token"].startswith("scl_" + issued["id"].replace("-", "") + "_")


def test_tokens_issue_rejects_a_past_expiry(database_url: str) -> None:
    result = cli(
        "tokens",
        "issue",
        "--org",
        "acme",
        "--name",
        "Okta",
        "--expires",
        "2001-01-01",
        database=database_url,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "in the past" in result.stderr


def test_revoked_token_is_rejected_by_a_running_server(shared_server: Server, org: str) -> None:
    server = shared_server
    issued = issue_token(server.database, org)
    revoked = cli("tokens", "revoke", issued["id"], database=server.database)
    assert revoked.returncode == 0, revoked.stderr
    refused = call(server, "GET", "/Users", issued["token"])
    assert refused.status == 401
    assert refused.body["status"] == "401"


def test_concurrent_creates_of_one_user_name_give_one_201_and_the_rest_409(
    shared_server: Server, org: str
) -> None:
    server = shared_server
    token = issue_token(server.database, org)["token"]
    body = {**FULL_USER, "userName": "race@example.com"}

    def create(_: int) -> int:
        status = call(server, "POST", "/Users", token, body).status
        assert status is not None, "no answer"
        return status

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(create, range(10)))
    assert sorted(statuses) == [201] + [409] * 9
    listed = call(server, "GET", '/Users?filter=userName%20eq%20"race@example.com"', token)
    assert (listed.status, listed.body["totalResults"]) == (200, 1)


@pytest.mark.sqlite_only  # the process's handling, whatever the database (CI time)
def test_server_stops_cleanly_on_sigterm(server: Server) -> None:
    assert server.stop(signal.SIGTERM) == 0


@pytest.mark.sqlite_only  # the process's handling, whatever the database (CI time)
def test_server_stops_cleanly_on_sigint(server: Server) -> None:
    assert server.stop(signal.SIGINT) == 0


# The server's start, with the moment between its own signal handlers and uvicorn's (when
# uvicorn starts its event loop) held open for a second, so that a signal lands in it.
LATE_UVICORN = """
import asyncio, sys, uvicorn
from scimledger.scripts.cli import main
serve = uvicorn.Server.serve
async def late(self, sockets=None):
    print("starting uvicorn", flush=True)
    await asyncio.sleep(1.0)
    await serve(self, sockets)
uvicorn.Server.serve = late
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.sqlite_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_before_uvicorn_listens_for_it_still_stops_the_server(
    database_url: str, sig: signal.Signals
) -> None:
    command = ["serve", "--port", str(free_port()), "--database", database_url]
    process = subprocess.Popen(
        [sys.executable, "-c", LATE_UVICORN, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line == "starting uvicorn\n":
                break
        process.send_signal(sig)
        output, _ = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert f"stopped on {sig.name}" in output


def test_users_survive_a_restart(server: Server) -> None:
    token = issue_token(server.database)["token"]
    created = call(server, "POST", "/Users", token, FULL_USER)
    assert created.status == 201
    assert server.stop() == 0
    restarted = start_server(server.database)
    try:
        fetched = call(restarted, "GET", f"/Users/{created.body['id']}", token)
        assert fetched.status == 200
        assert fetched.body["userName"] == FULL_USER["userName"]
        assert fetched.body["meta"]["version"] == created.body["meta"]["version"]
    finally:
        restarted.stop()
        restarted.log.close()
