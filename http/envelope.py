"""What every HTTP exchange gets, whatever its route or outcome: a request id, security
headers, and one access-log line.

- The request id is the client's `X-Request-Id` when it is a sane token (letters, digits and
  `._:-`, at most 128), else a new one. It is returned in `X-Request-Id`, recorded on the
  request's events (RequestInfo), and put on every log line written while the request runs
  (`REQUEST_ID`, a context variable: worker threads inherit it).
- Security headers: responses are never cached, sniffed, framed or allowed to load anything,
  unless a response sets its own policy or caching (the console's pages and static files);
  no `Server` banner (uvicorn's is switched off in scripts/serve.py).
- The access line holds ids only: method, the route's template (`/scim/v2/Users/{user_id}`),
  never the raw path or query (a filter or a mistyped URL can hold someone's email), status,
  duration, the token id that authenticated, the client address and the request id. Health
  probes' and metrics scrapes' successes are logged at DEBUG only. Each request is counted
  in the metrics too (http/metrics.py).

It wraps Litestar's own handler, inside the app, so that it sees every request: unrouted ones
(404) and failures included, under the real server and under the test client alike.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from scimledger.http import metrics
from scimledger.ledger.context import REQUEST_ID

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Where, in the ASGI scope, the envelope keeps what it learns during the request.
_KEY = "scimledger.envelope"

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000"),
)

access_log = logging.getLogger("scimledger.access")
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})  # successes logged at DEBUG


class _Exchange:
    __slots__ = ("request_id", "token_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.token_id: str | None = None


def request_id(scope: Scope) -> str:
    """This request's id (see the module's docstring)."""
    exchange: _Exchange | None = scope.get(_KEY)  # type: ignore[assignment]
    return exchange.request_id if exchange is not None else uuid.uuid4().hex


def authenticated_as(scope: Scope, token_id: str) -> None:
    """Records which token the request authenticated with, for its access line."""
    exchange: _Exchange | None = scope.get(_KEY)  # type: ignore[assignment]
    if exchange is not None:
        exchange.token_id = token_id


def _given_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            try:
                given = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return given if _VALID_REQUEST_ID.match(given) else None
    return None


def install(app: Litestar) -> Litestar:
    """Wraps `app`'s handler in the envelope; returns `app`."""
    app.asgi_handler = _envelope(app.asgi_handler)
    return app


def _envelope(inner: ASGIApp) -> ASGIApp:
    async def envelope(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await inner(scope, receive, send)
            return
        http_scope = scope
        exchange = _Exchange(_given_request_id(scope) or uuid.uuid4().hex)
        scope[_KEY] = exchange  # type: ignore[literal-required]
        reset = REQUEST_ID.set(exchange.request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() != b"server"
                ]
                headers.append((b"x-request-id", exchange.request_id.encode("ascii")))
                given = {name.lower() for name, _ in headers}
                # A response may set its own policy or caching (the console's pages, its
                # static files); the rest are kept to the strictest.
                headers.extend(pair for pair in SECURITY_HEADERS if pair[0] not in given)
                message["headers"] = headers
            await send(message)

        try:
            await inner(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            metrics.observe(http_scope.get("path_template"), http_scope["method"], status, seconds)
            _log_access(http_scope, exchange, status, seconds)
            REQUEST_ID.reset(reset)

    return envelope


def _log_access(scope: HTTPScope, exchange: _Exchange, status: int, seconds: float) -> None:
    # A health probe's success, every few seconds from each load balancer, is not news.
    quiet = status == 200 and scope.get("path_template") in PROBES
    level = logging.DEBUG if quiet else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    client: Any = scope.get("client")
    access_log.log(
        level,
        "%s %s %s",
        scope["method"],
        scope.get("path_template") or "(no route)",
        status,
        extra={
            "method": scope["method"],
            "route": scope.get("path_template"),
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "token_id": exchange.token_id,
            "client": client[0] if client else None,
        },
    )
