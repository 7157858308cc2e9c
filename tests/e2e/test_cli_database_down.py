"""The admin commands and the server, started while the database is out of reach or cannot
be opened: one clear line naming the database (never its password) and the cause, exit
status 1, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, free_port

pytestmark = pytest.mark.slow

COMMANDS = [
    ["tokens", "list", "--org", "acme"],
    ["tokens", "issue", "--org", "acme", "--name", "Okta", "--expires", "never"],
    ["audit", "list", "--org", "acme"],
    ["serve", "--port", "0"],
]


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What it printed on stderr but for serve's JSON log lines."""
    return [line for line in done.stderr.splitlines() if '"level"' not in line]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_on_a_database_out_of_reach_says_so_in_one_line(command: list[str]) -> None:
    port = free_port()  # nothing listens there
    nowhere = f"postgresql://scim:s3cret-pw@127.0.0.1:{port}/scimledger"
    done = cli(*command, database=nowhere)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert error_lines(done) == [
        f"scimledger: error: the database postgresql://scim:***@127.0.0.1:{port}/scimledger is"
        f' unavailable: connection failed: connection to server at "127.0.0.1", port {port}'
        " failed: Connection refused"
    ], done.stderr
    assert "s3cret-pw" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_on_a_sqlite_file_that_is_not_a_database_says_so(
    command: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "scimledger.db"
    path.write_text("not a database\n")
    done = cli(*command, database=f"sqlite:///{path}")
    assert done.returncode == 1, done.stderr
    assert error_lines(done) == [
        f"scimledger: error: the database sqlite:///{path} is unavailable: file is not a database"
    ], done.stderr


def test_a_sqlite_database_whose_directory_cannot_be_made_says_so(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    where = tmp_path / "file" / "scimledger.db"  # its directory is a file
    done = cli("tokens", "list", "--org", "acme", database=f"sqlite:///{where}")
    assert done.returncode == 1, done.stderr
    assert error_lines(done) == [
        f"scimledger: error: the database sqlite:///{where} is unavailable: cannot create the"
        f" directory {where.parent}: File exists"
    ], done.stderr
