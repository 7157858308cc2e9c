"""`scimledger`: the operator's command line.

Every command takes `--database URL` (or $SCIMLEDGER_DATABASE_URL) and works while a server
runs on the same database.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from scimledger.http.rate_limit import RateLimit
from scimledger.ledger import availability
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.database import DEFAULT_URL, ENV_VAR, DatabaseURL, InvalidDatabaseURL
from scimledger.ledger.errors import InvalidToken, LedgerError
from scimledger.ledger.organizations import normalize_slug
from scimledger.ledger.tokens import SCOPES, TokenRequestError, parse_expiry, parse_grace
from scimledger.projections import audit, chain
from scimledger.projections.rebuild import REBUILDABLE, Progress, RebuildConflict, rebuild
from scimledger.projections.runner import Runner, all_projections, status
from scimledger.projections.sql import SQL
from scimledger.projections.sql_filters import scim_datetime
from scimledger.projections.tokens import COLUMNS as TOKEN_COLUMNS
from scimledger.projections.tokens import TokensProjection, list_tokens
from scimledger.scripts import audit as audit_cli


class UsageError(Exception):
    pass


def _add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        metavar="URL",
        help=f"sqlite:///path/file.db or postgresql://user@host:port/db "
        f"(default: ${ENV_VAR}, else {DEFAULT_URL})",
    )


def _add_token_commands(commands: Any) -> None:
    """scimledger tokens issue|list|rotate|revoke"""
    tokens = commands.add_parser("tokens", help="issue, list, rotate and revoke API tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    issue = token_commands.add_parser("issue", help="issue a token (printed once)")
    issue.add_argument("--org", required=True, help="organization (created if new)")
    issue.add_argument("--name", required=True, help='a name such as "Okta"')
    issue.add_argument(
        "--expires", required=True, help="never, a number of days such as 30d, or an ISO date"
    )
    issue.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help="what the token may do: scim (provisioning, the default) or audit:read (the"
        " audit API); repeatable",
    )
    issue.add_argument("--by", metavar="EMAIL", help="the organization admin it is issued for")
    issue.add_argument("--json", action="store_true", help="print id, name, org, token, expires_at")
    _add_database(issue)
    listing = token_commands.add_parser("list", help="tokens and their status (no secrets)")
    listing.add_argument("--org", help="only this organization")
    listing.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    _add_database(listing)
    rotate = token_commands.add_parser(
        "rotate", help="issue a successor; the old token works until the grace period ends"
    )
    rotate.add_argument("token_id", metavar="ID", help="the id `tokens issue --json` printed")
    rotate.add_argument("--grace", default="24h", help="e.g. 24h, 30m, 7d, or 0 (default 24h)")
    rotate.add_argument("--by", metavar="EMAIL", help="issue the successor for this admin")
    rotate.add_argument(
        "--json", action="store_true", help="print id, name, org, token, expires_at"
    )
    _add_database(rotate)
    revoke = token_commands.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id", metavar="ID", help="the id `tokens issue --json` printed")
    _add_database(revoke)


def _add_admin_commands(commands: Any) -> None:
    """scimledger admins add|remove|list"""
    admins = commands.add_parser("admins", help="an organization's admins (token issuers)")
    admin_commands = admins.add_subparsers(dest="admins_command", required=True, metavar="ACTION")
    for action, text in (("add", "make EMAIL an admin"), ("remove", "remove an admin")):
        parser = admin_commands.add_parser(action, help=text)
        parser.add_argument("email", metavar="EMAIL")
        parser.add_argument("--org", required=True)
        _add_database(parser)
    listing = admin_commands.add_parser("list", help="the organization's admins")
    listing.add_argument("--org", required=True)
    _add_database(listing)


def _add_settings_commands(commands: Any) -> None:
    """scimledger settings show|set"""
    settings = commands.add_parser("settings", help="an organization's settings")
    actions = settings.add_subparsers(dest="settings_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print the settings as JSON")
    show.add_argument("--org", required=True)
    _add_database(show)
    change = actions.add_parser("set", help="change settings")
    change.add_argument("--org", required=True)
    change.add_argument(
        "--departed-policy",
        choices=("warn", "revoke-after"),
        help="what happens to the tokens of an admin who left",
    )
    change.add_argument("--departed-grace", help="for revoke-after: e.g. 7d, 24h, 0")
    change.add_argument("--base-url", help="the SCIM connector base URL admins should use")
    _add_database(change)


def _add_projection_commands(commands: Any) -> None:
    """scimledger projections status"""
    projections = commands.add_parser("projections", help="the read models and their lag")
    actions = projections.add_subparsers(
        dest="projections_command", required=True, metavar="ACTION"
    )
    show = actions.add_parser(
        "status", help="each projection's position, the log's head, the lag; exit 1 if stalled"
    )
    show.add_argument(
        "--stalled-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="a projection whose oldest unapplied event is older than this is stalled",
    )
    show.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    _add_database(show)
    again = actions.add_parser(
        "rebuild",
        help="rebuild read models from the log into new tables, then switch over to them",
        description="Replays the log into new tables while the current read model keeps "
        "serving, then switches to them in one transaction and drops the old ones. "
        "Interrupted, it continues where it stopped when run again.",
    )
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", choices=sorted(REBUILDABLE), help="the projection")
    which.add_argument("--all", action="store_true", help="every read model")
    again.add_argument(
        "--batch-size", type=int, default=5000, help="events per transaction (default 5000)"
    )
    _add_database(again)


def _add_audit_commands(commands: Any) -> None:
    """scimledger audit list|history|show|report"""
    audit_parser = commands.add_parser("audit", help="the audit trail, for reviewers")
    audit_commands = audit_parser.add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    listing = audit_commands.add_parser("list", help="audit entries, oldest first, streamed")
    listing.add_argument("--org", help="only this organization")
    listing.add_argument("--subject", help="a user's or group's id, or its userName/displayName")
    listing.add_argument("--actor", help="a token id, or an actor's name (token name, OS user)")
    listing.add_argument(
        "--action", action="append", default=[], help="e.g. user.deactivated; repeatable"
    )
    listing.add_argument("--since", help="from this ISO date or date-time (UTC unless given)")
    listing.add_argument("--until", help="before this ISO date or date-time")
    listing.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    _add_database(listing)
    history_parser = audit_commands.add_parser(
        "history", help="every change of one user, oldest first"
    )
    history_parser.add_argument("user", metavar="USER", help="the user's id or userName")
    history_parser.add_argument("--org", help="the user's organization (when names repeat)")
    history_parser.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    _add_database(history_parser)
    show = audit_commands.add_parser(
        "show", help="the user's SCIM representation as it was at a time, from the events"
    )
    show.add_argument("user", metavar="USER", help="the user's id or userName")
    show.add_argument("--at", required=True, help="an ISO date or date-time")
    show.add_argument("--org", help="the user's organization (when names repeat)")
    _add_database(show)

    report = audit_commands.add_parser(
        "report", help="reports: revoked-token-users (users a revoked token created, still on)"
    )
    report.add_argument("name", choices=("revoked-token-users",))
    report.add_argument("--org", help="only this organization")
    report.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    _add_database(report)


def _add_ledger_commands(commands: Any) -> None:
    """scimledger ledger verify|digest"""
    ledger_parser = commands.add_parser("ledger", help="tamper evidence of the event log")
    ledger_commands = ledger_parser.add_subparsers(
        dest="ledger_command", required=True, metavar="ACTION"
    )
    verify = ledger_commands.add_parser(
        "verify", help="recompute the hash chain over every event; exit 1 at the first break"
    )
    verify.add_argument("--digest", metavar="FILE", help="also check against an exported digest")
    verify.add_argument("--key", metavar="FILE", help="the key the digest was signed with")
    _add_database(verify)
    digest = ledger_commands.add_parser(
        "digest", help="print the verified chain head as a digest to keep outside the database"
    )
    digest.add_argument("--key", metavar="FILE", help="sign the digest with HMAC-SHA256")
    _add_database(digest)


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

    serve = commands.add_parser("serve", help="run the SCIM server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--projections",
        choices=("in-process", "external"),
        default="in-process",
        help="in-process (default): this server keeps the read models up to date (unless "
        "another process already does); external: `scimledger project` does, and this "
        "server only waits for it",
    )
    serve.add_argument(
        "--rate-limit",
        type=_non_negative(float),
        default=0,
        metavar="PER_SECOND",
        help="requests per second each token may make, sustained (default 0: no limit); "
        "over it, 429 with Retry-After",
    )
    serve.add_argument(
        "--rate-burst",
        type=_non_negative(int, least=1),
        metavar="N",
        help="requests a token may make at once above the rate (default: twice the rate)",
    )
    _add_database(serve)
    project = commands.add_parser(
        "project",
        help="keep the read models up to date in a process of their own",
        description="Runs every projection as its single consumer (one per database: a "
        "second `project` stands by and takes over when the first stops). Use with "
        "`serve --projections external` for several API workers.",
    )
    _add_database(project)

    _add_token_commands(commands)
    _add_admin_commands(commands)
    _add_settings_commands(commands)
    _add_projection_commands(commands)
    _add_audit_commands(commands)
    _add_ledger_commands(commands)
    return parser


def _ledger(url: str | None) -> Ledger:
    return Ledger(DatabaseURL.from_setting(url))


def cmd_tokens_issue(args: argparse.Namespace) -> int:
    expires_at = parse_expiry(args.expires, datetime.now(UTC))
    ledger = _ledger(args.database)
    try:
        issued = ledger.issue_token(
            org=args.org,
            name=args.name,
            expires_at=expires_at,
            actor=Actor.operator("scimledger tokens issue"),
            request=RequestInfo.local(),
            scopes=tuple(dict.fromkeys(args.scope or ["scim"])),
            by=args.by,
        )
    finally:
        ledger.close()
    _print_issued(issued, args.json)
    return 0


def _token_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError as exc:
        raise UsageError(f"{text!r} is not a token id") from exc


def _print_issued(issued: IssuedToken, as_json: bool) -> None:
    expiry = issued.expires_at.isoformat() if issued.expires_at else None
    if as_json:
        print(
            json.dumps(
                {
                    "id": str(issued.id),
                    "name": issued.name,
                    "org": issued.org,
                    "token": issued.token,
                    "expires_at": expiry,
                }
            )
        )
        return
    print(issued.token)
    print(
        f"Token {issued.id} ({issued.name!r}) for organization {issued.org!r}, "
        f"expires {expiry or 'never'}. It is shown only this once: store it now.",
        file=sys.stderr,
    )


def cmd_admins(args: argparse.Namespace) -> int:
    ledger = _ledger(args.database)
    actor = Actor.operator(f"scimledger admins {args.admins_command}")
    try:
        if args.admins_command == "add":
            ledger.add_admin(args.org, args.email, actor, RequestInfo.local())
        elif args.admins_command == "remove":
            ledger.remove_admin(args.org, args.email, actor, RequestInfo.local())
        else:
            for email in ledger.admins(args.org):
                print(email)
    finally:
        ledger.close()
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    ledger = _ledger(args.database)
    try:
        if args.settings_command == "set":
            changes: dict[str, Any] = {}
            if args.departed_policy is not None:
                changes["departed_policy"] = args.departed_policy
            if args.departed_grace is not None:
                changes["departed_grace_seconds"] = int(
                    parse_grace(args.departed_grace).total_seconds()
                )
            if args.base_url is not None:
                changes["scim_base_url"] = args.base_url
            settings = ledger.change_settings(
                args.org, changes, Actor.operator("scimledger settings set"), RequestInfo.local()
            )
        else:
            settings = ledger.settings(args.org)
    finally:
        ledger.close()
    print(json.dumps(settings, indent=2))
    return 0


def cmd_projections_status(args: argparse.Namespace) -> int:
    ledger = _ledger(args.database)
    try:
        statuses = status(ledger, all_projections(), datetime.now(UTC))
    finally:
        ledger.close()
    rows = [
        {
            "projection": item.name,
            "position": item.position,
            "head": item.head,
            "lag_events": item.lag_events,
            "lag_seconds": round(item.lag_seconds, 1),
            "state": "stalled" if item.stalled(args.stalled_after) else "ok",
        }
        for item in statuses
    ]
    columns = ("projection", "position", "head", "lag_events", "lag_seconds", "state")
    audit_cli.write_rows(rows, columns, args.format, sys.stdout)
    return 1 if any(row["state"] == "stalled" for row in rows) else 0


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    names = sorted(REBUILDABLE) if args.all else [args.name]
    ledger = _ledger(args.database)
    meter = ProgressMeter(sys.stderr)
    try:
        for name in names:
            try:
                done = rebuild(ledger, name, progress=meter.show, batch_size=args.batch_size)
            except RebuildConflict as exc:
                meter.finish()
                print(f"scimledger: error: {exc}", file=sys.stderr)
                return 1
            except KeyboardInterrupt:
                meter.finish()
                print(
                    f"{name}: interrupted; run the same command again to continue",
                    file=sys.stderr,
                )
                return 130
            meter.finish()
            resumed = f", continued from {done.resumed_from:,}" if done.resumed_from else ""
            print(
                f"{name}: rebuilt to position {done.position:,}{resumed}: {done.applied:,} "
                f"events in {done.seconds:.1f} s ({_rate(done.applied, done.seconds)}); "
                "now serving the new tables"
            )
    finally:
        ledger.close()
    return 0


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} events/s" if seconds > 0 else "-"


class ProgressMeter:
    """One line of progress on a terminal, redrawn; a line every 10 s elsewhere (logs)."""

    def __init__(self, stream: Any, every: float = 10.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every = every
        self._last = 0.0
        self._drawn = False

    def show(self, progress: Progress) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < self.every:
            return
        if self.tty and now - self._last < 0.2:
            return
        self._last = now
        done = 100 * progress.position / progress.head if progress.head else 100.0
        eta = progress.eta_seconds
        line = (
            f"{progress.name}: {progress.position:,}/{progress.head:,} events ({done:.0f}%), "
            f"{_rate(progress.applied, progress.seconds)}, "
            f"ETA {_duration(eta) if eta is not None else '-'}"
        )
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}")
            self._drawn = True
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = False
        self._last = 0.0


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def cmd_tokens_list(args: argparse.Namespace) -> int:
    ledger = _ledger(args.database)
    try:
        Runner(ledger, TokensProjection()).run_once()
        with SQL(ledger).transaction(commit=False) as cursor:
            views = list_tokens(
                cursor, normalize_slug(args.org) if args.org else None, datetime.now(UTC)
            )
    finally:
        ledger.close()
    rows = [view.as_dict() for view in views]
    for row in rows:
        row["scopes"] = " ".join(row["scopes"])
    audit_cli.write_rows(rows, TOKEN_COLUMNS, args.format, sys.stdout)
    return 0


def cmd_tokens_rotate(args: argparse.Namespace) -> int:
    grace = parse_grace(args.grace)
    token_id = _token_id(args.token_id)
    ledger = _ledger(args.database)
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
    finally:
        ledger.close()
    _print_issued(issued, args.json)
    print(f"The old token {token_id} keeps working for {args.grace}.", file=sys.stderr)
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    token_id = _token_id(args.token_id)
    ledger = _ledger(args.database)
    try:
        token = ledger.revoke_token(
            token_id, Actor.operator("scimledger tokens revoke"), RequestInfo.local()
        )
    finally:
        ledger.close()
    print(f"Token {token.id} ({token.name!r}) is revoked.", file=sys.stderr)
    return 0


def _key(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the key file: {exc}") from exc


def _verified(ledger: Ledger) -> chain.Verification:
    """Extends the chain to the end of the log, then verifies all of it."""
    Runner(ledger, chain.ChainProjection()).run_once()
    return chain.verify(ledger)


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    key = _key(args.key)
    try:
        digest_text = Path(args.digest).read_text() if args.digest else None
    except OSError as exc:
        raise UsageError(f"cannot read the digest: {exc}") from exc
    ledger = _ledger(args.database)
    try:
        result = _verified(ledger)
        problem = result.problem
        if problem is None and digest_text is not None:
            problem = chain.check_digest(ledger, digest_text, key)
    finally:
        ledger.close()
    if problem is not None:
        print(f"BROKEN after {result.checked} good events: {problem}", file=sys.stderr)
        return 1
    print(
        f"OK: {result.checked} events verified; head at position {result.head_position}:"
        f" {result.head_link}" + (" (matches the digest)" if digest_text else "")
    )
    return 0


def cmd_ledger_digest(args: argparse.Namespace) -> int:
    key = _key(args.key)
    ledger = _ledger(args.database)
    try:
        result = _verified(ledger)
    finally:
        ledger.close()
    if not result.ok:
        print(f"BROKEN: {result.problem}; no digest of a broken chain", file=sys.stderr)
        return 1
    print(chain.digest(result, key))
    return 0


def cmd_audit_list(args: argparse.Namespace) -> int:
    ledger = _ledger(args.database)
    try:
        sql = audit_cli.caught_up(ledger)
        query = audit.AuditQuery(
            org_id=audit_cli.org_id(ledger, args.org),
            subject=args.subject,
            actor=args.actor,
            actions=tuple(args.action),
            since=scim_datetime(audit_cli.parse_time(args.since)) if args.since else None,
            until=scim_datetime(audit_cli.parse_time(args.until)) if args.until else None,
        )
        audit_cli.write(
            audit.stream(lambda: sql.transaction(commit=False), query), args.format, sys.stdout
        )
    finally:
        ledger.close()
    return 0


def cmd_audit_history(args: argparse.Namespace) -> int:
    ledger = _ledger(args.database)
    try:
        sql, ids = audit_cli.history(ledger, args.user, args.org)
        for subject_id in ids:
            query = audit.AuditQuery(subject=subject_id)
            audit_cli.write(
                audit.stream(lambda: sql.transaction(commit=False), query),
                args.format,
                sys.stdout,
            )
    finally:
        ledger.close()
    return 0


def cmd_audit_show(args: argparse.Namespace) -> int:
    ledger = _ledger(args.database)
    try:
        resource = audit_cli.state_at(ledger, args.user, args.org, audit_cli.parse_time(args.at))
    finally:
        ledger.close()
    audit_cli.print_json(resource)
    return 0


def cmd_audit_report(args: argparse.Namespace) -> int:
    ledger = _ledger(args.database)
    try:
        sql = audit_cli.caught_up(ledger)
        with sql.transaction(commit=False) as cursor:
            rows = audit.revoked_token_users(cursor, audit_cli.org_id(ledger, args.org))
    finally:
        ledger.close()
    audit_cli.write_rows(rows, audit.REVOKED_TOKEN_USERS_COLUMNS, args.format, sys.stdout)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from scimledger.scripts.serve import serve  # noqa: PLC0415 (only serve needs uvicorn)

    return serve(
        DatabaseURL.from_setting(args.database),
        args.host,
        args.port,
        project_in_process=args.projections == "in-process",
        rate_limit=RateLimit(args.rate_limit, args.rate_burst),
    )


def cmd_project(args: argparse.Namespace) -> int:
    from scimledger.scripts.serve import project  # noqa: PLC0415

    return project(DatabaseURL.from_setting(args.database))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        ("serve", None): cmd_serve,
        ("project", None): cmd_project,
        ("tokens", "issue"): cmd_tokens_issue,
        ("tokens", "revoke"): cmd_tokens_revoke,
        ("tokens", "list"): cmd_tokens_list,
        ("tokens", "rotate"): cmd_tokens_rotate,
        ("admins", "add"): cmd_admins,
        ("admins", "remove"): cmd_admins,
        ("admins", "list"): cmd_admins,
        ("settings", "show"): cmd_settings,
        ("settings", "set"): cmd_settings,
        ("projections", "status"): cmd_projections_status,
        ("projections", "rebuild"): cmd_projections_rebuild,
        ("ledger", "verify"): cmd_ledger_verify,
        ("ledger", "digest"): cmd_ledger_digest,
        ("audit", "list"): cmd_audit_list,
        ("audit", "history"): cmd_audit_history,
        ("audit", "show"): cmd_audit_show,
        ("audit", "report"): cmd_audit_report,
    }
    action = next(
        (
            getattr(args, f"{group}_command", None)
            for group in ("tokens", "admins", "settings", "projections", "ledger", "audit")
            if getattr(args, f"{group}_command", None)
        ),
        None,
    )
    handler = handlers[(args.command, action)]
    try:
        return handler(args)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UsageError, InvalidDatabaseURL, TokenRequestError, audit_cli.AuditUsageError) as exc:
        print(f"scimledger: error: {exc}", file=sys.stderr)
        return 2
    except LedgerError as exc:
        print(f"scimledger: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        cause = _database_failure(exc)
        if cause is None:
            raise
        database = DatabaseURL.from_setting(getattr(args, "database", None)).redacted()
        message = f"the database {database} is unavailable: {cause}"
        print(f"scimledger: error: {message}", file=sys.stderr)
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
