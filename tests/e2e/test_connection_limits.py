"""The real server process against clients that hold it: oversized headers, requests sent a
byte at a time, more connections than it takes (http/connections.py)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Server, running_server
from tests.scim import ERROR


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (per xdist worker): the tests only connect to it, one at a
    time, and each closes every connection it opened before it ends."""
    with running_server(
        f"sqlite:///{tmp_path_factory.mktemp('limits')}/limits.db",
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--max-connections",
        "40",
    ) as running:
        yield running


def connect(server: Server) -> socket.socket:
    port = int(server.base_url.split(":")[2].split("/")[0])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body the server sent before it closed the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split(" ")[1]), headers, body


def send_all(sock: socket.socket, data: bytes) -> None:
    """Sends what the server takes; it may close before all is sent."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def request(target: str = "/scim/v2/ServiceProviderConfig", headers: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: scim.test\r\n{headers}\r\n".encode()


def test_ten_mebibytes_of_headers_answer_431_and_close(server: Server) -> None:
    with connect(server) as sock:
        send_all(sock, request(headers="X-Big: " + "a" * (10 * 1024 * 1024) + "\r\n"))
        status, headers, body = answer(sock)
    assert (status, headers["content-type"], headers["connection"]) == (
        431,
        "application/scim+json",
        "close",
    )
    assert json.loads(body) == {
        "schemas": [ERROR],
        "status": "431",
        "detail": "Request header fields too large: at most 16384 bytes a line and 65536 in all",
    }


def test_a_header_line_over_16_kib_answers_431_and_one_under_is_served(server: Server) -> None:
    with connect(server) as sock:
        send_all(sock, request(headers="X-Long: " + "a" * (16 * 1024) + "\r\n"))
        assert answer(sock)[0] == 431
    with connect(server) as sock:
        sock.sendall(
            request(headers="X-Long: " + "a" * (16 * 1024 - 10) + "\r\nConnection: close\r\n")
        )
        assert answer(sock)[0] == 200


def test_many_headers_over_64_kib_in_all_answer_431(server: Server) -> None:
    many = "".join(f"X-H{n}: {'a' * 1000}\r\n" for n in range(70))
    with connect(server) as sock:
        send_all(sock, request(headers=many))
        assert answer(sock)[0] == 431


def test_a_request_target_over_16_kib_answers_414(server: Server) -> None:
    with connect(server) as sock:
        send_all(sock, request(target="/scim/v2/Users?filter=" + "a" * (17 * 1024)))
        assert answer(sock)[0] == 414


def test_connections_sending_a_byte_at_a_time_are_closed_with_408(server: Server) -> None:
    started = time.monotonic()
    slow = [connect(server) for _ in range(30)]
    data = request()
    sent = 0
    closed: set[int] = set()
    while len(closed) < len(slow) and time.monotonic() - started < 10:
        for n, sock in enumerate(slow):
            if n not in closed:
                try:
                    sock.sendall(data[sent : sent + 1])
                except OSError:
                    closed.add(n)
        sent = min(sent + 1, len(data) - 3)  # never the end of the headers
        time.sleep(0.1)
    statuses = []
    for sock in slow:
        sock.settimeout(5)
        try:
            statuses.append(answer(sock)[0])
        except OSError:
            statuses.append(0)  # reset after the 408 was written: closed all the same
        sock.close()
    assert time.monotonic() - started < 10
    assert set(statuses) <= {408, 0}
    assert statuses.count(408) >= 1


def test_an_idle_connection_is_closed_with_408(server: Server) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        assert answer(sock)[0] == 408
        assert 0.9 < time.monotonic() - started < 5


def test_a_body_sent_too_slowly_is_closed_with_408_and_creates_nothing(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: scim.test\r\n"
            b"Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{"
        )
        status, _, _ = answer(sock)
    assert status == 408


def test_beyond_max_connections_answers_503(server: Server) -> None:
    held = [connect(server) for _ in range(40)]
    try:
        time.sleep(0.2)
        with connect(server) as sock:
            sock.sendall(request(headers="Connection: close\r\n"))
            assert answer(sock)[0] == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    with connect(server) as sock:
        sock.sendall(request(headers="Connection: close\r\n"))
        assert answer(sock)[0] == 200
