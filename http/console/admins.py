"""The console's Admins and reviewers page: who may sign in, in which role, and what happens
to the tokens of an admin who leaves (the departed-issuer policy). Admins change them;
reviewers see them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from scimledger.http.auth import request_info
from scimledger.http.console.pages import page
from scimledger.http.console.sessions import Person, person, submitted
from scimledger.http.services import Injected, Services
from scimledger.ledger import retention
from scimledger.ledger.errors import LedgerError
from scimledger.ledger.organizations import DEPARTED_POLICIES, ROLES
from scimledger.ledger.tokens import parse_grace

GRACES = (
    ("0", "at once"),
    ("24h", "after 24 hours"),
    ("7d", "after 7 days"),
    ("30d", "after 30 days"),
)


def _graces(seconds: int) -> tuple[list[tuple[str, str]], str]:
    """The grace choices, with the current one among them, and which it is."""
    for value, _ in GRACES:
        if parse_grace(value).total_seconds() == seconds:
            return list(GRACES), value
    current = f"{seconds // 60}m"  # set otherwise (the CLI, the admin API)
    return [*GRACES, (current, f"after {seconds // 60} minutes")], current


def _page(
    services: Services, who: Person, problem: str | None = None, status: int = 200
) -> Template:
    organization = services.ledger.organization(who.org)
    people = [
        {"email": email, "role": role, "departed": organization.departed.get(email)}
        for role, emails in (("admin", organization.admins), ("reviewer", organization.reviewers))
        for email in emails
    ]
    settings = organization.settings
    graces, grace = _graces(settings["departed_grace_seconds"])
    return page(
        "admins",
        "Admins and reviewers",
        who,
        status,
        people=people,
        roles=ROLES,
        policies=DEPARTED_POLICIES,
        policy=settings["departed_policy"],
        graces=graces,
        grace=grace,
        retention=_period(settings["erase_deleted_after_seconds"]),
        problem=problem,
    )


def _period(seconds: int | None) -> str:
    """A retention period as it is typed: never, 30d, 12h."""
    if seconds is None:
        return "never"
    return f"{seconds // 86_400}d" if seconds % 86_400 == 0 else f"{seconds // 3600}h"


@get("/admins", sync_to_thread=True)
def admins(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    return _page(services, person(request, services))


@post("/admins")
async def add_person(request: Request[Any, Any, Any], services: Injected[Services]) -> Any:
    def add(who: Person, form: FormMultiDict) -> Any:
        role = form.get("role") or "admin"
        try:
            if role not in ROLES:
                raise LedgerError("choose admin or reviewer")
            services.ledger.add_admin(
                who.org,
                form.get("email") or "",
                who.signed_in.actor,
                request_info(request),
                role=role,
            )
        except LedgerError as exc:
            return _page(services, who, str(exc), status=400)
        return Redirect("/console/admins", status_code=303)

    return await submitted(request, services, add)


@get("/admins/remove", sync_to_thread=True)
def confirm_remove(
    request: Request[Any, Any, Any], services: Injected[Services], email: FromQuery[str] = ""
) -> Template:
    who = person(request, services)
    who.must_be_admin()
    organization = services.ledger.organization(who.org)
    if email not in {*organization.admins, *organization.reviewers}:
        raise LookupError(email)
    return page("admin_remove", f"Remove {email}", who, email=email)


@post("/admins/remove")
async def remove_person(request: Request[Any, Any, Any], services: Injected[Services]) -> Any:
    def remove(who: Person, form: FormMultiDict) -> Any:
        try:
            services.ledger.remove_admin(
                who.org, form.get("email") or "", who.signed_in.actor, request_info(request)
            )
        except LedgerError as exc:
            return _page(services, who, str(exc), status=400)
        return Redirect("/console/admins", status_code=303)

    return await submitted(request, services, remove)


async def _change_settings(
    request: Request[Any, Any, Any],
    services: Services,
    changes: Callable[[FormMultiDict], dict[str, Any]],
) -> Any:
    """A settings form: `changes` reads the settings from it (LedgerError if it cannot);
    the page again, with the problem, if they are refused."""

    def change(who: Person, form: FormMultiDict) -> Any:
        try:
            services.ledger.change_settings(
                who.org, changes(form), who.signed_in.actor, request_info(request)
            )
        except LedgerError as exc:
            return _page(services, who, str(exc), status=400)
        return Redirect("/console/admins", status_code=303)

    return await submitted(request, services, change)


@post("/admins/policy")
async def change_policy(request: Request[Any, Any, Any], services: Injected[Services]) -> Any:
    return await _change_settings(
        request,
        services,
        lambda form: {
            "departed_policy": form.get("policy") or "",
            "departed_grace_seconds": int(parse_grace(form.get("grace") or "").total_seconds()),
        },
    )


@post("/admins/retention")
async def change_retention(request: Request[Any, Any, Any], services: Injected[Services]) -> Any:
    return await _change_settings(
        request,
        services,
        lambda form: {
            "erase_deleted_after_seconds": retention.parse_period(form.get("period") or "")
        },
    )


ROUTES = [admins, add_person, confirm_remove, remove_person, change_policy, change_retention]
