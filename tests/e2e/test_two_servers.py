"""Two server processes on one PostgreSQL database: revocation reaches both within a second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from tests.conftest import drop_postgres_database, new_postgres_database
from tests.e2e.conftest import Server, call, cli, issue_token, running_server

pytestmark = pytest.mark.slow

WRITERS = 16
PER_WRITER = 10


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[Server, Server]]:
    """Two servers on one database for the module (per xdist worker), started side by side:
    the tests only send them requests, each in an organization of its own (`org`)."""
    url = new_postgres_database()
    try:
        with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
            starting = [pool.submit(stack.enter_context, running_server(url)) for _ in "12"]
            first, second = (started.result() for started in starting)
            yield first, second
    finally:
        drop_postgres_database(url)


def status(server: Server, token: str) -> int | None:
    return call(server, "GET", "/Users?count=1", token, timeout=10).status


def test_revocation_takes_effect_on_every_server_within_one_second(
    two_servers: tuple[Server, Server], org: str
) -> None:
    first, second = two_servers
    issued = issue_token(first.database, org)
    assert [status(first, issued["token"]), status(second, issued["token"])] == [200, 200]
    revoked = cli("tokens", "revoke", issued["id"], database=first.database)
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 1.0
    statuses = [status(first, issued["token"]), status(second, issued["token"])]
    assert time.monotonic() <= deadline
    assert statuses == [401, 401]


def test_a_user_created_on_one_server_is_read_on_the_other(
    two_servers: tuple[Server, Server], org: str
) -> None:
    first, second = two_servers
    token = issue_token(first.database, org)["token"]
    created = call(first, "POST", "/Users", token, {"userName": "shared@example.com"}, timeout=10)
    assert created.status == 201
    # The second server's read model follows by polling: within its 0.2 s interval.
    path = "/Users?filter=userName%20eq%20%22shared@example.com%22"
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        found = call(second, "GET", path, token, timeout=10)
        assert found.status == 200, found
        if found.body["totalResults"] == 1:
            return
        time.sleep(0.05)
    raise AssertionError("the second server never saw the user")


def test_concurrent_patches_of_one_group_through_two_servers_all_succeed(
    two_servers: tuple[Server, Server], org: str
) -> None:
    """Within a process, writers to one resource take turns; between processes, a write that
    finds the resource changed is re-run on the new version. 16 writers, half through each
    server, each adding a member of its own to one group: every PATCH 200, no member lost."""
    token = issue_token(two_servers[0].database, org)["token"]
    group = call(two_servers[0], "POST", "/Groups", token, {"displayName": "Shared"})
    assert group.status == 201, group
    users = []
    for n in range(WRITERS * PER_WRITER):
        user = call(two_servers[n % 2], "POST", "/Users", token, {"userName": f"m{n}@example.com"})
        assert user.status == 201, user
        users.append(user.body["id"])

    def write(writer: int) -> list[int | None]:
        server = two_servers[writer % 2]
        statuses = []
        for n in range(PER_WRITER):
            member = users[writer * PER_WRITER + n]
            patch = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
            }
            reply = call(server, "PATCH", f"/Groups/{group.body['id']}", token, patch)
            statuses.append(reply.status)
        return statuses

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        statuses = [status for answers in pool.map(write, range(WRITERS)) for status in answers]
    assert statuses == [200] * (WRITERS * PER_WRITER)
    final = call(two_servers[1], "GET", f"/Groups/{group.body['id']}", token)
    assert sorted(member["value"] for member in final.body["members"]) == sorted(users)
    assert final.body["meta"]["version"] == f'W/"{1 + WRITERS * PER_WRITER}"'
