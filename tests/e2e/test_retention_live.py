"""The retention policy on a running server (ledger.retention): a user deleted through SCIM
longer ago than the organization keeps deleted users' data is erased by the server's own
sweep, which runs as it starts and then once a minute."""

from __future__ import annotations

import time
from uuid import UUID

import pytest

from scimledger.ledger import retention
from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.errors import UserWasErased
from scimledger.ledger.users import User
from tests.e2e.conftest import call, cli_in_process, issue_token, running_server

pytestmark = pytest.mark.sqlite_only  # the sweep's path, which the database does not change


def test_a_server_erases_the_users_deleted_longer_ago_than_kept(database_url: str) -> None:
    token = issue_token(database_url)["token"]
    kept = cli_in_process(
        "settings", "set", "--org", "acme", "--erase-deleted-after", "0h", database=database_url
    )
    assert kept.returncode == 0, kept.stderr
    with running_server(database_url) as server:
        gone = call(server, "POST", "/Users", token, {"userName": "gone@acme.example"})
        stays = call(server, "POST", "/Users", token, {"userName": "stays@acme.example"})
        assert (gone.status, stays.status) == (201, 201)
        assert call(server, "DELETE", f"/Users/{gone.body['id']}", token).status == 204
    # The next start sweeps at once: the deleted user is erased, the other one kept.
    with running_server(database_url) as server:
        ledger = Ledger(DatabaseURL.parse(database_url))
        try:
            deadline = time.monotonic() + 20
            erased = None
            while erased is None and time.monotonic() < deadline:
                events = list(ledger.events.get(UUID(gone.body["id"])))
                erased = next((e for e in events if isinstance(e, User.UserErased)), None)
                time.sleep(0.1)
            assert erased is not None, server.output()
            assert erased.reason == "retention policy: deleted more than 0s ago"
            assert erased.context.actor == retention.POLICY
            with pytest.raises(UserWasErased):
                ledger.user_at(None, UUID(gone.body["id"]), erased.timestamp)
            assert call(server, "GET", f"/Users/{stays.body['id']}", token).status == 200
            assert "erased 1 users deleted longer ago than kept" in server.output()
        finally:
            ledger.close()
