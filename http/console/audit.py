"""The console's Audit trail page: the organization's entries, filtered and paged by cursor
like GET /admin/v1/audit (oldest first), exported as CSV or JSON Lines (streamed), and the
hash chain's verification status, which an admin can run again in the background.

The chain covers the whole event log of this server (every organization's events), so its
status is the server's; it is kept in this process's memory, per ledger, and is lost on a
restart (`scimledger ledger verify` gives the same answer from the command line).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.response import Redirect, Stream, Template

from scimledger.http.console.pages import message, page
from scimledger.http.console.sessions import Person, person, submitted
from scimledger.http.services import Injected, Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.moments import parse_moment
from scimledger.projections import audit, chain
from scimledger.projections.sql_filters import scim_datetime

log = logging.getLogger(__name__)

PAGE_SIZE = 50
LISTED = 10  # values a change shows of a long list (the members a group gained at once)
FILTERS = ("actor", "action", "subject", "since", "until")
SUBJECT_PAGES = {"User": "/console/people/", "Group": "/console/groups/"}


class BadFilter(ValueError):
    """A filter that cannot be read (a 400 page that says which)."""


def _moment(params: dict[str, str], name: str) -> str | None:
    text = params.get(name)
    if not text:
        return None
    try:
        return scim_datetime(parse_moment(text))
    except ValueError as exc:
        raise BadFilter(f"{name}: {exc}") from exc


def _filters(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The filters given, stripped, empty ones left out."""
    given = {name: (request.query_params.get(name) or "").strip() for name in FILTERS}
    return {name: value for name, value in given.items() if value}


def _query(who: Person, params: dict[str, str], after: int = 0) -> audit.AuditQuery:
    action = params.get("action")
    if action is not None and action not in audit.ACTIONS:
        raise BadFilter(f"action: {action!r} is not an action of the audit trail")
    return audit.AuditQuery(
        org_id=str(who.signed_in.org_id),  # never another organization's entries
        subject=params.get("subject"),
        actor=params.get("actor"),
        actions=(action,) if action else (),
        since=_moment(params, "since"),
        until=_moment(params, "until"),
        after=after,
    )


def _after(request: Request[Any, Any, Any]) -> int:
    text = request.query_params.get("after") or "0"
    if not text.isdigit() or len(text) > 18:
        raise BadFilter("after: not a position in the audit trail")
    return int(text)


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _listed(values: Any) -> str:
    """A list of what happened to many (members added), its first LISTED values named."""
    if isinstance(values, list) and len(values) > LISTED:
        return f"{_value(values[:LISTED])} and {len(values) - LISTED} more"
    return _value(values)


def readable(changes: dict[str, Any]) -> list[tuple[str, str]]:
    """An entry's changes as (attribute, what happened) lines: "before -> after"."""
    lines = []
    for key, change in audit.flattened(changes).items():
        if isinstance(change, dict) and set(change) == {"before", "after"}:
            lines.append((key, f"{_value(change['before'])} -> {_value(change['after'])}"))
        elif isinstance(change, dict):
            lines.append((key, "; ".join(f"{how}: {_listed(v)}" for how, v in change.items())))
        else:
            lines.append((key, _value(change)))
    return lines


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    prefix = SUBJECT_PAGES.get(item["subject_type"])
    return {
        **item,
        "lines": readable(item["changes"]),
        "subject_href": prefix + item["subject_id"] if prefix else None,
    }


def _exports(params: dict[str, str]) -> dict[str, str]:
    query = ("?" + urlencode(params)) if params else ""
    return {
        "CSV": f"/console/audit/export.csv{query}",
        "JSON Lines": f"/console/audit/export.jsonl{query}",
    }


@get("/audit", sync_to_thread=True)
def trail(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    who = person(request, services)
    params = _filters(request)
    try:
        query = _query(who, params, _after(request))
    except BadFilter as exc:
        return message("Audit trail", f"This filter cannot be used: {exc}", who=who, status=400)
    services.audit.catch_up()
    with services.sql.transaction(commit=False) as cursor:
        entries = audit.page(cursor, query, PAGE_SIZE + 1)  # one more: is there a next page?
    following = None
    if len(entries) > PAGE_SIZE:
        entries = entries[:PAGE_SIZE]
        following = "/console/audit?" + urlencode({**params, "after": entries[-1]["position"]})
    return page(
        "audit",
        "Audit trail",
        who,
        entries=[_shown(item) for item in entries],
        filters=params,
        actions=audit.ACTIONS,
        following=following,
        paged=query.after > 0,
        exports=_exports(params),
        verification=status(services.ledger),
    )


def _export(
    request: Request[Any, Any, Any],
    services: Services,
    chunks: Callable[[Callable[[], Any], audit.AuditQuery], Iterator[bytes]],
    media_type: str,
    filename: str,
) -> Stream | Template:
    who = person(request, services)
    try:
        query = _query(who, _filters(request))
    except BadFilter as exc:
        return message("Audit trail", f"This filter cannot be used: {exc}", who=who, status=400)
    services.audit.catch_up()
    return Stream(
        chunks(lambda: services.sql.transaction(commit=False), query),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@get("/audit/export.csv", sync_to_thread=True)
def export_csv(request: Request[Any, Any, Any], services: Injected[Services]) -> Stream | Template:
    return _export(request, services, audit.csv_chunks, "text/csv", "audit.csv")


@get("/audit/export.jsonl", sync_to_thread=True)
def export_jsonl(
    request: Request[Any, Any, Any], services: Injected[Services]
) -> Stream | Template:
    return _export(request, services, audit.jsonl_chunks, "application/jsonl", "audit.jsonl")


# Verifying the hash chain


@dataclass(frozen=True)
class Status:
    """The latest verification of the chain in this process."""

    started: datetime | None = None
    finished: datetime | None = None
    checked: int = 0  # events checked so far
    total: int = 0  # events in the log when it started
    result: chain.Verification | None = None
    failure: str | None = None  # it could not run to the end (the database went away)

    @property
    def running(self) -> bool:
        return self.started is not None and self.finished is None


class Verifications:
    """The latest verification of each ledger's chain, run in a background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: weakref.WeakKeyDictionary[Ledger, Status] = weakref.WeakKeyDictionary()

    def status(self, ledger: Ledger) -> Status:
        with self._lock:
            return self._status.get(ledger, Status())

    def _update(self, ledger: Ledger, **changes: Any) -> None:
        with self._lock:
            self._status[ledger] = replace(self._status.get(ledger, Status()), **changes)

    def start(self, ledger: Ledger) -> bool:
        """Starts a verification unless one is running; whether it started."""
        with self._lock:
            if self._status.get(ledger, Status()).running:
                return False
            self._status[ledger] = Status(started=datetime.now(UTC))
        threading.Thread(
            target=self._run, args=(ledger,), name="chain verification", daemon=True
        ).start()
        return True

    def _run(self, ledger: Ledger) -> None:
        try:
            self._update(ledger, total=ledger.recorder.max_notification_id() or 0)
            result = chain.extend_and_verify(
                ledger, progress=lambda checked: self._update(ledger, checked=checked)
            )
        except Exception:  # the page says so; the cause is for the operator's log
            log.exception("the chain verification started from the console failed")
            failure = "it failed on the server; the cause is in the server's log"
            self._update(ledger, finished=datetime.now(UTC), failure=failure)
            return
        self._update(ledger, finished=datetime.now(UTC), checked=result.checked, result=result)


VERIFICATIONS = Verifications()


def status(ledger: Ledger) -> Status:
    return VERIFICATIONS.status(ledger)


@post("/audit/verify")
async def verify_now(request: Request[Any, Any, Any], services: Injected[Services]) -> Redirect:
    def start(who: Person, form: FormMultiDict) -> None:
        VERIFICATIONS.start(services.ledger)

    await submitted(request, services, start)
    return Redirect("/console/audit#verification", status_code=303)


ROUTES = [trail, export_csv, export_jsonl, verify_now]
