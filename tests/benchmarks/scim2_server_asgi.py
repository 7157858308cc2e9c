"""scim2-server (PyPI `scim2-server`, python-scim's SCIM server over an in-memory storage) as
compare.py runs it: the package's own ASGI application (`ASGIApplication`) over its
`AsyncInMemoryStorage`, with the RFC 7643 schemas and resource types of its `scim2-server`
command (`load_default_provider()`: core User and Group), under uvicorn like scimledger.
Requests need `Authorization: Bearer $SCIM2_SERVER_TOKEN`, checked as the package's
`BearerTokenApplication` (its command's `--bearer-token`) checks it. Base URL:
http://HOST:PORT/v2. Nothing is persisted.

Install it with `.venv/bin/pip install -e '.[bench]'` (a benchmark-only dependency).
Run (compare.py does this): SCIM2_SERVER_TOKEN=secret .venv/bin/python -m \\
    tests.benchmarks.scim2_server_asgi PORT
(or: .venv/bin/uvicorn tests.benchmarks.scim2_server_asgi:app --port PORT --no-access-log).
"""

from __future__ import annotations

import os
import sys

# Not installed with '.[dev]': these lines type-check whether or not the `bench` extra is.
from scim2_models import UnauthorizedException
from scim2_server.applications.asgi import (  # type: ignore[import-not-found,unused-ignore]
    ASGIApplication,
)
from scim2_server.memory import AsyncInMemoryStorage  # type: ignore[import-not-found,unused-ignore]
from scim2_server.requests import ScimRequest  # type: ignore[import-not-found,unused-ignore]
from scim2_server.utils import load_default_provider  # type: ignore[import-not-found,unused-ignore]


class BearerTokenASGIApplication(ASGIApplication):  # type: ignore[misc,unused-ignore]
    """The ASGI application, accepting one static bearer token."""

    def __init__(self, token: str) -> None:
        super().__init__(AsyncInMemoryStorage(), load_default_provider())
        self.token = token

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != self.token:
            raise UnauthorizedException


app = BearerTokenASGIApplication(os.environ["SCIM2_SERVER_TOKEN"])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=False,
        server_header=False,
        log_level="warning",
    )
