"""Load generator: an Okta-like workload against a running SCIM server, every response checked.

Run: .venv/bin/python -m tests.benchmarks.load --base-url http://127.0.0.1:8000/scim/v2 \\
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

The client is asyncio over plain HTTP/1.1 keep-alive connections, so that one core of load
generator drives well over 10,000 requests/s: the server, not the generator, is measured.
`run_load.py` starts a server and this generator on a core each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from tests.scim import CORE_USER as USER
from tests.scim import PATCH_OP


class Client:
    """One keep-alive HTTP/1.1 connection (one per concurrent worker)."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise SystemExit("the load generator speaks plain http only")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path.rstrip("/")
        authorization = token if " " in token else f"Bearer {token}"
        self._head = (
            f"Host: {self.host}:{self.port}\r\n"
            f"Authorization: {authorization}\r\n"
            "Accept: application/scim+json\r\n"
        )
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {self.path}{path} HTTP/1.1\r\n{self._head}"
        if body is not None:
            head += f"Content-Type: application/scim+json\r\nContent-Length: {len(payload)}\r\n"
        message = (head + "\r\n").encode() + payload
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            if self._streams is None:
                self._streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self._streams
            try:
                writer.write(message)
                status, data, close = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if close:
                self.close()
            return status, (json.loads(data) if data else None)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if not chunked:
        return status, (await reader.readexactly(length) if length else b""), close
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, b"".join(parts), close
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    users: int = 0  # the import walk's count of users seen

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    def line(self) -> str:
        if not self.latencies:
            return f"{self.name:<11} no requests"
        return (
            f"{self.name:<11} {self.rate:>9,.0f} req/s"
            f"  p50 {statistics.median(self.latencies) * 1000:6.1f} ms"
            f"  p99 {self.percentile(0.99) * 1000:6.1f} ms"
            f"  max {max(self.latencies) * 1000:6.1f} ms"
            f"  errors {len(self.errors)}"
        )


async def run_phase(
    name: str,
    items: Sequence[Any],
    work: Callable[[Client, Any], Awaitable[str | None]],
    make_client: Callable[[], Client],
    concurrency: int,
) -> Phase:
    """Runs `work` over `items` from `concurrency` connections; `work` returns an error or None."""
    phase = Phase(name)
    cursor = iter(items)

    async def worker() -> None:
        client = make_client()
        try:
            for item in cursor:
                started = time.perf_counter()
                try:
                    problem = await work(client, item)
                except Exception as exc:  # a failed request is an error, not a crash
                    problem = f"{type(exc).__name__}: {exc}"
                phase.latencies.append(time.perf_counter() - started)
                if problem:
                    phase.errors.append(problem)
        finally:
            client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - started
    return phase


@dataclass
class Person:
    user_name: str
    id: str = ""


async def create(client: Client, person: Person) -> str | None:
    status, body = await client.request(
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


async def lookup(client: Client, person: Person) -> str | None:
    query = quote(f'userName eq "{person.user_name}"')
    status, body = await client.request("GET", f"/Users?filter={query}")
    found = [resource.get("id") for resource in (body or {}).get("Resources", [])]
    if status != 200 or found != [person.id]:
        return f"lookup {person.user_name}: {status} {found}"
    return None


async def deactivate(client: Client, person: Person) -> str | None:
    status, body = await client.request(
        "PATCH",
        f"/Users/{person.id}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    if status == 204:
        return None
    if status != 200 or body.get("active") is not False:
        return f"deactivate {person.id}: {status} {body}"
    return None


async def update(client: Client, person: Person) -> str | None:
    title = f"title {person.id[:8]}"
    status, body = await client.request(
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


async def import_walk(make_client: Callable[[], Client], people: Sequence[Person]) -> Phase:
    """Pages through every user with count=100, as Okta's import does; one connection."""
    phase = Phase("import")
    client = make_client()
    expected = {person.id for person in people}
    seen: set[str] = set()
    start = 1
    began = time.perf_counter()
    while True:
        started = time.perf_counter()
        status, body = await client.request("GET", f"/Users?startIndex={start}&count=100")
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
    client.close()
    missing = expected - seen
    if missing:
        phase.errors.append(f"import: {len(missing)} users not listed")
    phase.users = len(seen)
    return phase


PHASES: dict[str, Callable[[Client, Person], Awaitable[str | None]]] = {
    "create": create,
    "lookup": lookup,
    "deactivate": deactivate,
    "update": update,
}


async def workload(
    base_url: str,
    token: str,
    people: Sequence[Person],
    concurrency: int,
    phases: Sequence[str] = (*PHASES, "import"),
) -> list[Phase]:
    """The phases in order over `people` (create fills in their ids; the others need them)."""

    def make_client() -> Client:
        return Client(base_url, token)

    done = []
    for name in phases:
        chosen = people if name == "create" else [person for person in people if person.id]
        if name == "import":
            done.append(await import_walk(make_client, chosen))
        else:
            done.append(await run_phase(name, chosen, PHASES[name], make_client, concurrency))
    return done


def new_people(count: int) -> list[Person]:
    run = uuid.uuid4().hex[:8]
    return [Person(f"load-{run}-{n}@example.com") for n in range(count)]


def report(phases: Sequence[Phase]) -> None:
    for phase in phases:
        print(phase.line())
        if phase.name == "import" and phase.seconds:
            print(f"{'':<11} {phase.users / phase.seconds:>9,.0f} users/s ({phase.users:,} users)")
        for problem in phase.errors[:5]:
            print(f"    {problem[:200]}")


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
    phases = asyncio.run(
        workload(args.base_url, args.token, new_people(args.users), args.concurrency)
    )
    print(f"{args.users:,} users, concurrency {args.concurrency}, {args.base_url}")
    report(phases)
    if args.server_pid:
        rss = peak_rss_mb(args.server_pid)
        print(f"server peak RSS: {rss:.0f} MB" if rss is not None else "server RSS: unknown")
    return 1 if any(phase.errors for phase in phases) else 0


if __name__ == "__main__":
    raise SystemExit(main())
