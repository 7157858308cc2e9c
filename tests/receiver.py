"""A webhook receiver for the tests: a real HTTP server on a free port of 127.0.0.1, which
records every post and answers as its script says."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.perf_counter)  # when it arrived

    @property
    def event(self) -> dict[str, Any]:
        decoded: dict[str, Any] = msgspec.json.decode(self.body)
        return decoded


@dataclass
class Receiver:
    """Answers each post with the next of `script` (a status; `hang` to answer after 30 s;
    `redirect` for a 307 to another path; `hostile` for a status line that holds a terminal's
    escape and markup), then with `otherwise`."""

    url: str = ""
    script: list[int | str] = field(default_factory=list)
    otherwise: int = 200
    delay: float = 0.0  # seconds before each answer
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int | str:
        with self.lock:
            return self.script.pop(0) if self.script else self.otherwise

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [post.event for post in self.received]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            assert time.monotonic() < deadline, f"{len(self.received)} posts, not {count}"
            time.sleep(0.01)


@contextmanager
def receiving(script: list[int | str] | None = None, otherwise: int = 200) -> Iterator[Receiver]:
    receiver = Receiver(script=list(script or []), otherwise=otherwise)

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # as a production server's: no 40 ms per answer

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
            answer = receiver.answer()
            time.sleep(receiver.delay)
            if answer == "hang":
                time.sleep(30)
                answer = 200
            if answer == "hostile":  # a status line no parser accepts, with ESC and markup
                self.wfile.write(b"HTTP/1.1 2\x1b[2J<script>x</script>00 OK\r\n\r\n")
                self.close_connection = True
                return
            if answer == "redirect":
                self.send_response(307)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(int(answer))
            payload = b"x" * 100_000  # more than a deliverer reads of an answer
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/scim"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
