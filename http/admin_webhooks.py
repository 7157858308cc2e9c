"""The admin API for an organization's webhook endpoints: /admin/v1/webhooks.

For tokens with the `admin` scope only, acting in the token's own organization; another
organization's endpoints answer 404. The same steps as `scimledger webhooks` (each one an
event of the endpoint), the signing secret shown once, in the answer that made it.

    GET    /webhooks                      the endpoints, with status (?removed=true: all)
    POST   /webhooks                      {url, types, allow_insecure_url} -> 201, secret
    GET    /webhooks/{id}                 one endpoint, and where its deliveries stand
    POST   /webhooks/{id}/disable         stop posting (changes wait)
    POST   /webhooks/{id}/enable          post again from where it stopped
    DELETE /webhooks/{id}                 remove it for good, with its secrets -> 204
    POST   /webhooks/{id}/rotate-secret   {grace} -> the new secret
    POST   /webhooks/{id}/replay          {from: CURSOR}: post the changes after it again
    GET    /webhooks/{id}/deliveries      the last attempts (?limit=1-1000, default 50)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from scimledger.http.errors import ScimError
from scimledger.http.inputs import query_param
from scimledger.http.responses import json_response
from scimledger.http.services import Injected, Services
from scimledger.ledger.context import CommandContext
from scimledger.ledger.tokens import parse_grace
from scimledger.ledger.webhooks import WebhookNotFound
from scimledger.projections.deliveries import attempts, progress
from scimledger.projections.feed import UnknownType, chosen_types
from scimledger.projections.tokens import WEBHOOK_COLUMNS, WebhookView, list_webhooks

MAX_ATTEMPTS_SHOWN = 1000
_CURSOR = re.compile(r"^evt_(0|[1-9][0-9]{0,17})$")


class WebhookRequest(msgspec.Struct, forbid_unknown_fields=True):
    """An endpoint to add."""

    url: str
    types: list[str] = msgspec.field(default_factory=list)  # none: every type of change
    allow_insecure_url: bool = False  # accept http:// (for development only)


class SecretRequest(msgspec.Struct, forbid_unknown_fields=True):
    grace: str = "24h"  # how long the previous secret signs too: e.g. 24h, 30m, 7d, 0


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True, rename={"from_": "from"}):
    from_: str  # post again the changes after this event id (evt_0: every change)


def _view(view: WebhookView) -> dict[str, Any]:
    shown = {column: getattr(view, column) for column in WEBHOOK_COLUMNS}
    shown["types"] = view.types.split(",") if view.types else []
    return shown


def _views(services: Services, context: CommandContext, removed: bool) -> list[WebhookView]:
    services.tokens.catch_up()  # the endpoints' read model follows the log with the tokens'
    org = services.ledger.organization_slug(context.org_id)
    with services.sql.read() as cursor:
        return list_webhooks(cursor, org, removed=removed)


def _own(services: Services, context: CommandContext, webhook_id: str) -> UUID:
    """The id of one of the organization's endpoints; 404 for any other text."""
    try:
        parsed = UUID(webhook_id)
        services.ledger.webhook(parsed, context.org_id)
    except (ValueError, WebhookNotFound) as exc:
        raise ScimError(404, "No such webhook") from exc
    return parsed


def _shown(services: Services, context: CommandContext, webhook_id: UUID) -> dict[str, Any]:
    for view in _views(services, context, removed=True):
        if view.id == str(webhook_id):
            return _view(view)
    raise ScimError(404, "No such webhook")


@get("/webhooks", sync_to_thread=True)
def list_org_webhooks(
    request: Request[Any, Any, Any], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """The organization's endpoints, oldest first, with their status (enabled, disabled,
    failing and why, removed with ?removed=true); never a secret."""
    removed = query_param(request, "removed") in ("true", "1")
    views = _views(services, context, removed)
    return json_response({"webhooks": [_view(view) for view in views]})


@post("/webhooks", sync_to_thread=True)
def add_org_webhook(
    data: JSONBody[WebhookRequest],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    """Add an endpoint: {url, types, allow_insecure_url}; the answer holds its signing
    secret, shown this once."""
    try:
        types = chosen_types(data.types)
    except UnknownType as exc:
        raise ScimError(400, f"types: {exc}") from exc
    webhook, secret = services.ledger.add_webhook(
        services.ledger.organization_slug(context.org_id),
        data.url,
        types=types,
        allow_insecure=data.allow_insecure_url,
        actor=context.actor,
        request=context.request,
        now=datetime.now(UTC),
    )
    return json_response({**_shown(services, context, webhook.id), "secret": secret}, status=201)


@get("/webhooks/{webhook_id:str}", sync_to_thread=True)
def get_org_webhook(
    webhook_id: FromPath[str], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """One endpoint, with its status and where its deliveries stand (`delivery`: every
    change up to `done_through` acknowledged; `failures` of the next since `failing_since`,
    tried again at `next_attempt_at`)."""
    parsed = _own(services, context, webhook_id)
    done = progress(services.sql, str(parsed))
    return json_response(
        {**_shown(services, context, parsed), "delivery": msgspec.to_builtins(done)}
    )


def _change(how: Literal["disable", "enable", "remove"]) -> Any:
    def change(
        webhook_id: FromPath[str], services: Injected[Services], context: Injected[CommandContext]
    ) -> dict[str, Any]:
        parsed = _own(services, context, webhook_id)
        services.ledger.change_webhook(
            parsed, how, context.actor, context.request, org_id=context.org_id
        )
        return _shown(services, context, parsed)

    return change


_disable, _enable, _remove = _change("disable"), _change("enable"), _change("remove")


@post("/webhooks/{webhook_id:str}/disable", sync_to_thread=True, status_code=200)
def disable_org_webhook(
    webhook_id: FromPath[str], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """Stop posting to the endpoint: its changes wait until it is enabled."""
    return json_response(_disable(webhook_id, services, context))


@post("/webhooks/{webhook_id:str}/enable", sync_to_thread=True, status_code=200)
def enable_org_webhook(
    webhook_id: FromPath[str], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """Post again, from where it stopped (a failing endpoint is tried again at once)."""
    return json_response(_enable(webhook_id, services, context))


@delete("/webhooks/{webhook_id:str}", sync_to_thread=True, status_code=204)
def remove_org_webhook(
    webhook_id: FromPath[str], services: Injected[Services], context: Injected[CommandContext]
) -> None:
    """Remove the endpoint for good, with its signing secrets."""
    _remove(webhook_id, services, context)


@post("/webhooks/{webhook_id:str}/rotate-secret", sync_to_thread=True, status_code=201)
def rotate_org_webhook_secret(
    webhook_id: FromPath[str],
    services: Injected[Services],
    context: Injected[CommandContext],
    data: JSONBody[SecretRequest | None] = None,
) -> Response[bytes]:
    """A new signing secret, shown this once; the previous one signs too for {grace}."""
    parsed = _own(services, context, webhook_id)
    secret = services.ledger.rotate_webhook_secret(
        parsed,
        grace=parse_grace((data or SecretRequest()).grace),
        actor=context.actor,
        request=context.request,
        now=datetime.now(UTC),
        org_id=context.org_id,
    )
    return json_response({"id": str(parsed), "secret": secret}, status=201)


@post("/webhooks/{webhook_id:str}/replay", sync_to_thread=True, status_code=200)
def replay_org_webhook(
    webhook_id: FromPath[str],
    data: JSONBody[ReplayRequest],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    """Post the changes after {from} (an event id; evt_0: every change) again, in order."""
    found = _CURSOR.match(data.from_)
    if found is None:
        raise ScimError(400, "from must be an event's id, such as evt_42 (evt_0: every change)")
    parsed = _own(services, context, webhook_id)
    services.ledger.replay_webhook(
        parsed, int(found.group(1)), context.actor, context.request, org_id=context.org_id
    )
    return json_response(_shown(services, context, parsed))


@get("/webhooks/{webhook_id:str}/deliveries", sync_to_thread=True)
def list_org_webhook_deliveries(
    webhook_id: FromPath[str],
    request: Request[Any, Any, Any],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    """The endpoint's last attempts, newest first: when, which event, status or error, how
    long; never a secret, never what the receiver answered."""
    parsed = _own(services, context, webhook_id)
    text = query_param(request, "limit") or "50"
    if not (text.isascii() and text.isdigit() and 1 <= int(text[:6]) <= MAX_ATTEMPTS_SHOWN):
        raise ScimError(400, f"limit must be a whole number from 1 to {MAX_ATTEMPTS_SHOWN}")
    return json_response({"deliveries": attempts(services.sql, str(parsed), int(text))})


ROUTES = [
    list_org_webhooks,
    add_org_webhook,
    get_org_webhook,
    disable_org_webhook,
    enable_org_webhook,
    remove_org_webhook,
    rotate_org_webhook_secret,
    replay_org_webhook,
    list_org_webhook_deliveries,
]
