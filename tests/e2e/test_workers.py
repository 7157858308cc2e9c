"""`serve --workers 2`: two worker processes on one port, supervised by the process started.

Each request below goes over a connection of its own, which either worker may accept, so
that a check made over many of them covers both workers."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scimledger.projections.registry import PROJECTIONS
from tests.conftest import drop_postgres_database, new_postgres_database
from tests.e2e.conftest import Server, call, cli, issue_token, running_server

pytestmark = pytest.mark.slow

REQUESTS = 24  # fresh connections per check: enough that both workers take some


@pytest.fixture
def workers(database_url: str) -> Iterator[Server]:
    """A server of the test's own, which it may stop or kill."""
    with running_server(database_url, "--workers", "2") as running:
        yield running


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per database for the tests that only send it requests (starting one per
    test cost CI time)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('workers')}/scimledger.db"
    else:
        url = new_postgres_database()
    try:
        with running_server(url, "--workers", "2") as running:
            yield running
    finally:
        if request.param == "postgresql":
            drop_postgres_database(url)


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return sorted(int(child) for child in text.split())


def statuses(server: Server, method: str, path: str, token: str) -> list[int | None]:
    with ThreadPoolExecutor(8) as pool:
        replies = pool.map(lambda _: call(server, method, path, token, timeout=10), range(REQUESTS))
        return [reply.status for reply in replies]


def eventually(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether `pid` still runs. A worker whose supervisor was killed is reaped by whoever
    adopts it, which may take seconds after it exited (a zombie, state Z, runs nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # reaped meanwhile
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # the state follows "(<command>)"


@pytest.mark.sqlite_only  # the process's handling, whatever the database (CI time)
def test_two_workers_serve_one_port_and_stop_together(workers: Server) -> None:
    pids = children(workers.process.pid)
    assert len(pids) == 2
    assert "with 2 worker processes" in workers.output()
    token = issue_token(workers.database)["token"]
    assert statuses(workers, "GET", "/Users?count=1", token) == [200] * REQUESTS
    assert workers.stop() == 0
    assert not any(alive(pid) for pid in pids)
    assert "stopped on SIGTERM" in workers.output()


def test_a_write_through_one_worker_is_read_through_every_worker(shared: Server) -> None:
    workers = shared
    token = issue_token(workers.database)["token"]
    created = call(workers, "POST", "/Users", token, {"userName": "ada@example.com"})
    assert created.status == 201, created
    user_id = created.body["id"]
    assert statuses(workers, "GET", f"/Users/{user_id}", token) == [200] * REQUESTS
    path = "/Users?filter=userName%20eq%20%22ada@example.com%22"
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: call(workers, "GET", path, token), range(REQUESTS)))
    assert [(reply.status, reply.body["totalResults"]) for reply in found] == [(200, 1)] * REQUESTS


def test_a_revoked_token_is_refused_by_every_worker_within_one_second(shared: Server) -> None:
    workers = shared
    issued = issue_token(workers.database)
    assert statuses(workers, "GET", "/Users?count=1", issued["token"]) == [200] * REQUESTS
    revoked = cli("tokens", "revoke", issued["id"], database=workers.database)
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 1.0
    refused = statuses(workers, "GET", "/Users?count=1", issued["token"])
    assert time.monotonic() <= deadline
    assert refused == [401] * REQUESTS


def test_each_projection_has_one_consumer_and_writes_through_both_are_audited_once(
    shared: Server,
) -> None:
    workers = shared
    token = issue_token(workers.database)["token"]
    names = [f"audited{n}@example.com" for n in range(REQUESTS)]
    with ThreadPoolExecutor(8) as pool:
        created = list(
            pool.map(lambda name: call(workers, "POST", "/Users", token, {"userName": name}), names)
        )
    assert [reply.status for reply in created] == [201] * REQUESTS
    listed = cli(
        "audit",
        "list",
        "--org",
        "acme",
        "--action",
        "user.created",
        "--format",
        "jsonl",
        database=workers.database,
    )
    assert listed.returncode == 0, listed.stderr
    audited = [line for line in listed.stdout.splitlines() if '@example.com"' in line]
    assert sum("audited" in line for line in audited) == REQUESTS
    consuming = [line for line in workers.output().splitlines() if "consuming " in line]
    assert sorted(consuming_name(line) for line in consuming) == sorted(
        projection.name for projection in PROJECTIONS
    )


def consuming_name(line: str) -> str:
    return line.split("consuming ", 1)[1].split(" from position", 1)[0]


def test_a_killed_worker_is_replaced_and_the_others_go_on(workers: Server) -> None:
    token = issue_token(workers.database)["token"]
    first, second = children(workers.process.pid)
    os.kill(first, signal.SIGKILL)
    # Meanwhile the other worker takes every connection.
    assert statuses(workers, "GET", "/Users?count=1", token) == [200] * REQUESTS
    eventually(lambda: len(children(workers.process.pid)) == 2, timeout=10)
    replaced = children(workers.process.pid)
    assert second in replaced
    assert first not in replaced
    assert "exited by signal 9; restarting it" in workers.output()
    assert statuses(workers, "GET", "/Users?count=1", token) == [200] * REQUESTS


@pytest.mark.sqlite_only  # the process's handling, whatever the database (CI time)
def test_workers_end_when_the_supervisor_is_killed(workers: Server) -> None:
    pids = children(workers.process.pid)
    workers.process.kill()
    workers.process.wait(timeout=10)
    eventually(lambda: not any(alive(pid) for pid in pids), timeout=20)


def test_metrics_add_up_every_workers_requests(shared: Server) -> None:
    workers = shared
    token = issue_token(workers.database)["token"]
    before = counted_users_lists(workers)
    assert statuses(workers, "GET", "/Users?count=1", token) == [200] * REQUESTS
    for _ in range(4):  # whichever worker answers the scrape
        assert counted_users_lists(workers) - before == REQUESTS


def test_metrics_add_up_every_workers_writes(shared: Server) -> None:
    """The write side's counters have no labels: made when defined, before the workers
    forked, they once counted in each worker's memory only, and every scrape said 0."""
    workers = shared
    token = issue_token(workers.database)["token"]
    before = scraped(workers, "scimledger_ledger_saves_total")
    with ThreadPoolExecutor(8) as pool:
        created = list(
            pool.map(
                lambda n: (
                    call(
                        workers,
                        "POST",
                        "/Users",
                        token,
                        {"userName": f"w{n}@example.com"},
                        timeout=10,
                    ).status
                ),
                range(REQUESTS),
            )
        )
    assert created == [201] * REQUESTS
    for _ in range(4):  # whichever worker answers the scrape
        assert scraped(workers, "scimledger_ledger_saves_total") - before == REQUESTS


def test_metrics_add_up_every_workers_connection_pool(shared: Server) -> None:
    # Each worker's pool may open 20 connections (ledger.database): the server's, 40.
    # SQLite has no pool.
    expected = 40 if shared.database.startswith("postgresql") else 0
    eventually(lambda: scraped(shared, "scimledger_database_pool_max_connections") == expected, 15)


def counted_users_lists(server: Server) -> float:
    """GET /scim/v2/Users answered 200, as the scrape of /metrics says."""
    labels = {"method": "GET", "route": "/scim/v2/Users", "status": "200"}
    return scraped(server, "scimledger_http_requests_total", labels)


def scraped(server: Server, name: str, labels: dict[str, str] | None = None) -> float:
    """The sum of the samples `name` (with exactly `labels`, if given) in a scrape."""
    url = server.base_url.removesuffix("/scim/v2") + "/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and (labels is None or sample.labels == labels)
    )
