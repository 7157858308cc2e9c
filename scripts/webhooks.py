"""`scimledger webhooks add|list|disable|enable|remove|rotate-secret`: the endpoints an
organization's changes are pushed to, each signing secret shown once."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.organizations import normalize_slug
from scimledger.ledger.tokens import parse_grace
from scimledger.projections.deliveries import attempts
from scimledger.projections.feed import TYPES, UnknownType, chosen_types
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import WEBHOOK_COLUMNS, TokensProjection, list_webhooks
from scimledger.scripts import output
from scimledger.scripts.command import Commands, Handler, UsageError, family, opened, runs


def add(args: argparse.Namespace) -> int:
    types = parse_types(args.types)
    with opened(args) as ledger:
        webhook, secret = ledger.add_webhook(
            args.org,
            args.url,
            types=types,
            allow_insecure=args.allow_insecure_url,
            actor=Actor.operator("scimledger webhooks add"),
            request=RequestInfo.local(),
            now=datetime.now(UTC),
        )
    if args.json:
        print(json.dumps({**webhook.as_dict(), "secret": secret}))
        return 0
    print(secret)
    print(
        f"Webhook {webhook.id} of organization {webhook.org_slug!r} posts "
        f"{', '.join(types) if types else 'every type of change'} to "
        f"{output.escaped(webhook.url)}. Its signing secret is shown only this once: store it "
        "with the receiver now.",
        file=sys.stderr,
    )
    return 0


def list_(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        Runner(ledger, TokensProjection()).run_once()
        with SQL(ledger).read() as cursor:
            org = normalize_slug(args.org) if args.org else None
            views = list_webhooks(cursor, org, removed=args.removed)
    rows = [{column: getattr(view, column) for column in WEBHOOK_COLUMNS} for view in views]
    output.write(rows, WEBHOOK_COLUMNS, args.format)
    return 0


Change = Literal["disable", "enable", "remove"]


def change(how: Change) -> Handler:
    def run(args: argparse.Namespace) -> int:
        webhook_id = _webhook_id(args.webhook_id)
        with opened(args) as ledger:
            webhook = ledger.change_webhook(
                webhook_id,
                how,
                Actor.operator(f"scimledger webhooks {how}"),
                RequestInfo.local(),
            )
        done = {"disable": "disabled", "enable": "enabled", "remove": "removed"}[how]
        print(f"Webhook {webhook.id} ({output.escaped(webhook.url)}) is {done}.", file=sys.stderr)
        return 0

    return run


def rotate_secret(args: argparse.Namespace) -> int:
    grace = parse_grace(args.grace)
    webhook_id = _webhook_id(args.webhook_id)
    with opened(args) as ledger:
        secret = ledger.rotate_webhook_secret(
            webhook_id,
            grace=grace,
            actor=Actor.operator("scimledger webhooks rotate-secret"),
            request=RequestInfo.local(),
            now=datetime.now(UTC),
        )
    if args.json:
        print(json.dumps({"id": str(webhook_id), "secret": secret}))
    else:
        print(secret)
    print(
        f"Webhook {webhook_id} signs with its new secret, shown only this once"
        + (f", and with the previous one too for {args.grace}." if grace else "."),
        file=sys.stderr,
    )
    return 0


def replay(args: argparse.Namespace) -> int:
    webhook_id = _webhook_id(args.webhook_id)
    after = _cursor(args.from_)
    with opened(args) as ledger:
        webhook = ledger.replay_webhook(
            webhook_id, after, Actor.operator("scimledger webhooks replay"), RequestInfo.local()
        )
    print(
        f"Webhook {webhook.id} ({output.escaped(webhook.url)}) gets the changes after "
        f"{args.from_} again, in order, from the deliverer's next look (within seconds).",
        file=sys.stderr,
    )
    return 0


DELIVERY_COLUMNS = ("attempted_at", "event_id", "attempt", "status", "milliseconds", "error")


def deliveries_(args: argparse.Namespace) -> int:
    webhook_id = _webhook_id(args.webhook_id)
    with opened(args) as ledger:
        ledger.webhook(webhook_id)  # an unknown one is said so
        rows = attempts(SQL(ledger), str(webhook_id), args.limit)
    output.write(rows, DELIVERY_COLUMNS, args.format)
    return 0


def _cursor(text: str) -> int:
    found = re.fullmatch(r"evt_(0|[1-9][0-9]{0,17})", text)
    if found is None:
        raise UsageError(
            "--from takes a cursor such as evt_42 (an event's id), not "
            f"{output.escaped(text[:100])!r}"
        )
    return int(found.group(1))


def _limit(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        raise argparse.ArgumentTypeError(f"a number from 1 to {MAX_LIMIT}, not {text[:20]!r}")
    return int(text)


MAX_LIMIT = 10_000


def parse_types(text: str | None) -> list[str]:
    """`--types user.created,user.deactivated`: the feed's types, none of them twice."""
    try:
        return chosen_types((text or "").split(","))
    except UnknownType as exc:
        raise UsageError(output.escaped(str(exc))) from exc


def _webhook_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError as exc:
        raise UsageError(f"{output.escaped(text[:100])!r} is not a webhook id") from exc


def add_commands(commands: Commands) -> None:
    actions = family(
        commands,
        "webhooks",
        "add, list, disable, enable, remove and replay webhook endpoints; their deliveries",
    )
    parser = actions.add_parser("add", help="add an endpoint (its signing secret printed once)")
    parser.add_argument("--org", required=True, help="the organization whose changes it gets")
    parser.add_argument("--url", required=True, help="https://... where changes are posted")
    parser.add_argument(
        "--types",
        metavar="TYPE,...",
        help=f"only these types of change (default: all): {', '.join(TYPES)}",
    )
    parser.add_argument(
        "--allow-insecure-url",
        action="store_true",
        help="accept an http:// URL (for development only)",
    )
    parser.add_argument("--json", action="store_true", help="print id, org, url, types, secret")
    runs(parser, add)
    parser = actions.add_parser("list", help="the endpoints and their status (no secrets)")
    parser.add_argument("--org", help="only this organization")
    parser.add_argument("--removed", action="store_true", help="removed endpoints too")
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, list_)
    changes: tuple[tuple[Change, str], ...] = (
        ("disable", "stop posting to an endpoint (changes wait for it to be enabled)"),
        ("enable", "post again, from where it stopped (a failing endpoint is retried)"),
        ("remove", "remove an endpoint for good, with its signing secrets"),
    )
    for how, text in changes:
        parser = actions.add_parser(how, help=text)
        parser.add_argument("webhook_id", metavar="ID", help="the id `webhooks add` printed")
        runs(parser, change(how))
    parser = actions.add_parser(
        "deliveries", help="an endpoint's last attempts: status or error, time taken"
    )
    parser.add_argument("webhook_id", metavar="ID", help="the id `webhooks add` printed")
    parser.add_argument(
        "--limit", type=_limit, default=50, metavar="N",
        help="attempts shown, newest first (default 50, at most 10000)",
    )  # fmt: skip
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, deliveries_)
    parser = actions.add_parser("replay", help="post an endpoint's changes again from a cursor")
    parser.add_argument("webhook_id", metavar="ID", help="the id `webhooks add` printed")
    parser.add_argument(
        "--from", dest="from_", required=True, metavar="CURSOR",
        help="post again the changes after this event id (evt_0: every change)",
    )  # fmt: skip
    runs(parser, replay)
    parser = actions.add_parser(
        "rotate-secret", help="a new signing secret; the previous one signs too for a while"
    )
    parser.add_argument("webhook_id", metavar="ID", help="the id `webhooks add` printed")
    parser.add_argument("--grace", default="24h", help="e.g. 24h, 30m, 7d, or 0 (default 24h)")
    parser.add_argument("--json", action="store_true", help="print id and secret")
    runs(parser, rotate_secret)
