"""`scimledger audit list|history|show|report`: the audit trail for reviewers, streamed, a
user's state at a point in time, and reports."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from scimledger.ledger.application import Ledger
from scimledger.ledger.moments import parse_moment
from scimledger.projections import audit
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from scimledger.projections.sql_filters import scim_datetime
from scimledger.scripts import output
from scimledger.scripts.command import Commands, UsageError, family, opened, runs


def list_entries(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        sql = _caught_up(ledger)
        query = audit.AuditQuery(
            org_id=_org_id(ledger, args.org),
            subject=args.subject,
            actor=args.actor,
            actions=tuple(args.action),
            since=scim_datetime(_time(args.since)) if args.since else None,
            until=scim_datetime(_time(args.until)) if args.until else None,
        )
        _write(sql, query, args.format)
    return 0


def history(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        sql, ids = subjects(ledger, args.user, args.org)
        for subject_id in ids:
            _write(sql, audit.AuditQuery(subject=subject_id), args.format)
    return 0


def show(args: argparse.Namespace) -> int:
    """The user's SCIM representation as it was at `--at`, rebuilt from its events."""
    # Rendered as the SCIM API renders users, which loads Litestar: for this command only.
    from scimledger.http.responses import SCIM_BASE_PATH  # noqa: PLC0415
    from scimledger.http.users import render_user_at  # noqa: PLC0415

    with opened(args) as ledger:
        at = _time(args.at)
        _, ids = subjects(ledger, args.user, args.org)
        for subject_id in reversed(ids):  # the latest user of that name first
            found = ledger.user_at(None, UUID(subject_id), at)
            if found is not None:
                output.print_json(render_user_at(found, SCIM_BASE_PATH, None))
                return 0
    raise UsageError(f"no user {args.user!r} existed at {at.isoformat()}")


def report(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        sql = _caught_up(ledger)
        with sql.transaction(commit=False) as cursor:
            rows = audit.revoked_token_users(cursor, _org_id(ledger, args.org))
    output.write(rows, audit.REVOKED_TOKEN_USERS_COLUMNS, args.format)
    return 0


def _time(text: str) -> datetime:
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _caught_up(ledger: Ledger) -> SQL:
    """The trail brought up to the end of the log (also when no server runs)."""
    Runner(ledger, audit.AuditProjection()).run_once()
    return SQL(ledger)


def _org_id(ledger: Ledger, org: str | None) -> str | None:
    if org is None:
        return None
    found = ledger.organization_id(org)
    if found is None:
        raise UsageError(f"no organization {org!r}")
    return str(found)


def _write(sql: SQL, query: audit.AuditQuery, fmt: str) -> None:
    """The entries `query` finds, written as they are read (constant memory)."""
    entries = audit.stream(lambda: sql.transaction(commit=False), query)
    output.write(entries, audit.COLUMNS, fmt, table=_table, csv_row=audit.csv_row)


def _table(entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    for item in entries:
        actor = f"{item['actor_kind']}:{item['actor_name']} [{item['actor_id']}]"
        if item["actor_issuer"]:
            actor += f" issued by {item['actor_issuer']}"
        subject = f"{item['subject_type']} {item['subject_name'] or ''} [{item['subject_id']}]"
        request = f"request {item['request_id']}"
        if item["client_address"]:
            request += f" from {item['client_address']}"
        if item["user_agent"]:
            request += f" ({item['user_agent']})"
        yield (
            f"#{item['position']} {item['occurred_at']} {item['action']} {subject}\n"
            f"    by {actor}; {request}\n"
        )
        summary = _summary(item["changes"])
        if summary:
            yield f"    {summary}\n"


def _summary(changes: dict[str, Any]) -> str:
    parts = []
    for name, change in audit.flattened(changes).items():
        if isinstance(change, dict) and set(change) == {"before", "after"}:
            parts.append(f"{name}: {_short(change['before'])} -> {_short(change['after'])}")
        elif isinstance(change, dict):
            parts.append(f"{name}: " + ", ".join(f"{k} {len(v)}" for k, v in change.items()))
        else:
            parts.append(f"{name}: {change}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def subjects(ledger: Ledger, user: str, org: str | None) -> tuple[SQL, list[str]]:
    """The ids the trail knows `user` by (an id, or a userName several users had)."""
    sql = _caught_up(ledger)
    with sql.transaction(commit=False) as cursor:
        ids = audit.subject_ids(cursor, _org_id(ledger, org), user)
    if not ids:
        raise UsageError(f"no subject {user!r} in the audit trail")
    return sql, list(ids)


def add_commands(commands: Commands) -> None:
    actions = family(commands, "audit", "the audit trail, for reviewers")
    parser = actions.add_parser("list", help="audit entries, oldest first, streamed")
    parser.add_argument("--org", help="only this organization")
    parser.add_argument("--subject", help="a user's or group's id, or its userName/displayName")
    parser.add_argument("--actor", help="a token id, or an actor's name (token name, OS user)")
    parser.add_argument(
        "--action", action="append", default=[], help="e.g. user.deactivated; repeatable"
    )
    parser.add_argument("--since", help="from this ISO date or date-time (UTC unless given)")
    parser.add_argument("--until", help="before this ISO date or date-time")
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, list_entries)
    parser = actions.add_parser("history", help="every change of one user, oldest first")
    parser.add_argument("user", metavar="USER", help="the user's id or userName")
    parser.add_argument("--org", help="the user's organization (when names repeat)")
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, history)
    parser = actions.add_parser(
        "show", help="the user's SCIM representation as it was at a time, from the events"
    )
    parser.add_argument("user", metavar="USER", help="the user's id or userName")
    parser.add_argument("--at", required=True, help="an ISO date or date-time")
    parser.add_argument("--org", help="the user's organization (when names repeat)")
    runs(parser, show)
    parser = actions.add_parser(
        "report", help="reports: revoked-token-users (users a revoked token created, still on)"
    )
    parser.add_argument("name", choices=("revoked-token-users",))
    parser.add_argument("--org", help="only this organization")
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, report)
