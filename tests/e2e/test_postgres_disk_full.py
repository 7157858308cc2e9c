"""PostgreSQL's data disk fills up under a running server: writes answer 503 with a SCIM error,
reads go on, nothing answered 201 is lost, the ledger's hash chain still verifies, and writes
succeed again once there is room, without a restart.

The disk is real and small: the database lives in a tablespace on a tmpfs of its own
(tests/e2e/private_postgres.py, `small_disk`), which the test fills with a table of its own
until PostgreSQL answers "could not extend file ...: No space left on device" (SQLSTATE 53100).
The WAL stays on the cluster's own disk: a full WAL disk stops PostgreSQL, which is the
restart test's case (test_postgres_restart.py).
"""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.e2e.conftest import (
    Reply,
    call,
    cli_in_process,
    issue_token,
    listed_users,
    logged_users,
    start_server,
)
from tests.e2e.private_postgres import PrivatePostgres
from tests.scim import ERROR, PATCH_OP

pytestmark = pytest.mark.slow

DISK_MB = 24  # a new database takes ~8 MB of it


def fill(url: str) -> int:
    """Fills the database's disk with rows of a table of its own, from big to small, until
    not even a small one fits; the bytes written."""
    written = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE filler (b text)")
        conn.execute("ALTER TABLE filler ALTER COLUMN b SET STORAGE EXTERNAL")  # no compression
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8):
            while True:
                try:
                    conn.execute("INSERT INTO filler VALUES (repeat('x', %s))", (size,))
                except psycopg.errors.DiskFull:
                    break
                written += size
    return written


def make_room(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE filler")


def assert_unavailable(reply: Reply) -> None:
    assert reply.status == 503, reply
    assert reply.body["schemas"] == [ERROR]
    assert reply.body["detail"] == "The database is unavailable or busy; retry later"
    assert int(reply.header("Retry-After") or 0) >= 1


def test_a_full_postgres_disk_refuses_writes_with_503_and_loses_nothing(
    cluster: PrivatePostgres,
) -> None:
    url = cluster.create_database("scimledger", tablespace=cluster.small_disk("small", DISK_MB))
    token = issue_token(url)["token"]
    server = start_server(url)
    try:
        created: dict[str, str] = {}
        for n in range(5):
            reply = call(server, "POST", "/Users", token, {"userName": f"before{n}@example.com"})
            assert reply.status == 201, reply
            created[f"before{n}@example.com"] = reply.body["id"]
        first = created["before0@example.com"]

        assert fill(url) > 10 << 20
        # The event store's last pages may still hold a few events: writes succeed until the
        # next one needs a new page, then each answers 503.
        refused: list[str] = []
        for n in range(200):
            name = f"full{n}@example.com"
            reply = call(server, "POST", "/Users", token, {"userName": name})
            if reply.status == 201:
                assert not refused, f"a 201 after a 503: {reply}"
                created[name] = reply.body["id"]
                continue
            assert_unavailable(reply)
            refused.append(name)
            if len(refused) == 3:
                break
        assert len(refused) == 3, "the disk never filled up"

        patch = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        assert_unavailable(call(server, "PATCH", f"/Users/{first}", token, patch))
        assert_unavailable(call(server, "POST", "/Groups", token, {"displayName": "Full"}))
        reply = call(server, "GET", f"/Users/{first}", token)  # reads go on
        assert (reply.status, reply.body["active"]) == (200, True)

        make_room(url)
        reply = call(server, "POST", "/Users", token, {"userName": "after@example.com"})
        assert reply.status == 201, (reply, server.output())
        created["after@example.com"] = reply.body["id"]
        reply = call(server, "PATCH", f"/Users/{first}", token, patch)
        assert (reply.status, reply.body["active"]) == (200, False)

        assert logged_users(url) == created  # every 201 once; nothing refused was written
        deadline = time.monotonic() + 10
        while {u["userName"]: u["id"] for u in listed_users(server, token)} != created:
            assert time.monotonic() < deadline, "the read model did not converge on the log"
            time.sleep(0.2)
        verified = cli_in_process("ledger", "verify", database=url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

        assert server.process.poll() is None  # the same process throughout
        output = server.output()
        assert "Traceback" not in output, output
        # The log says why, and not even the path of the file it could not extend:
        assert "503 on /scim/v2/Users: OperationalError (DiskFull, SQLSTATE 53100)" in output
        assert "No space left on device" not in output
    finally:
        server.stop()
        server.log.close()
