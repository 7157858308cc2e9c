"""The console's Webhooks pages: the endpoints the organization's changes are posted to, their
status (a failing one said so on every list of them and on SCIM setup), their last delivery
attempts. Admins add, disable, enable, replay and remove them and rotate their signing
secrets; reviewers see them. Each step is the same ledger command as `scimledger webhooks`
and the admin API's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Redirect, Template

from scimledger.http.auth import request_info
from scimledger.http.console.pages import page, webhook_endpoints
from scimledger.http.console.sessions import Person, form_key, once, person, submitted
from scimledger.http.services import Injected, Services
from scimledger.ledger.errors import LedgerError
from scimledger.ledger.tokens import parse_grace
from scimledger.projections.deliveries import attempts, progress
from scimledger.projections.feed import TYPES, UnknownType, chosen_types
from scimledger.projections.tokens import WebhookView

ATTEMPTS_SHOWN = 50
GRACES = (("0", "no time: the old secret stops now"), ("1h", "1 hour"), ("24h", "24 hours"))
ADDED_ALREADY = (
    "This form was already sent, and the endpoint's signing secret was shown once. If you did"
    " not copy it, rotate the endpoint's secret on the Webhooks page."
)
ROTATED_ALREADY = (
    "This secret was already rotated, and the new one was shown once. If you did not copy it,"
    " rotate it again on the Webhooks page."
)
_CURSOR = re.compile(r"^evt_(0|[1-9][0-9]{0,17})$")


def _own(services: Services, who: Person, webhook_id: str) -> WebhookView:
    for webhook in webhook_endpoints(services, who):
        if webhook.id == webhook_id:
            return webhook
    raise LookupError("no such webhook")


@get("/webhooks", sync_to_thread=True)
def webhooks(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    who = person(request, services)
    return page("webhooks", "Webhooks", who, webhooks=webhook_endpoints(services, who))


def _form(
    who: Person, form: dict[str, Any] | None = None, problem: str | None = None, status: int = 200
) -> Template:
    return page(
        "webhook_new",
        "Add webhook",
        who,
        status,
        form=form or {"url": "", "types": [], "insecure": False, "once": form_key()},
        types=TYPES,
        problem=problem,
    )


@get("/webhooks/new", sync_to_thread=True)
def new_webhook(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    who = person(request, services)
    who.must_be_admin()
    return _form(who)


@post("/webhooks")
async def add_webhook(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    def add(who: Person, form: FormMultiDict) -> Template:
        try:
            types = chosen_types(form.getall("types", []))
            with once(services, who, form, ADDED_ALREADY):
                webhook, secret = services.ledger.add_webhook(
                    who.org,
                    form.get("url") or "",
                    types=types,
                    allow_insecure=form.get("insecure") == "on",
                    actor=who.signed_in.actor,
                    request=request_info(request),
                    now=datetime.now(UTC),
                )
        except (LedgerError, UnknownType) as exc:
            kept = {
                "url": form.get("url") or "",
                "types": form.getall("types", []),
                "insecure": form.get("insecure") == "on",
                "once": form.get("once") or form_key(),
            }
            return _form(who, kept, str(exc), status=400)
        return page(
            "webhook_secret", "Webhook added", who, 201, webhook=webhook.as_dict(), secret=secret
        )

    return await submitted(request, services, add)


@get("/webhooks/{webhook_id:str}", sync_to_thread=True)
def webhook(
    webhook_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Template:
    who = person(request, services)
    shown = _own(services, who, webhook_id)
    return page(
        "webhook",
        f"Webhook {shown.url}",
        who,
        webhook=shown,
        attempts=attempts(services.sql, shown.id, ATTEMPTS_SHOWN),
        progress=progress(services.sql, shown.id),
        shown=ATTEMPTS_SHOWN,
        graces=GRACES,
        once=form_key(),
    )


async def _change(
    how: Literal["disable", "enable", "remove"],
    webhook_id: str,
    request: Request[Any, Any, Any],
    services: Services,
) -> Redirect:
    def act(who: Person, form: FormMultiDict) -> None:
        shown = _own(services, who, webhook_id)
        services.ledger.change_webhook(
            UUID(shown.id), how, who.signed_in.actor, request_info(request)
        )

    await submitted(request, services, act)
    target = "/console/webhooks" if how == "remove" else f"/console/webhooks/{webhook_id}"
    return Redirect(target, status_code=303)


@post("/webhooks/{webhook_id:str}/disable")
async def disable_webhook(
    webhook_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Redirect:
    return await _change("disable", webhook_id, request, services)


@post("/webhooks/{webhook_id:str}/enable")
async def enable_webhook(
    webhook_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Redirect:
    return await _change("enable", webhook_id, request, services)


@post("/webhooks/{webhook_id:str}/remove")
async def remove_webhook(
    webhook_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Redirect:
    return await _change("remove", webhook_id, request, services)


@get("/webhooks/{webhook_id:str}/remove", sync_to_thread=True)
def confirm_remove(
    webhook_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Template:
    who = person(request, services)
    who.must_be_admin()
    shown = _own(services, who, webhook_id)
    return page("webhook_remove", f"Remove webhook {shown.url}", who, webhook=shown)


@post("/webhooks/{webhook_id:str}/rotate")
async def rotate_secret(
    webhook_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Template:
    def rotate(who: Person, form: FormMultiDict) -> Template:
        shown = _own(services, who, webhook_id)
        grace = parse_grace(form.get("grace") or "")
        now = datetime.now(UTC)
        with once(services, who, form, ROTATED_ALREADY):
            secret = services.ledger.rotate_webhook_secret(
                UUID(shown.id),
                grace=grace,
                actor=who.signed_in.actor,
                request=request_info(request),
                now=now,
            )
        return page(
            "webhook_secret",
            "Signing secret rotated",
            who,
            201,
            webhook={"id": shown.id, "url": shown.url},
            secret=secret,
            grace_until=now + grace if grace else None,
        )

    return await submitted(request, services, rotate)


@post("/webhooks/{webhook_id:str}/replay")
async def replay(
    webhook_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Any:
    def act(who: Person, form: FormMultiDict) -> Any:
        shown = _own(services, who, webhook_id)
        found = _CURSOR.match((form.get("from") or "").strip())
        if found is None:
            raise LedgerError("Replay from an event's id, such as evt_42 (evt_0: every change).")
        services.ledger.replay_webhook(
            UUID(shown.id), int(found.group(1)), who.signed_in.actor, request_info(request)
        )
        return Redirect(f"/console/webhooks/{webhook_id}", status_code=303)

    return await submitted(request, services, act)


ROUTES = [
    webhooks,
    new_webhook,
    add_webhook,
    webhook,
    disable_webhook,
    enable_webhook,
    confirm_remove,
    remove_webhook,
    rotate_secret,
    replay,
]
