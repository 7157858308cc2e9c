"""`scimledger audit ...`: the audit trail for reviewers, streamed, and point-in-time state."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO
from uuid import UUID

from scimledger.http.responses import SCIM_BASE_PATH
from scimledger.http.users import render_user_at
from scimledger.ledger.application import Ledger
from scimledger.projections import audit
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL


class AuditUsageError(ValueError):
    pass


def parse_time(text: str) -> datetime:
    try:
        return audit.parse_time(text)
    except ValueError as exc:
        raise AuditUsageError(str(exc)) from exc


def caught_up(ledger: Ledger) -> SQL:
    """The trail brought up to the end of the log (also when no server runs)."""
    Runner(ledger, audit.AuditProjection()).run_once()
    return SQL(ledger)


def org_id(ledger: Ledger, org: str | None) -> str | None:
    if org is None:
        return None
    found = ledger.organization_id(org)
    if found is None:
        raise AuditUsageError(f"no organization {org!r}")
    return str(found)


def _summary(changes: dict[str, Any]) -> str:
    parts = []
    for name, change in changes.items():
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


def write(entries: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """Writes entries as they come (constant memory); returns how many."""
    count = 0
    if fmt == "jsonl":
        for item in entries:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(audit.COLUMNS)
        for item in entries:
            writer.writerow(audit.csv_row(item))
            count += 1
    else:
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
            out.write(
                f"#{item['position']} {item['occurred_at']} {item['action']} {subject}\n"
                f"    by {actor}; {request}\n"
            )
            summary = _summary(item["changes"])
            if summary:
                out.write(f"    {summary}\n")
            count += 1
    return count


def write_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: str, out: TextIO) -> None:
    """A report: rows of plain values, as an aligned table, jsonl or csv."""
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([row[c] for c in columns] for row in rows)
    else:
        cells = [list(columns)] + [
            ["" if row[c] is None else str(row[c]) for c in columns] for row in rows
        ]
        widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
        for line in cells:
            out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
            out.write("\n")


def history(ledger: Ledger, user: str, org: str | None) -> tuple[SQL, list[str]]:
    sql = caught_up(ledger)
    with sql.transaction(commit=False) as cursor:
        ids = audit.subject_ids(cursor, org_id(ledger, org), user)
    if not ids:
        raise AuditUsageError(f"no subject {user!r} in the audit trail")
    return sql, list(ids)


def state_at(ledger: Ledger, user: str, org: str | None, at: datetime) -> dict[str, Any]:
    """The user's SCIM representation as it was at `at`, rebuilt from its events."""
    _, ids = history(ledger, user, org)
    for subject_id in reversed(ids):  # the latest user of that name first
        found = ledger.user_at(None, UUID(subject_id), at)
        if found is not None:
            return render_user_at(found, SCIM_BASE_PATH)
    raise AuditUsageError(f"no user {user!r} existed at {at.isoformat()}")


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
