"""How soon a SCIM deactivation reaches a webhook receiver, at a steady rate of changes.

Run: .venv/bin/python -m tests.benchmarks.webhook_latency [--database postgresql|sqlite]
         [--rate 200] [--seconds 15] [--users 3000] [--runs 3]
         [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Each run: a fresh database, `scimledger serve --webhook-allow-private` (one process, the
projections and the deliverer in it, nothing pinned), an endpoint for `user.deactivated` on a
receiver in this process, `--users` users created first; then one PATCH deactivation every
1/rate s for `--seconds`. A change's latency is from the moment its PATCH was answered (its
events committed) to the moment the receiver got its post. Prints each run's p50, p99 and
max, then the medians over the runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.benchmarks.compare import scimledger_database
from tests.benchmarks.run_load import free_port, stop
from tests.receiver import receiving

PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}


def _cli(database: str, *args: str) -> str:
    scimledger = Path(sys.executable).parent / "scimledger"
    done = subprocess.run(
        [str(scimledger), *args, "--database", database], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def one(args: argparse.Namespace) -> list[float]:
    with scimledger_database(args) as database, receiving() as receiver:
        token = _cli(database, "tokens", "issue", "--org", "acme", "--name", "b", "--expires", "1d")
        _cli(
            database, "webhooks", "add", "--org", "acme", "--url", receiver.url,
            "--allow-insecure-url", "--types", "user.deactivated",
        )  # fmt: skip
        port = free_port()
        scimledger = Path(sys.executable).parent / "scimledger"
        server = subprocess.Popen(
            [str(scimledger), "serve", "--database", database, "--port", str(port),
             "--webhook-allow-private", "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            connection = _connect(port)
            ids = [_create(connection, token, n) for n in range(args.users)]
            answered: dict[str, float] = {}
            arrived: dict[str, float] = {}
            watcher = threading.Thread(target=_watch, args=(receiver, arrived), daemon=True)
            watcher.start()
            count = min(len(ids), int(args.rate * args.seconds))
            start = time.perf_counter()
            for n, user_id in enumerate(ids[:count]):
                pause = start + n / args.rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                _request(connection, "PATCH", f"/scim/v2/Users/{user_id}", token, PATCH)
                answered[user_id] = time.perf_counter()
            deadline = time.monotonic() + 30
            while len(arrived) < count and time.monotonic() < deadline:
                time.sleep(0.05)
            return [arrived[key] - answered[key] for key in answered if key in arrived]
        finally:
            stop(server)


def _watch(receiver: Any, arrived: dict[str, float]) -> None:
    seen = 0
    while True:
        with receiver.lock:
            fresh = receiver.received[seen:]
        for post in fresh:
            arrived.setdefault(json.loads(post.body)["subject"]["id"], post.at)
        seen += len(fresh)
        time.sleep(0.005)


def _connect(port: int) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 120
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return connection
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _request(
    connection: http.client.HTTPConnection, method: str, path: str, token: str, body: Any
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    connection.request(method, path, body=json.dumps(body), headers=headers)
    answer = connection.getresponse()
    payload = answer.read()
    if answer.status >= 300:
        raise SystemExit(f"{method} {path}: {answer.status} {payload[:200]!r}")
    decoded: dict[str, Any] = json.loads(payload) if payload else {}
    return decoded


def _create(connection: http.client.HTTPConnection, token: str, n: int) -> str:
    body = {"userName": f"user{n}@example.com"}
    return str(_request(connection, "POST", "/scim/v2/Users", token, body)["id"])


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    p50s, p99s = [], []
    for run in range(args.runs):
        latencies = one(args)
        p50, p99 = _quantile(latencies, 0.5), _quantile(latencies, 0.99)
        p50s.append(p50)
        p99s.append(p99)
        print(
            f"run {run + 1}: {len(latencies)} deactivations at {args.rate:g}/s: p50 "
            f"{p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms",
            flush=True,
        )
    print(
        f"median of {args.runs} runs: p50 {statistics.median(p50s) * 1000:.0f} ms, "
        f"p99 {statistics.median(p99s) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
