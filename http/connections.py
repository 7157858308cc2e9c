"""The HTTP/1.1 connection as uvicorn runs it (its httptools protocol), with the limits it
lacks: the size of a request's headers, and the time a client may take to send them and its
body. Without them a client held 10 MiB of headers in memory per request, and connections
sending a byte at a time stayed open for as long as they liked.

- A header line (name and value) of more than `Limits.header_line` bytes, or more than
  `Limits.headers` bytes before the headers end: 431, and the connection closes. A request
  target longer than a header line: 414.
- Headers not complete `Limits.header_seconds` after a connection opens or a request begins:
  408, closed. A body not complete `Limits.body_seconds` after its headers: 408, closed.
- How many connections a server holds at once is uvicorn's `limit_concurrency` (503 beyond),
  set by `serve --max-connections`.

Answers are SCIM errors; nothing reaches the application.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

MAX_CONNECTIONS = 1000  # connections one server process holds at once; 503 beyond


@dataclass(frozen=True)
class Limits:
    header_line: int = 16 * 1024
    headers: int = 64 * 1024
    header_seconds: float = 10.0
    body_seconds: float = 30.0


_REASONS = {408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def protocol(limits: Limits) -> type[asyncio.Protocol]:
    """uvicorn's `http` protocol class, enforcing `limits` (uvicorn is imported here: only
    `serve` needs it)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

    class Bounded(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_bytes = 0  # received while a request's headers are incomplete
            self._parsed = 0  # the size of the request's headers parsed so far
            self._in_headers = True  # until a request's headers are complete
            self._refusal: int | None = None
            self._deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(limits.header_seconds)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            counted = self._in_headers
            super().data_received(data)
            if counted and self._in_headers:
                self._header_bytes += len(data)
                if self._header_bytes > limits.headers:
                    self._refusal = self._refusal or 431
            if self._refusal is not None and not self.transport.is_closing():
                self._refuse(self._refusal)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._parsed = 0
            if self._deadline is None:  # a new request on a kept-alive connection
                self._arm(limits.header_seconds)

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if len(self.url) > limits.header_line:
                self._refusal = self._refusal or 414

        def on_header(self, name: bytes, value: bytes) -> None:
            line = len(name) + len(value)
            self._parsed += line + 4  # ": " and CRLF
            if line > limits.header_line or self._parsed > limits.headers:
                self._refusal = self._refusal or 431
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._header_bytes = 0
            if self._refusal is None:
                self._arm(limits.body_seconds)
                super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if self._refusal is None:
                super().on_body(body)

        def on_message_complete(self) -> None:
            self._disarm()
            if self._refusal is None:
                super().on_message_complete()

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._timed_out)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _timed_out(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True  # the application's receive() ends
                self.cycle.message_event.set()
                if self.cycle.response_started:
                    self.transport.close()
                    return
            self._refuse(408)

        def _refuse(self, status: int) -> None:
            detail = {
                408: "The request was not received in time",
                414: f"The request target is longer than {limits.header_line} bytes",
                431: f"Request header fields too large: at most {limits.header_line} bytes "
                f"a line and {limits.headers} in all",
            }[status]
            # These load Litestar, which only a server needs: the CLI reads this module's
            # defaults.
            from scimledger.http.errors import error_body  # noqa: PLC0415
            from scimledger.http.responses import SCIM_MEDIA_TYPE  # noqa: PLC0415

            body = json.dumps(error_body(status, detail)).encode()
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                f"content-type: {SCIM_MEDIA_TYPE}\r\n"
                f"content-length: {len(body)}\r\n"
                "cache-control: no-store\r\n"
                "x-content-type-options: nosniff\r\n"
                "connection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
            self.transport.close()
            self._disarm()

    return Bounded
