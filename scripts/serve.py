"""`scimledger serve`: the SCIM server, with the read model kept up to date in-process."""

from __future__ import annotations

import gc
import logging
import shlex
import signal
import sys
import threading
from pathlib import Path

import uvicorn

from scimledger.http import connections
from scimledger.http.app import create_app
from scimledger.http.connections import Limits
from scimledger.http.rate_limit import RateLimit
from scimledger.http.responses import SCIM_BASE_PATH
from scimledger.http.services import Services
from scimledger.ledger import departures
from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DEFAULT_URL, DatabaseURL
from scimledger.projections.audit import NAME as AUDIT
from scimledger.projections.follower import Followers
from scimledger.projections.scim import NAME as SCIM
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import NAME as TOKENS
from scimledger.projections.tokens import UsageRecorder, departure_candidates


def _program() -> str:
    """How this user runs scimledger: the path they ran, or its name."""
    program = sys.argv[0] if sys.argv and "/" in sys.argv[0] else "scimledger"
    return program if Path(program).name == "scimledger" else "scimledger"


def _commands(database_flag: str | None, public_url: str | None) -> tuple[str, str]:
    """The commands that issue a token and sign the first admin in to the console."""
    database = f" --database {shlex.quote(database_flag)}" if database_flag else ""
    public = f" --public-url {shlex.quote(public_url)}" if public_url else ""
    program = _program()
    return (
        f'{program} tokens issue --org acme --name "Okta" --expires never{database}',
        f"{program} admins add you@example.com --org acme{database} && "
        f"{program} console link --org acme --admin you@example.com{public}{database}",
    )


def serve(
    database: DatabaseURL,
    host: str,
    port: int,
    *,
    project_in_process: bool,
    rate_limit: RateLimit,
    limits: Limits,
    max_connections: int,
    public_url: str | None,
) -> int:
    ledger = Ledger(database)
    # In process, this server consumes the projections unless another process already does
    # (then it takes over if that one stops); with `scimledger project` running them, it only
    # waits for them.
    followers = Followers(ledger, consume=project_in_process)
    followers.start()
    by_name = followers.by_name
    tokens = by_name[TOKENS]
    sql = SQL(ledger)
    sweeper = departures.Sweeper(
        lambda: departure_candidates(sql, tokens.catch_up), ledger.sweep_departed
    )
    sweeper.start()
    app = create_app(
        Services(
            ledger=ledger,
            scim=by_name[SCIM],
            audit=by_name[AUDIT],
            tokens=tokens,
            sql=sql,
            usage=UsageRecorder(sql),
            rate_limit=rate_limit,
            public_url=public_url,
        )
    )
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
    where = (
        f"SQLite file {Path(database.path).resolve()}"
        if database.kind == "sqlite"
        else database.redacted()
    )
    # Spell out a non-default database, however it was given: the token command is run in
    # another terminal, which may not share this one's environment.
    # A password is never printed: the command then shows *** in its place.
    flag = database.redacted() if database.url != DEFAULT_URL else None
    reached = public_url or f"http://{shown_host}:{port}"
    issue, sign_in = _commands(flag, public_url)
    print(
        f"scimledger is serving on {where}\n"
        f"SCIM connector base URL: {reached}{SCIM_BASE_PATH}\n"
        f"Issue a token (in another terminal): {issue}\n"
        f"Console: {reached}/console/ (to sign in: {sign_in})",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        server_header=False,
        log_level="info",
        # Our own lines for uvicorn's too (scripts/logs.py); the access line is written by
        # http/envelope.py, which knows the route and the token, never the raw URL.
        log_config=None,
        lifespan="on",
        access_log=False,
        http=connections.protocol(limits),
        limit_concurrency=max_connections,
    )
    # What was made while starting lives as long as the process: out of the collector's
    # way, so that collections walk only what requests make.
    gc.collect()
    gc.freeze()
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handler that was installed before it. Installing ours means that re-raise lands here
    # and the process finishes its own cleanup and exits 0, instead of dying by the signal.
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: received.append(number))
    try:
        uvicorn.Server(config).run()
    finally:
        sweeper.stop()
        followers.stop()
        ledger.close()
    if received:
        logging.getLogger(__name__).info("stopped on %s", signal.Signals(received[0]).name)
    return 0


def project(database: DatabaseURL) -> int:
    """`scimledger project`: keeps every projection caught up, as their single consumer, or
    stands by and takes over when the process consuming them stops."""
    ledger = Ledger(database)
    stopping = threading.Event()
    received: list[int] = []

    def stop(number: int, _frame: object) -> None:
        received.append(number)
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    followers = Followers(ledger, consume=True)
    followers.start()
    for follower in followers.by_name.values():
        if not follower.active:
            logging.getLogger(__name__).info(
                "another process consumes %s; standing by to take over", follower.name
            )
    try:
        stopping.wait()
    finally:
        followers.stop()
        ledger.close()
    logging.getLogger(__name__).info("stopped on %s", signal.Signals(received[0]).name)
    return 0
