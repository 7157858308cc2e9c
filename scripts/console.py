"""`scimledger console link`: a one-time sign-in link to the web console, for the first admin
and for organizations without single sign-on."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from urllib.parse import urlsplit

from scimledger.ledger.context import Actor
from scimledger.scripts.command import Commands, UsageError, family, opened, runs

PUBLIC_URL_ENV = "SCIMLEDGER_PUBLIC_URL"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # serve's default address


def public_url(given: str | None) -> str:
    """Where people reach the server: `--public-url`, else $SCIMLEDGER_PUBLIC_URL, else
    serve's default address."""
    url = (given or os.environ.get(PUBLIC_URL_ENV) or DEFAULT_PUBLIC_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise UsageError(f"--public-url must be http(s)://host[:port], not {url!r}")
    return url


def link(args: argparse.Namespace) -> int:
    base = public_url(args.public_url)
    with opened(args) as ledger:
        presented, _ = ledger.issue_sign_in_link(
            args.org, args.admin, Actor.operator("scimledger console link"), datetime.now(UTC)
        )
    print(f"{base}/console/sign-in/{presented}")  # alone on stdout, for scripts
    return 0


def add_commands(commands: Commands) -> None:
    actions = family(commands, "console", "the web console")
    parser = actions.add_parser(
        "link",
        help="print a one-time sign-in link (works once, within 15 minutes)",
        description="Prints a URL that signs an admin or reviewer in to the console of "
        "their organization: it works once, within 15 minutes. Only its hash is stored.",
    )
    parser.add_argument("--org", required=True)
    parser.add_argument("--admin", required=True, metavar="EMAIL", help="an admin or reviewer")
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help=f"where people reach the server (default: ${PUBLIC_URL_ENV}, else "
        f"{DEFAULT_PUBLIC_URL})",
    )
    runs(parser, link)
