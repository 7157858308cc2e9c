"""The console's pages: sign-in and sign-out, SCIM setup, tokens.

Pages read the same read models and call the same ledger commands as the admin API; every
change is an event whose actor is the signed-in person (ledger.context.Actor.person). Handlers
that read a form are async (the form is read on the event loop) and run the command in a
worker thread.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from scimledger.http.auth import request_info
from scimledger.http.console.sessions import (
    Person,
    Refused,
    form_key,
    once,
    person,
    same_origin,
    session_cookie,
    submitted,
)
from scimledger.http.responses import SCIM_BASE_PATH
from scimledger.http.services import Injected, Services
from scimledger.ledger.errors import LedgerError
from scimledger.ledger.organizations import normalize_slug
from scimledger.ledger.sessions import Presented, SignInRefused
from scimledger.ledger.tokens import SCOPES, Scope, parse_expiry, parse_grace
from scimledger.projections.tokens import TokenView, WebhookView, list_tokens, list_webhooks

EXPIRIES = (
    ("30d", "30 days"),
    ("60d", "60 days"),
    ("90d", "90 days"),
    ("365d", "1 year"),
    ("date", "On a date"),
    ("never", "Does not expire"),
)
SCOPE_LABELS: dict[Scope, str] = {
    "scim": "provision users and groups (what Okta and Entra need)",
    "audit:read": "read the audit trail (compliance tools)",
    "admin": "manage tokens, admins and settings through the admin API",
    "events:read": "follow the organization's changes (the events feed, for your product)",
}
# What a once-only form sent again says (a reload of the page that shows the new token).
GENERATED_ALREADY = (
    "This form was already sent, and the token it generated was shown once. If you did not"
    " copy it, revoke it on the Tokens page and generate another."
)
ROTATED_ALREADY = (
    "This token was already rotated, and its replacement was shown once. If you did not copy"
    " it, rotate the replacement on the Tokens page."
)
GRACES = (("0", "no time: revoke it now"), ("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"))


def page(name: str, title: str, who: Person | None, status: int = 200, **context: Any) -> Template:
    return Template(
        template_name=f"{name}.html",
        context={"title": title, "page": name, "person": who, **context},
        status_code=status,
    )


def message(
    title: str, text: str, *, who: Person | None = None, status: int = 200, **more: Any
) -> Template:
    more.setdefault("tone", "error" if status >= 400 else "ok")
    return page("message", title, who, status, message=text, **more)


# Signing in and out


@get("/", sync_to_thread=False)
def home() -> Redirect:
    return Redirect("/console/setup", status_code=303)


@get("/sign-in", sync_to_thread=True)
def sign_in(
    services: Injected[Services],
    problem: FromQuery[str | None] = None,
    org: FromQuery[str | None] = None,
) -> Template:
    """Sign-in: with the organization's single sign-on once its name is given (a link to
    /console/sso: a form could not lead to another site under the console's policy), or a
    sign-in link from an operator."""
    sso = None
    if org:
        with contextlib.suppress(LedgerError):
            org = normalize_slug(org)
            org_id = services.ledger.organization_id(org)
            if org_id is not None and services.ledger.single_sign_on(org_id) is not None:
                sso = f"/console/sso?{urlencode({'org': org})}"
    return page("sign_in", "Sign in", None, problem=_known_problem(problem), org=org or "", sso=sso)


_PROBLEMS = {
    "ended": "Your session has ended: sign in again.",
    "idle": "You were signed out after 30 minutes without activity: sign in again.",
    "signed-out": "You have signed out.",
}


def _known_problem(key: str | None) -> str | None:
    return _PROBLEMS.get(key or "")  # never a text from the URL itself


_LINK_UNUSABLE = (
    "This sign-in link cannot be used: it was used already, it has expired (links work for "
    "15 minutes), or it was copied incompletely. Ask for a new one."
)


@get("/sign-in/{link:str}", sync_to_thread=True)
def sign_in_link(link: FromPath[str], services: Injected[Services]) -> Template:
    """The page a sign-in link opens: it asks to press a button, so that a program that
    fetches links (a mail scanner, a chat preview) cannot use the link up."""
    try:
        found = services.ledger.sign_in_link(Presented.parse(link), datetime.now(UTC))
    except SignInRefused:
        return message("Sign-in link", _LINK_UNUSABLE, status=410)
    org = services.ledger.organization_slug(found.org_id)
    return page(
        "link", f"Sign in to {org}", None, org=org, email=found.email, expires_at=found.expires_at
    )


@post("/sign-in/{link:str}", sync_to_thread=True)
def use_sign_in_link(
    link: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Response[Any]:
    same_origin(request, services)
    now = datetime.now(UTC)
    try:
        session = services.ledger.sign_in_with_link(
            Presented.parse(link), request_info(request), now
        )
    except SignInRefused:
        return message("Sign-in link", _LINK_UNUSABLE, status=410)
    services.activity.started(session.id, now)
    return Redirect("/console/setup", status_code=303, cookies=[session_cookie(services, session)])


@post("/sign-out")
async def sign_out(request: Request[Any, Any, Any], services: Injected[Services]) -> Redirect:
    def end(who: Person, form: FormMultiDict) -> None:
        services.ledger.end_session(who.signed_in.session_id, who.context(request))
        services.activity.ended(who.signed_in.session_id)

    await submitted(request, services, end, admin=False)
    return Redirect(
        "/console/sign-in?problem=signed-out",
        status_code=303,
        cookies=[session_cookie(services, None)],
    )


# SCIM setup


def _tokens(services: Services, who: Person) -> list[TokenView]:
    services.tokens.catch_up()
    with services.sql.read() as cursor:
        return list_tokens(cursor, who.org, datetime.now(UTC))


def webhook_endpoints(services: Services, who: Person) -> list[WebhookView]:
    """The organization's webhook endpoints (removed ones aside), oldest first."""
    services.tokens.catch_up()  # their read model follows the log with the tokens'
    with services.sql.read() as cursor:
        return list_webhooks(cursor, who.org)


def scim_base_url(services: Services, request: Request[Any, Any, Any], org: str) -> str:
    """The organization's own setting, else where this server is reached."""
    configured = services.ledger.settings(org)["scim_base_url"]
    if configured:
        return configured
    return (services.public_url or str(request.base_url)).rstrip("/") + SCIM_BASE_PATH


@get("/setup", sync_to_thread=True)
def setup(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    who = person(request, services)
    tokens = _tokens(services, who)
    used = [token.last_used for token in tokens if token.last_used]
    return page(
        "setup",
        "SCIM setup",
        who,
        base_url=scim_base_url(services, request, who.org),
        tokens=tokens,
        active=sum(token.status == "active" for token in tokens),
        last_request=max(used) if used else None,
        failing=[hook for hook in webhook_endpoints(services, who) if hook.status == "failing"],
    )


# Tokens


@get("/tokens", sync_to_thread=True)
def tokens(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    who = person(request, services)
    return page("tokens", "Tokens", who, tokens=_tokens(services, who))


def _token_form(
    who: Person, form: dict[str, Any] | None = None, problem: str | None = None, status: int = 200
) -> Template:
    return page(
        "token_new",
        "Generate token",
        who,
        status,
        form=form
        or {"name": "", "expires": "90d", "expires_on": "", "scopes": ["scim"], "once": form_key()},
        expiries=EXPIRIES,
        scopes=list(SCOPE_LABELS.items()),
        problem=problem,
    )


@get("/tokens/new", sync_to_thread=True)
def new_token(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    who = person(request, services)
    who.must_be_admin()
    return _token_form(who)


def _expiry(form: FormMultiDict, now: datetime) -> datetime | None:
    choice = form.get("expires") or ""
    if choice == "date":
        return parse_expiry(form.get("expires_on") or "a date is needed", now)
    if choice not in {value for value, _ in EXPIRIES}:
        raise LedgerError("choose when the token expires")
    return parse_expiry(choice, now)


def _scopes(form: FormMultiDict) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(form.getall("scopes", [])))
    if not chosen or any(scope not in SCOPES for scope in chosen):
        raise LedgerError("choose at least one scope")
    return chosen


@post("/tokens")
async def generate_token(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    def generate(who: Person, form: FormMultiDict) -> Template:
        try:
            expires_at, scopes = _expiry(form, datetime.now(UTC)), _scopes(form)
            with once(services, who, form, GENERATED_ALREADY):
                issued = services.ledger.issue_token(
                    org=who.org,
                    name=form.get("name") or "",
                    expires_at=expires_at,
                    actor=who.signed_in.actor,
                    request=request_info(request),
                    scopes=scopes,
                    by=who.email,
                )
        except LedgerError as exc:
            kept = {
                "name": form.get("name") or "",
                "expires": form.get("expires") or "",
                "expires_on": form.get("expires_on") or "",
                "scopes": form.getall("scopes", []),
                "once": form.get("once") or form_key(),
            }
            return _token_form(who, kept, str(exc), status=400)
        return page(
            "token_shown",
            "Token generated",
            who,
            201,
            token=issued.token,
            expires_at=issued.expires_at,
            grace_until=None,
        )

    return await submitted(request, services, generate)


def _own_token(services: Services, who: Person, token_id: str) -> TokenView:
    for token in _tokens(services, who):
        if token.id == token_id:
            return token
    raise LookupError("no such token")


@get("/tokens/{token_id:str}/revoke", sync_to_thread=True)
def confirm_revoke(
    token_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Template:
    who = person(request, services)
    who.must_be_admin()
    token = _own_token(services, who, token_id)
    return page("token_revoke", f"Revoke token {token.name}", who, token=token)


@post("/tokens/{token_id:str}/revoke")
async def revoke_token(
    token_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Redirect:
    def revoke(who: Person, form: FormMultiDict) -> None:
        token = _own_token(services, who, token_id)
        services.ledger.revoke_token(UUID(token.id), who.signed_in.actor, request_info(request))

    await submitted(request, services, revoke)
    return Redirect("/console/tokens", status_code=303)


@get("/tokens/{token_id:str}/rotate", sync_to_thread=True)
def confirm_rotate(
    token_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Template:
    who = person(request, services)
    who.must_be_admin()
    token = _own_token(services, who, token_id)
    return page(
        "token_rotate",
        f"Rotate token {token.name}",
        who,
        token=token,
        graces=GRACES,
        once=form_key(),
    )


@post("/tokens/{token_id:str}/rotate")
async def rotate_token(
    token_id: FromPath[str], request: Request[Any, Any, Any], services: Injected[Services]
) -> Template:
    def rotate(who: Person, form: FormMultiDict) -> Template:
        token = _own_token(services, who, token_id)
        grace = parse_grace(form.get("grace") or "")
        now = datetime.now(UTC)
        with once(services, who, form, ROTATED_ALREADY):
            issued = services.ledger.rotate_token(
                UUID(token.id),
                grace=grace,
                actor=who.signed_in.actor,
                request=request_info(request),
                now=now,
                by=who.email,
            )
        return page(
            "token_shown",
            "Token rotated",
            who,
            201,
            token=issued.token,
            expires_at=issued.expires_at,
            grace_until=now + grace,
        )

    return await submitted(request, services, rotate)


ROUTES = [
    home,
    sign_in,
    sign_in_link,
    use_sign_in_link,
    sign_out,
    setup,
    tokens,
    new_token,
    generate_token,
    confirm_revoke,
    revoke_token,
    confirm_rotate,
    rotate_token,
]


__all__ = ["ROUTES", "Refused"]
