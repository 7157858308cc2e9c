"""python-scim's independent RFC 7643/7644 checker, scim2-tester, against the real server.

It discovers Users and Groups from the server's own /Schemas and /ResourceTypes, then
creates, reads, lists, replaces, patches (every attribute, add/replace/remove) and deletes
them. The few checks that fail today are listed, each with why, in KNOWN_FAILURES.
"""

from __future__ import annotations

from typing import Any

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from tests.e2e.conftest import Server, issue_token

pytestmark = pytest.mark.slow

# The only ERROR/CRITICAL results allowed, keyed "<resource type> <check> [<patch path>]".
# The test also fails when one of them passes again, so that this list only ever shrinks.
KNOWN_FAILURES = {
    "User check_remove_attribute active": "active cannot be removed (400): see docs/scim.md",
    "Group check_add_attribute members": "server adds the readOnly members.display",
    "Group check_replace_attribute members": "server adds the readOnly members.display",
}


def failure_key(result: CheckResult) -> str:
    parts = [result.resource_type or "-", result.title or "-"]
    if isinstance(result.data, dict) and isinstance(result.data.get("urn"), str):
        parts.append(result.data["urn"])
    return " ".join(parts)


def run_scim2_tester(server: Server) -> list[CheckResult]:
    token = issue_token(server.database)["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        return check_server(SyncSCIMClient(http))


@pytest.mark.sqlite_only  # the protocol, which the database does not change (CI time)
def test_scim2_tester_finds_no_errors_beyond_the_known_ones(server: Server) -> None:
    results = run_scim2_tester(server)
    assert {"User", "Group"} <= {result.resource_type for result in results}
    failures: dict[str, Any] = {
        failure_key(result): (result.status.name, result.reason, result.data)
        for result in results
        if result.status in (Status.ERROR, Status.CRITICAL)
    }
    unexpected = {key: failures[key] for key in failures.keys() - KNOWN_FAILURES.keys()}
    fixed = sorted(KNOWN_FAILURES.keys() - failures.keys())
    assert unexpected == {}
    assert fixed == [], "these pass now: remove them from KNOWN_FAILURES"
