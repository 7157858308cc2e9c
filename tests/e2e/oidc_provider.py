"""A real OpenID Connect provider for the console's single sign-on tests: oidc-provider-mock
(PyPI) run as a process of its own on a free port. It signs in whoever is typed into its
authorization form; a person's claims (email, email_verified) are set through its API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROGRAM = str(Path(sys.executable).parent / "oidc-provider-mock")


class Provider:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def person(self, sub: str, **claims: object) -> None:
        request = urllib.request.Request(
            f"{self.issuer}/users/{sub}",
            data=json.dumps(claims).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 204


@contextmanager
def running_provider() -> Iterator[Provider]:
    with socket.socket() as sock:  # a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tempfile.TemporaryFile("a+")  # noqa: SIM115 (appended to: see test_project_process)
    process = subprocess.Popen(
        [PROGRAM, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, text=True
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"{issuer}/.well-known/openid-configuration", timeout=1
                ):
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise AssertionError(
                        f"the OIDC provider did not start:\n{log.read()}"
                    ) from None
                time.sleep(0.1)
        yield Provider(issuer)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
