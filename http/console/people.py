"""The console's people and groups: search and lists, a user's and a group's page with its
history from the audit trail, and a user's state at a date and time (Ledger.user_at).

Every value shown here came from an identity provider and may be hostile: pages show it as
text (the templates escape everything), and every query parameter is bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from scimledger.http.console.audit import readable
from scimledger.http.console.pages import message, page
from scimledger.http.console.sessions import Person, person, submitted
from scimledger.http.errors import ScimError
from scimledger.http.inputs import resource_id
from scimledger.http.services import Injected, Services
from scimledger.ledger.moments import parse_moment
from scimledger.ledger.schemas import ENTERPRISE, USER_SCHEMAS, ResourceSchemas
from scimledger.projections import audit, scim
from scimledger.projections.filters import AttrPath, Compare, Filter
from scimledger.projections.sql import Cursor

PAGE = 50  # people, groups, members and history entries a page shows
MAX_SEARCH = 200  # characters of a search
MAX_PAGE_NUMBER = 100_000
MAX_POSITION = 2**62
MAX_MOMENT = 40  # characters of a date and time
STATUSES = ("all", "active", "inactive")

T = TypeVar("T")


def _bad(detail: str) -> ScimError:
    return ScimError(400, detail)


def _search(text: str | None) -> str:
    value = (text or "").strip()
    if len(value) > MAX_SEARCH:
        raise _bad(f"A search is at most {MAX_SEARCH} characters long.")
    if "\x00" in value:
        raise _bad("A search cannot hold a NUL character.")
    return value


def _number(text: str | None, name: str, high: int) -> int | None:
    if text is None or text == "":
        return None
    digits = text.isascii() and text.isdigit() and len(text) <= len(str(high))
    if not digits or not 1 <= int(text) <= high:
        raise _bad(f"{name} must be a whole number from 1 to {high}.")
    return int(text)


def _position(text: str | None, name: str) -> str | None:
    found = _number(text, name, MAX_POSITION)
    return str(found) if found is not None else None


def _moment(text: str | None) -> tuple[datetime | None, str | None]:
    """The moment a state-at form asks for, or what is wrong with it."""
    if not text:
        return None, None
    if len(text) > MAX_MOMENT:
        return None, "That date and time is too long: pick one with the date and time field."
    try:
        return parse_moment(text), None
    except ValueError as exc:
        return None, f"{exc}. Give a date and time such as 2026-01-31T12:00 (UTC)."


def _person_key(text: str | None, name: str) -> str | None:
    """Where a page of people starts: after or before a person, by id."""
    if text is None:
        return None
    found = resource_id(text)
    if found is None:
        raise _bad(f"{name} must be a person's id.")
    return str(found)


def _href(path: str, **params: Any) -> str:
    kept = {name: value for name, value in params.items() if value not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def status_filter(status: str) -> Filter | None:
    """The SCIM filter of the people shown: all, the active or the inactive ones. (What is
    typed in the search box is not a filter: see `scim.users_by_name`.)"""
    return None if status == "all" else Compare(AttrPath("active"), "eq", status == "active")


# Values as people read them


def shown(value: Any) -> str:
    """A SCIM value as text: strings as they are, a complex value's `value` with its other
    parts in brackets, multiple values separated by semicolons."""
    if value is None or value in ("", [], {}):
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(shown(item) for item in value)
    if isinstance(value, dict):
        parts = ", ".join(f"{key}: {shown(item)}" for key, item in value.items() if key != "value")
        if "value" not in value:
            return parts
        return f"{shown(value['value'])} ({parts})" if parts else shown(value["value"])
    return str(value)


def facts(
    attributes: dict[str, Any], schemas: ResourceSchemas = USER_SCHEMAS
) -> list[tuple[str, list[str]]]:
    """A user's attributes as rows of a definition list: a complex attribute's parts on rows
    of their own (`name.givenName`), the enterprise extension's attributes by their names,
    a declared extension's by its schema's name and theirs (`AcmeUser.costCenter`; only
    what its declaration has now: `schemas`), each of a multi-valued attribute's values on
    a line of its own."""
    shown, _ = schemas.visible(attributes)
    rows: list[tuple[str, list[str]]] = []
    for key, value in shown.items():
        if isinstance(value, dict):
            extension = schemas.extension(key) if key.startswith("urn:") else None
            if extension is None:
                prefix = f"{key}."
            else:
                prefix = "" if extension.schema is ENTERPRISE else f"{extension.schema.name}."
            for part, item in value.items():
                rows.append((f"{prefix}{part}", _lines(item)))
        else:
            rows.append((key, _lines(value)))
    return rows


def _lines(value: Any) -> list[str]:
    return [shown(item) for item in value] if isinstance(value, list) and value else [shown(value)]


def display_name(attributes: dict[str, Any]) -> str:
    name = attributes.get("name")
    formatted = name.get("formatted") if isinstance(name, dict) else None
    return str(attributes.get("displayName") or formatted or "")


# Lists read by keyset


@dataclass(frozen=True)
class Slice(Generic[T]):
    """One page of a list read by keyset: its items, and the keys of the pages around it
    (None: there is none)."""

    items: list[T]
    earlier: str | None  # the previous page ends before this one
    later: str | None  # the next page starts after this one


def keyset(
    fetch: Callable[[str | None, str | None, int], list[T]],
    key: Callable[[T], str],
    after: str | None,
    before: str | None,
) -> Slice[T]:
    """The page after `after` or before `before` (or the first); `fetch(after, before,
    limit)` gives the `limit` items nearest to its key, in the list's order."""
    items = fetch(after, before, PAGE + 1)
    more = len(items) > PAGE
    if not items and (after or before):
        return keyset(fetch, key, None, None)  # past either end: the first page
    if before is not None:
        items = items[-PAGE:]
        return Slice(items, key(items[0]) if more else None, key(items[-1]))
    items = items[:PAGE]
    return Slice(items, key(items[0]) if after else None, key(items[-1]) if more else None)


# History: a subject's audit entries, newest first


def _history(
    cursor: Cursor, org_id: UUID, subject_id: str, older: str | None, newer: str | None
) -> Slice[dict[str, Any]]:
    """A subject's audit entries, newest first: the page older than `older`, or newer than
    `newer`; each with its changes as the audit trail's page reads them."""
    query = audit.AuditQuery(org_id=str(org_id), subject_id=subject_id)

    def fetch(after: str | None, before: str | None, limit: int) -> list[dict[str, Any]]:
        if before is not None:  # the entries just newer than `before`
            return audit.page(cursor, replace(query, after=int(before)), limit)[::-1]
        bounded = replace(query, before=int(after)) if after is not None else query
        return audit.page(cursor, bounded, limit, newest_first=True)

    found = keyset(fetch, lambda entry: str(entry["position"]), older, newer)
    for entry in found.items:
        entry["lines"] = readable(entry["changes"])
    return found


# Pages


PageNumber = Annotated[str | None, QueryParameter(name="page")]


def _numbered(
    path: str, number: int, total: int, **params: Any
) -> tuple[str | None, str | None, str]:
    """The links to the pages before and after page `number` of a list of `total` items
    (None where there is none), and to its first page."""
    start = _href(path, **params)
    previous = _href(path, **params, page=number - 1) if number > 2 else None
    following = _href(path, **params, page=number + 1) if number * PAGE < total else None
    return start if number == 2 else previous, following, start


@get("/people", sync_to_thread=True)
def people(
    request: Request[Any, Any, Any],
    services: Injected[Services],
    *,
    q: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    after: FromQuery[str | None] = None,
    before: FromQuery[str | None] = None,
) -> Template:
    who = person(request, services)
    text = _search(q)
    chosen = status or "all"
    if chosen not in STATUSES:
        raise _bad("Show all, active or inactive people.")
    where = status_filter(chosen)
    after, before = _person_key(after, "after"), _person_key(before, "before")
    services.scim.catch_up()
    with services.sql.read() as cursor:
        found = keyset(
            lambda after, before, limit: scim.users_by_name(
                cursor,
                who.signed_in.org_id,
                where,
                search=text,
                after=after,
                before=before,
                limit=limit,
            ),
            lambda row: row.id,
            after,
            before,
        )
    path = "/console/people"
    return page(
        "people",
        "People",
        who,
        search=text,
        showing=chosen,
        statuses=STATUSES,
        people=[(row, display_name(row.attributes)) for row in found.items],
        previous=_href(path, q=text, status=chosen, before=found.earlier)
        if found.earlier
        else None,
        next=_href(path, q=text, status=chosen, after=found.later) if found.later else None,
    )


@get("/groups", sync_to_thread=True)
def groups(
    request: Request[Any, Any, Any],
    services: Injected[Services],
    q: FromQuery[str | None] = None,
    page_number: PageNumber = None,
) -> Template:
    who = person(request, services)
    text = _search(q)
    number = _number(page_number, "page", MAX_PAGE_NUMBER) or 1
    query = scim.Query(
        where=Compare(AttrPath("displayName"), "co", text) if text else None,
        sort_by=AttrPath("displayName"),
        start_index=(number - 1) * PAGE + 1,
        count=PAGE,
    )
    services.scim.catch_up()
    with services.sql.read() as cursor:
        total, rows = scim.list_groups(cursor, who.signed_in.org_id, query)
        counts = scim.member_counts(cursor, [row.id for row in rows])
    previous, following, start = _numbered("/console/groups", number, total, q=text)
    return page(
        "groups",
        "Groups",
        who,
        search=text,
        groups=[(row, counts.get(row.id, 0)) for row in rows],
        total=total,
        first=query.start_index,
        previous=previous,
        next=following,
        start=start,
    )


def _resource(text: str) -> str:
    found = resource_id(text)
    if found is None:
        raise LookupError(text)
    return str(found)


@get("/people/{user_id:str}", sync_to_thread=True)
def user(
    user_id: FromPath[str],
    request: Request[Any, Any, Any],
    services: Injected[Services],
    *,
    at: FromQuery[str | None] = None,
    older: FromQuery[str | None] = None,
    newer: FromQuery[str | None] = None,
) -> Template:
    who = person(request, services)
    org_id = who.signed_in.org_id
    older, newer = _position(older, "older"), _position(newer, "newer")
    services.scim.catch_up()
    services.audit.catch_up()
    with services.sql.read() as cursor:
        row = scim.get_user(cursor, org_id, _resource(user_id))
        if row is None:  # deleted, or erased: what the audit trail has of them
            gone = _gone(cursor, org_id, _resource(user_id))
            history = _history(cursor, org_id, gone.id, older, newer)
            path = f"/console/people/{gone.id}"
            return page(
                "user_gone",
                "Erased user" if gone.erased else f"Deleted user {gone.name}",
                who,
                page="people",
                subject=gone,
                history=history,
                newer=_href(path, newer=history.earlier) if history.earlier else None,
                older=_href(path, older=history.later) if history.later else None,
            )
        history = _history(cursor, org_id, row.id, older, newer)
    moment, problem = _moment(at)
    then = services.ledger.user_at(org_id, UUID(row.id), moment) if moment else None
    path = f"/console/people/{row.id}"
    return page(
        "user",
        display_name(row.attributes) or row.attributes["userName"],
        who,
        400 if problem else 200,
        page="people",  # its place in the navigation
        user=row,
        facts=facts(row.attributes, services.ledger.declared(org_id).user),
        asked=moment,
        problem=problem,
        then=then,
        then_facts=facts(then.attributes, services.ledger.declared(org_id).user) if then else [],
        history=history,
        newer=_href(path, at=at, newer=history.earlier) if history.earlier else None,
        older=_href(path, at=at, older=history.later) if history.later else None,
    )


@dataclass(frozen=True)
class Subject:
    """A user as the erasure pages show them: live (`active` set) or deleted."""

    id: str
    name: str
    active: bool | None  # None once deleted
    erased: bool = False


def _gone(cursor: Cursor, org_id: UUID, user_id: str) -> Subject:
    """A user of the organization's that the read model no longer has: their last entry in
    the audit trail says whether they were deleted or erased; LookupError if it has none."""
    query = audit.AuditQuery(org_id=str(org_id), subject_id=user_id)
    last = audit.page(cursor, query, 1, newest_first=True)
    if not last or last[0]["subject_type"] != "User":
        raise LookupError(user_id)
    return Subject(
        id=user_id,
        name=last[0]["subject_name"] or user_id,
        active=None,
        erased=last[0]["action"] == "user.erased",
    )


def _subject(services: Services, org_id: UUID, user_id: str) -> Subject:
    services.scim.catch_up()
    services.audit.catch_up()
    with services.sql.read() as cursor:
        row = scim.get_user(cursor, org_id, _resource(user_id))
        if row is None:
            return _gone(cursor, org_id, _resource(user_id))
    name = display_name(row.attributes) or str(row.attributes["userName"])
    return Subject(id=row.id, name=name, active=bool(row.active))


@get("/people/{user_id:str}/erase", sync_to_thread=True)
def confirm_erase(
    user_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Template:
    who = person(request, services)
    who.must_be_admin()
    subject = _subject(services, who.signed_in.org_id, user_id)
    if subject.erased:
        return message("Already erased", "This user's personal data is erased already.", who=who)
    return page("user_erase", f"Erase {subject.name}?", who, page="people", subject=subject)


@post("/people/{user_id:str}/erase")
async def erase(
    user_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Template:
    def act(who: Person, form: FormMultiDict) -> Template:
        subject = _subject(services, who.signed_in.org_id, user_id)
        services.ledger.erase_user(
            who.context(request),
            UUID(subject.id),
            form.get("reason") or "",
            force=form.get("force") == "yes",
        )
        return message(
            "Personal data erased",
            "Their data key is destroyed: their values read [erased] everywhere, and their"
            " history keeps its entries.",
            who=who,
            back=f"/console/people/{subject.id}",
            back_label="Their history",
        )

    return await submitted(request, services, act)


@get("/groups/{group_id:str}", sync_to_thread=True)
def group(
    group_id: FromPath[str],
    request: Request[Any, Any, Any],
    services: Injected[Services],
    *,
    after: FromQuery[str | None] = None,
    before: FromQuery[str | None] = None,
    older: FromQuery[str | None] = None,
    newer: FromQuery[str | None] = None,
) -> Template:
    who = person(request, services)
    org_id = who.signed_in.org_id
    after, before = _person_key(after, "after"), _person_key(before, "before")
    older, newer = _position(older, "older"), _position(newer, "newer")
    services.scim.catch_up()
    services.audit.catch_up()
    with services.sql.read() as cursor:
        found = scim.get_group(cursor, org_id, _resource(group_id))
        if found is None:
            raise LookupError(group_id)
        members = keyset(
            lambda after, before, limit: scim.group_members(
                cursor, found.id, after=after, before=before, limit=limit
            ),
            lambda row: row.id,
            after,
            before,
        )
        count = scim.member_counts(cursor, [found.id])[found.id]
        history = _history(cursor, org_id, found.id, older, newer)
    path = f"/console/groups/{found.id}"
    return page(
        "group",
        found.display_name,
        who,
        page="groups",  # its place in the navigation
        group=found,
        count=count,
        members=[(row, display_name(row.attributes)) for row in members.items],
        previous=_href(path, before=members.earlier) if members.earlier else None,
        next=_href(path, after=members.later) if members.later else None,
        history=history,
        newer=_href(path, newer=history.earlier) if history.earlier else None,
        older=_href(path, older=history.later) if history.later else None,
    )


ROUTES = [people, groups, user, confirm_erase, erase, group]
