"""The admin API: /admin/v1. The audit trail for compliance reviewers (tokens with the
`audit:read` scope), tokens, admins and webhooks (`admin`), the events feed (`events:read`,
http/feed.py).

JSON in, JSON out, errors in one shape: {"status": 403, "error": "forbidden", "detail": ...}.
The audit trail pages by cursor (`after` = the last position seen, `next` in the answer);
`format=csv` streams every matching entry instead, with flat memory.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, Router, get
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Stream

from scimledger.http import admin_schemas, admin_tokens, admin_users, admin_webhooks, feed
from scimledger.http.auth import command_context
from scimledger.http.errors import ScimError, reported
from scimledger.http.inputs import base_url, query_param, resource_id
from scimledger.http.responses import json_response
from scimledger.http.services import Injected, Services
from scimledger.http.users import render_user_at
from scimledger.ledger.context import CommandContext
from scimledger.ledger.moments import parse_moment
from scimledger.ledger.tokens import Scope
from scimledger.projections import audit
from scimledger.projections.sql_filters import scim_datetime

ADMIN_BASE_PATH = "/admin/v1"
MAX_PAGE = 1000

_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "gone",
    405: "method_not_allowed",
    413: "too_large",
    500: "internal_error",
}


def _time(request: Request[Any, Any, Any], name: str) -> str | None:
    text = query_param(request, name)
    if text is None:
        return None
    try:
        return scim_datetime(parse_moment(text))
    except ValueError as exc:
        raise ScimError(400, f"{name}: {exc}") from exc


def _int(request: Request[Any, Any, Any], name: str, default: int, low: int, high: int) -> int:
    text = query_param(request, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError as exc:
        raise ScimError(400, f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise ScimError(400, f"{name} must be between {low} and {high}")
    return value


def _query(request: Request[Any, Any, Any], context: CommandContext) -> audit.AuditQuery:
    return audit.AuditQuery(
        org_id=str(context.org_id),  # a reviewer sees only the token's organization
        subject=query_param(request, "subject"),
        actor=query_param(request, "actor"),
        actions=tuple(v for k, v in request.query_params.multi_items() if k == "action"),
        since=_time(request, "since"),
        until=_time(request, "until"),
        after=_int(request, "after", 0, 0, 2**62),
    )


def _page(services: Services, query: audit.AuditQuery, limit: int) -> dict[str, Any]:
    services.audit.catch_up()
    with services.sql.transaction(commit=False) as cursor:
        entries = audit.page(cursor, query, limit)
    following = str(entries[-1]["position"]) if len(entries) == limit else None
    return {"entries": entries, "next": following}


def _csv(services: Services, query: audit.AuditQuery) -> Stream:
    services.audit.catch_up()
    return Stream(
        audit.csv_chunks(lambda: services.sql.transaction(commit=False), query),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


@get("/audit", sync_to_thread=True)
def list_audit(
    request: Request[Any, Any, Any], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes] | Stream:
    """Audit entries of the token's organization, oldest first: filters subject, actor,
    action (repeatable), since, until; cursor `after` (the previous page's `next`), `limit`;
    `format=csv` streams every matching entry as CSV."""
    query = _query(request, context)
    if (query_param(request, "format") or "json") == "csv":
        return _csv(services, query)
    return json_response(_page(services, query, _int(request, "limit", 100, 1, MAX_PAGE)))


def _user_id(text: str) -> UUID:
    user_id = resource_id(text)
    if user_id is None:
        raise ScimError(404, "No such user")
    return user_id


@get("/users/{user_id:str}/history", sync_to_thread=True)
def user_history(
    request: Request[Any, Any, Any],
    user_id: FromPath[str],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    """Every audit entry of one user, oldest first, paged like /audit."""
    query = audit.AuditQuery(
        org_id=str(context.org_id),
        subject=str(_user_id(user_id)),
        after=_int(request, "after", 0, 0, 2**62),
    )
    page = _page(services, query, _int(request, "limit", 100, 1, MAX_PAGE))
    if not page["entries"] and query.after == 0:
        raise ScimError(404, "No such user")
    return json_response(page)


@get("/users/{user_id:str}", sync_to_thread=True)
def user_at(
    request: Request[Any, Any, Any],
    user_id: FromPath[str],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    """The user's SCIM representation as it was at `at`, rebuilt from its events."""
    at = _time(request, "at")
    if at is None:
        raise ScimError(400, "give the time to show the user at: ?at=2026-01-31T12:00:00Z")
    found = services.ledger.user_at(context.org_id, _user_id(user_id), parse_moment(at))
    if found is None:
        raise ScimError(404, f"No such user at {at}")
    return json_response(render_user_at(found, base_url(request), None))  # as recorded


@get("/reports/revoked-token-users", sync_to_thread=True)
def revoked_token_users(
    services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """Users created by a token that was later revoked, and still active since."""
    services.audit.catch_up()
    with services.sql.transaction(commit=False) as cursor:
        rows = audit.revoked_token_users(cursor, str(context.org_id))
    return json_response({"users": rows})


def handle_admin_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    error = reported(request, exc)
    body = {
        "status": error.status,
        "error": _NAMES.get(error.status, "error"),
        "detail": error.detail,
    }
    return json_response(body, status=error.status, headers=error.headers)


def _scoped(scope: Scope, handlers: list[HTTPRouteHandler]) -> Router:
    """A router whose handlers are given the caller's `context` if its token has `scope`."""

    def context(request: Request[Any, Any, Any], services: Injected[Services]) -> CommandContext:
        return command_context(services, request, scope=scope)

    return Router(
        path="/",
        route_handlers=handlers,
        dependencies={"context": Provide(context, sync_to_thread=True)},
    )


def router() -> Router:
    return Router(
        path=ADMIN_BASE_PATH,
        route_handlers=[
            _scoped("audit:read", [list_audit, user_history, user_at, revoked_token_users]),
            _scoped(
                "admin",
                [
                    *admin_tokens.ROUTES,
                    *admin_webhooks.ROUTES,
                    *admin_users.ROUTES,
                    *admin_schemas.ROUTES,
                ],
            ),
            _scoped("events:read", feed.ROUTES),
        ],
        exception_handlers={Exception: handle_admin_exception},
    )
