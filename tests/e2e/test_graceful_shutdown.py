"""SIGTERM in the middle of a create load, as a deploy or a restart sends it: the server
stops taking requests, finishes the ones it took, answers them and exits 0.

Eight threads POST users as fast as the server answers, each until a request of its own gets
no answer. Then, on a server started again on the same database:

- every answer was 201: a request the server took is finished and answered, never a 5xx;
- every user answered 201 is there exactly once, under the id it was given;
- a request that got no answer (the server had stopped listening) wrote nothing: a graceful
  stop never leaves a write done but unanswered.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.e2e.conftest import Reply, Server, call, issue_token, logged_users, start_server
from tests.scim import CORE_USER

pytestmark = pytest.mark.slow

THREADS = 8
STOP_AFTER_CREATED = 40


@pytest.mark.sqlite_only  # the process's handling, whatever the database (CI time)
def test_sigterm_during_a_create_load_finishes_and_answers_every_request_taken(
    database_url: str,
) -> None:
    token = issue_token(database_url)["token"]
    server: Server = start_server(database_url)
    sent: list[tuple[str, Reply]] = []
    lock = threading.Lock()

    def load(thread: int) -> None:
        n = 0
        while True:
            name = f"load-{thread}-{n}@example.com"
            body = {"schemas": [CORE_USER], "userName": name}
            reply = call(server, "POST", "/Users", token, body, timeout=30)
            with lock:
                sent.append((name, reply))
            if reply.status is None:
                return
            n += 1

    threads = [threading.Thread(target=load, args=(n,)) for n in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while sum(reply.status == 201 for _, reply in list(sent)) < STOP_AFTER_CREATED:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.01)
        assert server.stop(signal.SIGTERM) == 0, server.output()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.log.close()

    answered = {name: reply for name, reply in sent if reply.status is not None}
    assert {reply.status for reply in answered.values()} == {201}, sorted(
        {(reply.status, str(reply.body)) for reply in answered.values()}
    )
    unanswered = [name for name, reply in sent if reply.status is None]
    assert len(unanswered) == THREADS  # each thread stopped at its first unanswered request
    created = {name: reply.body["id"] for name, reply in answered.items()}
    assert logged_users(database_url) == created

    restarted = start_server(database_url)
    try:
        for name, user_id in created.items():
            found = call(restarted, "GET", f"/Users/{user_id}", token)
            assert (found.status, found.body["userName"]) == (200, name)
    finally:
        restarted.stop()
        restarted.log.close()
