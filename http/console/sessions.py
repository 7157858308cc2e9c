"""Who is signed in to the console, and the guards every console request passes.

- The session is a cookie holding what the ledger's ConsoleSession checks (ledger.sessions):
  HttpOnly, SameSite=Lax, Secure (and `__Host-` named) when the console is served over
  HTTPS, with no expiry of its own (closing the browser ends it). The ledger refuses it once
  ended, after 12 hours, or when its person is no longer an admin or reviewer; this module
  refuses it after 30 idle minutes (projections.activity keeps the last request's time).
- Every form that changes something carries a CSRF token derived from the session's secret
  (HMAC-SHA256), which another site cannot read; and every such request must come from the
  console's own origin (the browser's Origin header, or Referer where there is none).
- A form whose answer must not be had twice (a new token: reloading the page that shows it
  sends the form again) carries a key of its own and is acted on once (`once`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from litestar import Request
from litestar.concurrency import sync_to_thread
from litestar.datastructures import Cookie, FormMultiDict

from scimledger.http.auth import request_info
from scimledger.http.services import Services
from scimledger.ledger.context import CommandContext
from scimledger.ledger.sessions import IDLE_LIMIT, Presented, SignedIn, SignInRefused

R = TypeVar("R")

COOKIE = "scimledger_console"
SECURE_COOKIE = "__Host-scimledger_console"  # Secure, Path=/ and no Domain, or no cookie

# The console's pages in its navigation, and who sees them.
PAGES: tuple[tuple[str, str, str, bool], ...] = (  # (path, name, label, admins only)
    ("/console/setup", "setup", "SCIM setup", False),
    ("/console/tokens", "tokens", "Tokens", False),
    ("/console/admins", "admins", "Admins and reviewers", False),
    ("/console/people", "people", "People", False),
    ("/console/groups", "groups", "Groups", False),
    ("/console/schemas", "schemas", "Custom attributes", False),
    ("/console/audit", "audit", "Audit trail", False),
    ("/console/webhooks", "webhooks", "Webhooks", False),
    ("/console/operations", "operations", "Operations", True),
)


class SignedOut(Exception):
    """No valid session: the browser is sent to the sign-in page, told why (`problem`: a key
    of the sign-in page's messages, None for someone who never signed in)."""

    def __init__(self, problem: str | None) -> None:
        super().__init__(problem)
        self.problem = problem


class Refused(Exception):
    """A request the signed-in person may not make (403), or a forged one."""


class AlreadySent(Exception):
    """A once-only form sent again (409): its answer was given the first time."""


@dataclass(frozen=True)
class Person:
    """The signed-in person, as pages and commands need them."""

    signed_in: SignedIn
    csrf: str  # the token forms carry

    @property
    def email(self) -> str:
        return self.signed_in.email

    @property
    def role(self) -> str:
        return self.signed_in.role

    @property
    def org(self) -> str:
        return self.signed_in.org

    @property
    def pages(self) -> list[tuple[str, str, str]]:
        admin = self.signed_in.role == "admin"
        return [(path, name, label) for path, name, label, only in PAGES if admin or not only]

    def context(self, request: Request[Any, Any, Any]) -> CommandContext:
        return CommandContext(self.signed_in.org_id, self.signed_in.actor, request_info(request))

    def must_be_admin(self) -> None:
        if self.signed_in.role != "admin":
            raise Refused("Only an admin of this organization can do this; you are a reviewer.")


def secure(services: Services) -> bool:
    return (services.public_url or "").startswith("https://")


def cookie_name(services: Services) -> str:
    return SECURE_COOKIE if secure(services) else COOKIE


def session_cookie(services: Services, presented: Presented | None) -> Cookie:
    """The cookie that holds a session (or, with None, removes it)."""
    return Cookie(
        key=cookie_name(services),
        value=str(presented) if presented is not None else "",
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure(services),
        max_age=None if presented is not None else 0,
    )


def csrf_token(presented: Presented) -> str:
    return hmac.new(
        presented.secret.encode(), b"scimledger console form", hashlib.sha256
    ).hexdigest()


def person(request: Request[Any, Any, Any], services: Services) -> Person:
    """The signed-in person; SignedOut if there is none. A request that changes something
    must also carry the session's CSRF token and come from the console's origin."""
    text = request.cookies.get(cookie_name(services))
    if not text:
        raise SignedOut(None)
    now = datetime.now(UTC)
    try:
        presented = Presented.parse(text)
        signed_in = services.ledger.signed_in(presented, now)
    except SignInRefused as exc:
        raise SignedOut("ended") from exc
    last = services.activity.seen(presented.id, now)
    if last is None or now - last > IDLE_LIMIT:
        raise SignedOut("idle")
    return Person(signed_in, csrf_token(presented))


def check_form(request: Request[Any, Any, Any], services: Services, form: Any, who: Person) -> None:
    """A form that changes something: from the console's origin, with the session's token."""
    same_origin(request, services)
    given = form.get("csrf") if form is not None else None
    if not isinstance(given, str) or not hmac.compare_digest(given, who.csrf):
        raise Refused("This form has expired or did not come from the console: reload the page.")


async def submitted(
    request: Request[Any, Any, Any],
    services: Services,
    act: Callable[[Person, FormMultiDict], R],
    *,
    admin: bool = True,
) -> R:
    """A form that changes something: read on the event loop; then, in a worker thread, the
    person checked (signed in, the form from the console and theirs, an admin unless
    `admin=False`) and `act` run with them and the form."""
    form = await request.form()

    def run() -> R:
        who = person(request, services)
        check_form(request, services, form, who)
        if admin:
            who.must_be_admin()
        return act(who, form)

    return await sync_to_thread(run)


def form_key() -> str:
    """A new key for a once-only form (see `once`)."""
    return secrets.token_urlsafe(16)


@contextmanager
def once(services: Services, who: Person, form: FormMultiDict, sent: str) -> Iterator[None]:
    """Runs the block for the first sending of a once-only form, which carries the key
    `form_key` gave it as `once`; a second sending raises AlreadySent with the message
    `sent`. If the block fails, the form counts as not sent: corrected, it may be sent
    again."""
    key = form.get("once") or ""
    if not 16 <= len(key) <= 64 or not key.replace("-", "").replace("_", "").isalnum():
        raise Refused("This form is out of date: open it again from the console.")
    session = who.signed_in.session_id
    if not services.activity.form_sent(session, key, datetime.now(UTC)):
        raise AlreadySent(sent)
    try:
        yield
    except BaseException:
        services.activity.form_failed(session, key)
        raise


def same_origin(request: Request[Any, Any, Any], services: Services) -> None:
    """Refuses a request that changes something from any other site (sign-in included)."""
    expected = origin_of(services.public_url or str(request.base_url))
    given = request.headers.get("origin") or request.headers.get("referer")
    if given is None or origin_of(given) != expected:
        raise Refused("This request did not come from the console's own pages.")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
