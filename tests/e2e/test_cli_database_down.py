"""The admin commands and the server, started while the database is out of reach: one clear
line naming the database (never its password) and the cause, exit status 1, no traceback."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import SCIMLEDGER, free_port

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "command",
    [
        ["tokens", "list", "--org", "acme"],
        ["tokens", "issue", "--org", "acme", "--name", "Okta", "--expires", "never"],
        ["audit", "list", "--org", "acme"],
        ["serve", "--port", "0"],
    ],
)
def test_a_command_on_a_database_out_of_reach_says_so_in_one_line(command: list[str]) -> None:
    port = free_port()  # nothing listens there
    nowhere = f"postgresql://scim:s3cret-pw@127.0.0.1:{port}/scimledger"
    done = subprocess.run(
        [SCIMLEDGER, *command, "--database", nowhere],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if '"level"' not in line]  # serve's log
    assert lines == [
        f"scimledger: error: the database postgresql://scim:***@127.0.0.1:{port}/scimledger is"
        f' unavailable: connection failed: connection to server at "127.0.0.1", port {port}'
        " failed: Connection refused"
    ], done.stderr
    assert "s3cret-pw" not in done.stderr
    assert "Traceback" not in done.stderr
