"""Load generator: an Okta-like workload against a running SCIM server, every response checked.

Run: .venv/bin/python tests/benchmarks/load.py --base-url http://127.0.0.1:8000/scim/v2 \\
         --token scl_... [--users 1000] [--concurrency 16] [--server-pid PID]

Phases, in order, each over N users with C concurrent keep-alive connections:
  create      POST /Users (unique userName and email)     201, the same userName
  lookup      GET /Users?filter=userName eq "..."         200, exactly that user
  deactivate  PATCH /Users/{id} replace active false      200 with active false (or 204)
  update      PUT /Users/{id} with a new title            200 with the new title
  import      GET /Users?startIndex=..&count=100          every user seen exactly once
For each phase: requests/s, p50, p99 and max latency, and errors (any unexpected status or
value). With --server-pid, the server's peak RSS (VmHWM) at the end. It speaks plain SCIM,
so it runs as well against any other SCIM server (give its base URL and token).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Client:
    """One keep-alive HTTP connection (one per worker thread)."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.https = parts.scheme == "https"
        self.path = parts.path.rstrip("/")
        self.headers = {
            "Authorization": token if " " in token else f"Bearer {token}",
            "Accept": "application/scim+json",
            "Content-Type": "application/scim+json",
        }
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            connection = self._connect()
            try:
                connection.request(method, self.path + path, payload, self.headers)
                response = connection.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException):
                self._connection = None
                if attempt == 2:
                    raise
                continue
            return response.status, (json.loads(data) if data else None)
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._connection = kind(self.host, self.port, timeout=60)
        return self._connection


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        if not self.latencies:
            return f"{self.name:<11} no requests"
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"{self.name:<11} {len(ordered) / self.seconds:>9,.0f} req/s"
            f"  p50 {statistics.median(ordered) * 1000:6.1f} ms"
            f"  p99 {p99 * 1000:6.1f} ms  max {ordered[-1] * 1000:6.1f} ms"
            f"  errors {len(self.errors)}"
        )


def run_phase(
    name: str,
    items: Sequence[Any],
    work: Callable[[Client, Any], str | None],
    make_client: Callable[[], Client],
    concurrency: int,
) -> Phase:
    """Runs `work` over `items` from `concurrency` threads; `work` returns an error or None."""
    phase = Phase(name)
    lock = threading.Lock()
    cursor = iter(range(len(items)))

    def worker() -> None:
        client = make_client()
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            started = time.perf_counter()
            try:
                problem = work(client, items[index])
            except Exception as exc:  # a failed request is an error, not a crash
                problem = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            with lock:
                phase.latencies.append(elapsed)
                if problem:
                    phase.errors.append(problem)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - started
    return phase


@dataclass
class Person:
    user_name: str
    id: str = ""


def create(client: Client, person: Person) -> str | None:
    status, body = client.request(
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": person.user_name,
            "name": {"givenName": "Load", "familyName": person.user_name.split("@")[0]},
            "emails": [{"value": person.user_name, "type": "work", "primary": True}],
            "active": True,
        },
    )
    if status != 201 or body.get("userName") != person.user_name or not body.get("id"):
        return f"create {person.user_name}: {status} {body}"
    person.id = body["id"]
    return None


def lookup(client: Client, person: Person) -> str | None:
    query = quote(f'userName eq "{person.user_name}"')
    status, body = client.request("GET", f"/Users?filter={query}")
    found = [resource.get("id") for resource in (body or {}).get("Resources", [])]
    if status != 200 or found != [person.id]:
        return f"lookup {person.user_name}: {status} {found}"
    return None


def deactivate(client: Client, person: Person) -> str | None:
    status, body = client.request(
        "PATCH",
        f"/Users/{person.id}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    if status == 204:
        return None
    if status != 200 or body.get("active") is not False:
        return f"deactivate {person.id}: {status} {body}"
    return None


def update(client: Client, person: Person) -> str | None:
    title = f"title {person.id[:8]}"
    status, body = client.request(
        "PUT",
        f"/Users/{person.id}",
        {
            "schemas": [USER],
            "userName": person.user_name,
            "name": {"givenName": "Load", "familyName": person.user_name.split("@")[0]},
            "emails": [{"value": person.user_name, "type": "work", "primary": True}],
            "title": title,
            "active": False,
        },
    )
    if status != 200 or body.get("title") != title:
        return f"update {person.id}: {status} {body}"
    return None


def import_walk(make_client: Callable[[], Client], people: Sequence[Person]) -> Phase:
    """Pages through every user with count=100, as Okta's import does; one connection."""
    phase = Phase("import")
    client = make_client()
    expected = {person.id for person in people}
    seen: set[str] = set()
    start = 1
    began = time.perf_counter()
    while True:
        started = time.perf_counter()
        status, body = client.request("GET", f"/Users?startIndex={start}&count=100")
        phase.latencies.append(time.perf_counter() - started)
        if status != 200:
            phase.errors.append(f"import page {start}: {status}")
            break
        resources = body.get("Resources", [])
        for resource in resources:
            if resource["id"] in seen:
                phase.errors.append(f"import: {resource['id']} twice")
            seen.add(resource["id"])
        start += len(resources)
        if not resources or start > int(body.get("totalResults", 0)):
            break
    phase.seconds = time.perf_counter() - began
    missing = expected - seen
    if missing:
        phase.errors.append(f"import: {len(missing)} users not listed")
    users_per_second = len(seen) / phase.seconds if phase.seconds else 0.0
    print(f"import walk: {len(seen):,} users in {phase.seconds:.2f} s ({users_per_second:,.0f}/s)")
    return phase


def peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True, help="a bearer token (or a full header value)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--server-pid", type=int, help="report this process's peak RSS")
    args = parser.parse_args(argv)

    def make_client() -> Client:
        return Client(args.base_url, args.token)

    run = uuid.uuid4().hex[:8]
    people = [Person(f"load-{run}-{n}@example.com") for n in range(args.users)]
    phases = [run_phase("create", people, create, make_client, args.concurrency)]
    created = [person for person in people if person.id]
    for name, work in (("lookup", lookup), ("deactivate", deactivate), ("update", update)):
        phases.append(run_phase(name, created, work, make_client, args.concurrency))
    phases.append(import_walk(make_client, created))
    print(f"{args.users:,} users, concurrency {args.concurrency}, {args.base_url}")
    for phase in phases:
        print(phase.line())
        for problem in phase.errors[:5]:
            print(f"    {problem[:200]}")
    if args.server_pid:
        rss = peak_rss_mb(args.server_pid)
        print(f"server peak RSS: {rss:.0f} MB" if rss is not None else "server RSS: unknown")
    return 1 if any(phase.errors for phase in phases) else 0


if __name__ == "__main__":
    raise SystemExit(main())
