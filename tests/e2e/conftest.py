"""The real server process, as tests start it: `scimledger serve` on a free port."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import SHARED

SCIMLEDGER = str(Path(sys.executable).parent / "scimledger")
OKTA = SHARED / "conformance" / "okta"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCIMLEDGER, *args, "--database", database],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Server:
    process: subprocess.Popen[str]
    base_url: str
    database: str
    log: IO[str]  # the server's output: a file, so a long run can never block on a pipe

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)


def start_server(database: str, *options: str) -> Server:
    """`scimledger serve` on a free port, with any further `options`; waits until it serves."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by the fixture)
    process = subprocess.Popen(
        [SCIMLEDGER, "serve", "--port", str(port), "--database", database, *options],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Server(process, f"http://127.0.0.1:{port}/scim/v2", database, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{running.output()}")
        try:
            with urllib.request.urlopen(f"{running.base_url}/ServiceProviderConfig", timeout=1):
                return running
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server did not start within 30 s:\n{running.output()}")


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    running = start_server(database_url)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()
        running.log.close()


def issue_token(database: str, org: str = "acme") -> dict[str, Any]:
    result = cli(
        "tokens",
        "issue",
        "--org",
        org,
        "--name",
        "Okta",
        "--expires",
        "never",
        "--json",
        database=database,
    )
    assert result.returncode == 0, result.stderr
    issued: dict[str, Any] = json.loads(result.stdout)
    return issued
