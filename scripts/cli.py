"""`scimledger`: the operator's command line. `main` builds the parser from the command
families (tokens, organizations, projections, audit, chain: each module adds its commands;
`serve` and `project` are here), runs the command, and turns its errors into exit codes.

Every command takes `--database URL` (or $SCIMLEDGER_DATABASE_URL) and works while a server
runs on the same database.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import Any, get_args

import psycopg

from scimledger.http.connections import MAX_CONNECTIONS, Limits
from scimledger.http.rate_limit import RateLimit
from scimledger.ledger import availability
from scimledger.ledger.database import DatabaseURL, InvalidDatabaseURL
from scimledger.ledger.errors import LedgerError
from scimledger.ledger.tokens import TokenRequestError
from scimledger.ledger.webhooks import WebhookError
from scimledger.projections.rebuild import RebuildConflict
from scimledger.scripts import (
    audit,
    chain,
    config,
    console,
    keys,
    logs,
    organizations,
    output,
    projections,
    schemas,
    tokens,
    users,
    webhooks,
)
from scimledger.scripts.command import Commands, Handler, UsageError, runs

# Arguments that cannot be used: exit 2, as argparse does for those it can check itself.
USAGE_ERRORS = (UsageError, InvalidDatabaseURL, TokenRequestError, WebhookError)


def _start(args: argparse.Namespace) -> int:
    """`serve` or `project`: a long-running process, logging in `--log-format`."""
    from scimledger.scripts import serve  # noqa: PLC0415 (only serve needs uvicorn)

    logs.configure(args.log_format)
    database = DatabaseURL.from_setting(args.database)
    public_url = console.public_url(args.public_url) if args.public_url else None
    if args.command == "project":
        return serve.project(
            database, public_url=public_url, allow_private=args.webhook_allow_private
        )
    return serve.serve(
        serve.Settings(
            database,
            args.host,
            args.port,
            project_in_process=args.projections == "in-process",
            rate_limit=RateLimit(args.rate_limit, args.rate_burst),
            limits=Limits(header_seconds=args.header_timeout, body_seconds=args.body_timeout),
            max_connections=args.max_connections,
            public_url=public_url,
            workers=args.workers,
            drain_seconds=args.drain_seconds,
            metrics_port=args.metrics_port,
            webhook_allow_private=args.webhook_allow_private,
        )
    )


def _workers(value: str) -> int:
    """`--workers`: a number of processes from 1 to MAX_WORKERS, or auto."""
    if value == "auto":
        return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of processes or auto, not {value!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_WORKERS} processes, not {count}")
    return count


def _port(least: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        port: int = _non_negative(int, least=least)(value)
        if port > MAX_PORT:
            raise argparse.ArgumentTypeError(f"a port from {least} to {MAX_PORT}, not {value}")
        return port

    return parse


MAX_PORT = 65535
MAX_WORKERS = 64
MAX_DRAIN_SECONDS = 300.0


def _drain_seconds(value: str) -> float:
    seconds: float = _non_negative(float)(value)
    if seconds > MAX_DRAIN_SECONDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_DRAIN_SECONDS:g} seconds, not {value}")
    return seconds


def _add_server_commands(commands: Commands) -> None:
    parser = commands.add_parser("serve", help="run the SCIM server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port(0), default=8000)  # 0: any free port
    parser.add_argument(
        "--metrics-port",
        type=_port(1),
        metavar="PORT",
        help="serve /metrics on this port (with /healthz and /readyz) instead of --port, "
        "e.g. one that only the monitoring can reach (default: on --port)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="server processes on the one port (default 1; auto: one per core this process "
        "may run on); the read models are still kept by one of them",
    )
    parser.add_argument(
        "--drain-seconds",
        type=_drain_seconds,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM, keep serving this long while /readyz answers 503, so that load "
        "balancers stop sending first (default 0); then finish the requests in flight and stop",
    )
    parser.add_argument(
        "--projections",
        choices=("in-process", "external"),
        default="in-process",
        help="in-process (default): this server keeps the read models up to date (unless "
        "another process already does); external: `scimledger project` does, and this "
        "server only waits for it",
    )
    parser.add_argument(
        "--rate-limit",
        type=_non_negative(float),
        default=0,
        metavar="PER_SECOND",
        help="requests per second each token may make, sustained (default 0: no limit); "
        "over it, 429 with Retry-After",
    )
    parser.add_argument(
        "--rate-burst",
        type=_non_negative(int, least=1),
        metavar="N",
        help="requests a token may make at once above the rate (default: twice the rate)",
    )
    parser.add_argument(
        "--max-connections",
        type=_non_negative(int, least=1),
        default=MAX_CONNECTIONS,
        metavar="N",
        help=f"connections this process holds at once (default {MAX_CONNECTIONS}); beyond, 503",
    )
    parser.add_argument(
        "--header-timeout",
        type=_non_negative(float, least=0.1),
        default=Limits.header_seconds,
        metavar="SECONDS",
        help=f"time a client has to send a request's headers (default {Limits.header_seconds:g});"
        " then 408 and the connection closes",
    )
    parser.add_argument(
        "--body-timeout",
        type=_non_negative(float, least=0.1),
        default=Limits.body_seconds,
        metavar="SECONDS",
        help=f"time a client has to send a request's body after its headers (default "
        f"{Limits.body_seconds:g}); then 408 and the connection closes",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="where people reach this server, e.g. https://scim.example.com behind a proxy "
        f"(default: ${console.PUBLIC_URL_ENV}, else as each request reached it); https "
        "makes the console's cookies Secure",
    )
    _add_webhook_options(parser)
    _add_log_format(parser)
    config.configurable(parser)
    runs(parser, _start)
    parser = commands.add_parser(
        "project",
        help="keep the read models up to date in a process of their own",
        description="Runs every projection as its single consumer (one per database: a "
        "second `project` stands by and takes over when the first stops). Use with "
        "`serve --projections external` for several API workers; posts webhooks too.",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="where the server is reached, for the locations of the resources webhooks post "
        f"(default: ${console.PUBLIC_URL_ENV}, else relative: /scim/v2/Users/...)",
    )
    _add_webhook_options(parser)
    _add_log_format(parser)
    config.configurable(parser)
    runs(parser, _start)


def _add_webhook_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--webhook-allow-private",
        action="store_true",
        help="let webhooks post to loopback, private and link-local addresses (refused by "
        "default: an organization could otherwise reach this server's own network)",
    )


def _add_log_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=get_args(logs.LogFormat),
        default="auto",
        help="log lines as readable text or as JSON objects (default auto: text on a "
        "terminal, JSON otherwise)",
    )


def _non_negative(kind: Callable[[str], float], least: float = 0) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or value < least:
            raise argparse.ArgumentTypeError(f"must be a number >= {least:g}, not {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scimledger", description="Event-sourced SCIM 2.0 provisioning ledger."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_server_commands(commands)
    for family in (
        tokens,
        webhooks,
        organizations,
        console,
        projections,
        audit,
        users,
        schemas,
        keys,
        chain,
        config,
    ):
        family.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        if handler is not config.show:
            config.resolve(args)
        return handler(args)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (*USAGE_ERRORS, LedgerError, RebuildConflict) as exc:
        print(f"scimledger: error: {output.escaped(str(exc))}", file=sys.stderr)
        # A setting missing or wrong (such as the master key: ledger.keys) is a usage error.
        return 2 if isinstance(exc, USAGE_ERRORS) else int(getattr(exc, "exit_code", 1))
    except Exception as exc:
        cause = _database_failure(exc)
        if cause is None:
            raise
        if hasattr(args, "database"):
            database = DatabaseURL.from_setting(args.database).redacted()
            message = f"the database {database} is unavailable: {cause}"
        else:  # a command on two databases (ledger copy): the cause names which
            message = f"a database is unavailable: {cause}"
        print(f"scimledger: error: {output.escaped(message)}", file=sys.stderr)
        return 1


def _database_failure(exc: BaseException) -> str | None:
    """What made the database unavailable, in one line, if that is what `exc` says."""
    database_errors = (psycopg.OperationalError, sqlite3.Error)  # raised before any wrapping
    if not (availability.unavailable(exc) or isinstance(exc, database_errors)):
        return None
    while exc.__cause__ is not None:  # the driver's own words, not a wrapper's
        exc = exc.__cause__
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
