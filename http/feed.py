"""The events feed, `GET /admin/v1/events` (tokens with the `events:read` scope): the
organization's changes to its users and groups in log order (projections.feed), for the
product that acts on them.

    GET /admin/v1/events?after=CURSOR&limit=100&types=user.created,user.deactivated&wait=30

answers `{"data": [event, ...], "next": CURSOR}`, each event

    {"id": "evt_42", "type": "user.deactivated", "occurred_at": "2026-...Z",
     "subject": {"type": "User", "id": "..."}, "actor": {"kind": "token", "id": "...",
     "name": "Okta"}, "changes": {"active": {"before": true, "after": false}},
     "data": {the SCIM resource right after the change; null once deleted}}

`next` is the cursor to pass as `after` for the changes that follow: the last event's id, or
the cursor given when there was none. A cursor is an event's id, opaque to clients. The
`Link` header has the next page's address (`rel="next"`), so that a consumer may ask for it
before it has decoded this one.

`wait=N` (up to 30 s) holds an empty answer until a change arrives or N seconds pass: the
handler waits without holding a thread, on the process's one watch of the log's head
(http.log_watch).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import msgspec
from anyio import to_thread
from litestar import Request, Response, get

from scimledger.http.errors import ScimError
from scimledger.http.groups import render_group
from scimledger.http.inputs import base_url, query_param
from scimledger.http.responses import json_response
from scimledger.http.services import Injected, Services
from scimledger.http.users import render_user
from scimledger.ledger.context import CommandContext
from scimledger.projections import feed, scim

MAX_PAGE = 1000
MAX_WAIT_SECONDS = 30
ID_PREFIX = "evt_"
_CURSOR = re.compile(r"^evt_(0|[1-9][0-9]{0,17})$")  # a position below 10**18
_encode = msgspec.json.encode


class _UserState(msgspec.Struct):
    """A user as the audit trail's `data` has it (projections.audit): last modified when the
    change occurred."""

    attributes: dict[str, Any]
    active: bool
    created: str
    version: int


class _GroupState(msgspec.Struct):
    """A group as the audit trail's `data` has it, members aside."""

    displayName: str
    created: str
    version: int
    externalId: str | None = None
    extensions: dict[str, Any] = msgspec.field(default_factory=dict)  # by URN


_user_state = msgspec.json.Decoder(_UserState).decode
_group_state = msgspec.json.Decoder(_GroupState).decode


def _cursor(request: Request[Any, Any, Any]) -> int:
    text = query_param(request, "after")
    if text is None or text == "":
        return 0
    found = _CURSOR.match(text)
    if found is None:
        raise ScimError(400, "after must be a cursor this feed gave (`next`), such as evt_42")
    return int(found.group(1))


def _int(request: Request[Any, Any, Any], name: str, default: int, low: int, high: int) -> int:
    text = query_param(request, name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 6 and low <= int(text) <= high):
        raise ScimError(400, f"{name} must be a whole number from {low} to {high}")
    return int(text)


def _types(request: Request[Any, Any, Any]) -> tuple[str, ...]:
    try:
        return tuple(feed.chosen_types((query_param(request, "types") or "").split(",")))
    except feed.UnknownType as exc:
        raise ScimError(400, f"types: {exc}") from exc


class Subject(msgspec.Struct, gc=False):
    type: str
    id: str


class Actor(msgspec.Struct, gc=False):
    kind: str
    id: str
    name: str


class Event(msgspec.Struct, gc=False):
    """A change as the feed and webhook deliveries show it. (Not tracked by the garbage
    collector: it holds no cycle, and a page makes a thousand of them.)"""

    id: str
    type: str
    occurred_at: str
    subject: Subject
    actor: Actor
    changes: msgspec.Raw  # as the audit trail stores it: valid JSON, passed on whole
    data: dict[str, Any] | None


def event(change: feed.Change, base: str) -> Event:
    """A change as the feed and webhook deliveries show it, its resource's location under
    `base` (the SCIM API's URL)."""
    data: dict[str, Any] | None = None
    if change.data is not None:
        if change.subject_type == "User":
            user = _user_state(change.data)
            row = scim.UserRow(
                id=change.subject_id,
                attributes=user.attributes,
                active=user.active,
                version=user.version,
                created=user.created,
                last_modified=change.occurred_at,
            )
            data = render_user(row, [], base, None)  # as recorded: history
        else:  # a group, without its members: they change in events of their own
            group = _group_state(change.data)
            data = render_group(
                scim.GroupRow(
                    id=change.subject_id,
                    display_name=group.displayName,
                    external_id=group.externalId,
                    version=group.version,
                    created=group.created,
                    last_modified=change.occurred_at,
                    attributes=group.extensions,
                ),
                None,
                base,
                None,  # as recorded: history
            )
    return Event(
        f"{ID_PREFIX}{change.position}",
        change.type,
        change.occurred_at,
        Subject(change.subject_type, change.subject_id),
        Actor(change.actor_kind, change.actor_id, change.actor_name),
        msgspec.Raw(change.changes),
        data,
    )


@get("/events")
async def list_events(
    request: Request[Any, Any, Any], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """The organization's changes to its users and groups, oldest first: `after` (the
    previous page's `next`), `limit` (1-1000, default 100), `types` (comma-separated),
    `wait` (seconds, up to 30, to hold an empty answer until a change arrives)."""
    after = _cursor(request)
    limit = _int(request, "limit", 100, 1, MAX_PAGE)
    types = _types(request)
    wait = _int(request, "wait", 0, 0, MAX_WAIT_SECONDS)
    org_id = str(context.org_id)
    deadline = time.monotonic() + wait

    def read() -> tuple[list[feed.Change], int]:
        head = services.audit.catch_up()
        with services.sql.read() as cursor:
            return feed.page(cursor, org_id, after, types, limit), head

    changes, head = await to_thread.run_sync(read)
    while not changes and time.monotonic() < deadline and not services.lifecycle.stopping:
        moved = await services.log_watch.moved_past(
            head,
            services.ledger.recorder.max_notification_id,
            deadline,
            lambda: services.lifecycle.stopping,
        )
        if moved:
            changes, head = await to_thread.run_sync(read)
    base = base_url(request)
    events = [event(change, base) for change in changes]
    following = events[-1].id if events else f"{ID_PREFIX}{after}"
    # The next page's address in a header too: a consumer can ask for it before decoding
    # this one (RFC 8288).
    query = {"after": following, "limit": limit, **({"types": ",".join(types)} if types else {})}
    link = f'<{request.url.path}?{urlencode(query, safe=",")}>; rel="next"'
    return json_response({"data": events, "next": following}, headers={"Link": link})


def webhook_body(base: str) -> Callable[[feed.Change], bytes]:
    """What a webhook delivery posts for a change: its event, as the feed has it."""

    def render(change: feed.Change) -> bytes:
        return _encode(event(change, base))

    return render


ROUTES = [list_events]
