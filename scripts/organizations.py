"""`scimledger admins add|remove|list` and `scimledger settings show|set`: an organization's
admins (who tokens are issued for) and reviewers (who read in the console), and its
settings."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scimledger.ledger import retention
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.organizations import ROLES
from scimledger.ledger.tokens import parse_grace
from scimledger.scripts import output
from scimledger.scripts.command import Commands, UsageError, family, opened, runs


def change_admins(args: argparse.Namespace) -> int:
    """`admins add` or `admins remove`."""
    actor = Actor.operator(f"scimledger admins {args.action}")
    with opened(args) as ledger:
        if args.action == "add":
            ledger.add_admin(args.org, args.email, actor, RequestInfo.local(), role=args.role)
        else:
            ledger.remove_admin(args.org, args.email, actor, RequestInfo.local())
    return 0


def list_admins(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        people = [
            *({"email": email, "role": "admin"} for email in ledger.admins(args.org)),
            *({"email": email, "role": "reviewer"} for email in ledger.reviewers(args.org)),
        ]
    output.write(people, ("email", "role"), args.format)
    return 0


def show_settings(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        settings = ledger.settings(args.org)
    print(json.dumps(settings, indent=2))
    return 0


def set_settings(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.departed_policy is not None:
        changes["departed_policy"] = args.departed_policy
    if args.departed_grace is not None:
        changes["departed_grace_seconds"] = int(parse_grace(args.departed_grace).total_seconds())
    if args.base_url is not None:
        changes["scim_base_url"] = args.base_url
    if args.erase_deleted_after is not None:
        changes["erase_deleted_after_seconds"] = retention.parse_period(args.erase_deleted_after)
    sso = (args.oidc_issuer, args.oidc_client_id, args.oidc_client_secret_file)
    if any(value is not None for value in sso) and None in sso:
        raise UsageError(
            "single sign-on needs --oidc-issuer, --oidc-client-id and "
            "--oidc-client-secret-file together"
        )
    actor = Actor.operator("scimledger settings set")
    with opened(args) as ledger:
        if changes or None in sso:
            settings = ledger.change_settings(args.org, changes, actor, RequestInfo.local())
        if None not in sso:
            settings = ledger.set_single_sign_on(
                args.org,
                issuer=args.oidc_issuer,
                client_id=args.oidc_client_id,
                client_secret=_secret(args.oidc_client_secret_file),
                actor=actor,
                request=RequestInfo.local(),
                now=datetime.now(UTC),
            )
    print(json.dumps(settings, indent=2))
    return 0


def _secret(path: str) -> str:
    """A secret from a file (`-` for stdin), never from the command line (it would show in
    the process list and the shell's history)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read the client secret: {exc.strerror}: {path}") from exc
    return text.strip()


def add_commands(commands: Commands) -> None:
    actions = family(commands, "admins", "an organization's admins (token issuers) and reviewers")
    parser = actions.add_parser("add", help="make EMAIL an admin, or a reviewer (--role)")
    parser.add_argument("email", metavar="EMAIL")
    parser.add_argument("--org", required=True)
    parser.add_argument(
        "--role",
        choices=ROLES,
        default="admin",
        help="admin (default): manages tokens, admins and settings; reviewer: reads people, "
        "history and the audit trail in the console, changes nothing",
    )
    parser.set_defaults(action="add")
    runs(parser, change_admins)
    parser = actions.add_parser("remove", help="remove an admin or reviewer")
    parser.add_argument("email", metavar="EMAIL")
    parser.add_argument("--org", required=True)
    parser.set_defaults(action="remove")
    runs(parser, change_admins)
    parser = actions.add_parser("list", help="the organization's admins and reviewers")
    parser.add_argument("--org", required=True)
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, list_admins)

    actions = family(commands, "settings", "an organization's settings")
    parser = actions.add_parser("show", help="print the settings as JSON")
    parser.add_argument("--org", required=True)
    runs(parser, show_settings)
    parser = actions.add_parser("set", help="change settings")
    parser.add_argument("--org", required=True)
    parser.add_argument(
        "--departed-policy",
        choices=("warn", "revoke-after"),
        help="what happens to the tokens of an admin who left",
    )
    parser.add_argument("--departed-grace", help="for revoke-after: e.g. 7d, 24h, 0")
    parser.add_argument("--base-url", help="the SCIM connector base URL admins should use")
    parser.add_argument(
        "--erase-deleted-after",
        metavar="PERIOD",
        help="erase users' personal data this long after they are deleted: e.g. 30d, 12h;"
        " never (the default) keeps it until erased on request",
    )
    parser.add_argument(
        "--oidc-issuer",
        metavar="URL",
        help="console single sign-on: the organization's OpenID Connect issuer (https)",
    )
    parser.add_argument("--oidc-client-id", metavar="ID", help="the client id scimledger has there")
    parser.add_argument(
        "--oidc-client-secret-file",
        metavar="FILE",
        help="a file holding its client secret (- for stdin); kept beside the events, never in one",
    )
    runs(parser, set_settings)
