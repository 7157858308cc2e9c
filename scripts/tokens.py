"""`scimledger tokens issue|list|rotate|revoke`: API tokens, each shown once when issued."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from uuid import UUID

from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.errors import InvalidToken
from scimledger.ledger.organizations import normalize_slug
from scimledger.ledger.tokens import SCOPES, parse_expiry, parse_grace
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import COLUMNS, TokensProjection, list_tokens
from scimledger.scripts import output
from scimledger.scripts.command import Commands, UsageError, family, opened, runs


def issue(args: argparse.Namespace) -> int:
    expires_at = parse_expiry(args.expires, datetime.now(UTC))
    with opened(args) as ledger:
        issued = ledger.issue_token(
            org=args.org,
            name=args.name,
            expires_at=expires_at,
            actor=Actor.operator("scimledger tokens issue"),
            request=RequestInfo.local(),
            scopes=tuple(dict.fromkeys(args.scope or ["scim"])),
            by=args.by,
        )
    _print_issued(issued, args.json)
    return 0


def list_(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        Runner(ledger, TokensProjection()).run_once()
        with SQL(ledger).transaction(commit=False) as cursor:
            views = list_tokens(
                cursor, normalize_slug(args.org) if args.org else None, datetime.now(UTC)
            )
    rows = [view.as_dict() | {"scopes": " ".join(view.scopes)} for view in views]
    output.write(rows, COLUMNS, args.format)
    return 0


def rotate(args: argparse.Namespace) -> int:
    grace = parse_grace(args.grace)
    token_id = _token_id(args.token_id)
    with opened(args) as ledger:
        try:
            issued = ledger.rotate_token(
                token_id,
                grace=grace,
                actor=Actor.operator("scimledger tokens rotate"),
                request=RequestInfo.local(),
                now=datetime.now(UTC),
                by=args.by,
            )
        except InvalidToken as exc:
            raise UsageError(str(exc)) from exc
    _print_issued(issued, args.json)
    print(f"The old token {token_id} keeps working for {args.grace}.", file=sys.stderr)
    return 0


def revoke(args: argparse.Namespace) -> int:
    token_id = _token_id(args.token_id)
    with opened(args) as ledger:
        token = ledger.revoke_token(
            token_id, Actor.operator("scimledger tokens revoke"), RequestInfo.local()
        )
    print(f"Token {token.id} ({token.name!r}) is revoked.", file=sys.stderr)
    return 0


def _token_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError as exc:
        raise UsageError(f"{text!r} is not a token id") from exc


def _print_issued(issued: IssuedToken, as_json: bool) -> None:
    if as_json:
        print(json.dumps(issued.as_dict()))
        return
    expiry = issued.expires_at.isoformat() if issued.expires_at else None
    print(issued.token)
    print(
        f"Token {issued.id} ({issued.name!r}) for organization {issued.org!r}, "
        f"expires {expiry or 'never'}. It is shown only this once: store it now.",
        file=sys.stderr,
    )


def add_commands(commands: Commands) -> None:
    actions = family(commands, "tokens", "issue, list, rotate and revoke API tokens")
    parser = actions.add_parser("issue", help="issue a token (printed once)")
    parser.add_argument("--org", required=True, help="organization (created if new)")
    parser.add_argument("--name", required=True, help='a name such as "Okta"')
    parser.add_argument(
        "--expires", required=True, help="never, a number of days such as 30d, or an ISO date"
    )
    parser.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help="what the token may do: scim (provisioning, the default), audit:read (the"
        " audit API), events:read (the events feed) or admin (the admin API); repeatable",
    )
    parser.add_argument("--by", metavar="EMAIL", help="the organization admin it is issued for")
    parser.add_argument(
        "--json", action="store_true", help="print id, name, org, token, expires_at"
    )
    runs(parser, issue)
    parser = actions.add_parser("list", help="tokens and their status (no secrets)")
    parser.add_argument("--org", help="only this organization")
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, list_)
    parser = actions.add_parser(
        "rotate", help="issue a successor; the old token works until the grace period ends"
    )
    parser.add_argument("token_id", metavar="ID", help="the id `tokens issue --json` printed")
    parser.add_argument("--grace", default="24h", help="e.g. 24h, 30m, 7d, or 0 (default 24h)")
    parser.add_argument("--by", metavar="EMAIL", help="issue the successor for this admin")
    parser.add_argument(
        "--json", action="store_true", help="print id, name, org, token, expires_at"
    )
    runs(parser, rotate)
    parser = actions.add_parser("revoke", help="revoke a token at once")
    parser.add_argument("token_id", metavar="ID", help="the id `tokens issue --json` printed")
    runs(parser, revoke)
