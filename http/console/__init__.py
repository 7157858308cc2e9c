"""The web console at /console/: server-rendered pages (Jinja2, through Litestar's template
support) for an organization's admins and reviewers, on the ledger's commands and read models.

No build step and nothing from another site: one stylesheet and one small script, served
from here under names that carry their content's hash (cached for a year), and a
Content-Security-Policy that allows nothing else.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import ResponseHeader
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.template import TemplateConfig

from scimledger.http import envelope
from scimledger.http.console import (
    admins,
    audit,
    operations,
    pages,
    people,
    schemas,
    sso,
    webhooks,
)
from scimledger.http.console.sessions import AlreadySent, Refused, SignedOut, session_cookie
from scimledger.http.errors import reported
from scimledger.http.services import Services
from scimledger.projections.sql_filters import scim_datetime

HERE = Path(__file__).parent
CONSOLE_PATH = "/console"

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class Assets:
    """The static files, each named by its content's hash: `console.3f2a9c1b.css`."""

    def __init__(self, directory: Path) -> None:
        self.urls: dict[str, str] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        for path in sorted(directory.iterdir()):
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()[:12]
            hashed = f"{path.stem}.{digest}{path.suffix}"
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.urls[path.name] = f"{CONSOLE_PATH}/static/{hashed}"
            self.files[hashed] = (content, media_type)


ASSETS = Assets(HERE / "static")


@get("/static/{name:str}", sync_to_thread=False)
def static(name: FromPath[str]) -> Response[bytes]:
    found = ASSETS.files.get(name)
    if found is None:
        raise NotFoundException()
    content, media_type = found
    return Response(
        content,
        media_type=media_type,
        headers={"cache-control": "public, max-age=31536000, immutable"},
    )


def _utc(value: datetime | str | None) -> str:
    """A moment as people read it in UTC: 2026-12-06 14:05 UTC."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return scim_datetime(moment)[:16].replace("T", " ") + " UTC"


def _iso(value: datetime | str) -> str:
    return value if isinstance(value, str) else scim_datetime(value)


def _engine(engine: JinjaTemplateEngine) -> None:
    environment = engine.engine
    environment.globals["static"] = ASSETS.urls.__getitem__
    environment.filters["utc"] = _utc
    environment.filters["iso"] = _iso


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_engine
    )


NOT_FOUND = (
    "Nothing here: no such page, or no such person, group, token or webhook in your organization."
)


def _error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Any failure as a page; a request without a valid session to the sign-in page."""
    if isinstance(exc, SignedOut):
        services: Services = request.app.state.services
        target = f"{CONSOLE_PATH}/sign-in" + (f"?problem={exc.problem}" if exc.problem else "")
        return Redirect(target, status_code=303, cookies=[session_cookie(services, None)])
    if isinstance(exc, Refused):
        return pages.message("Not allowed", str(exc), status=403)
    if isinstance(exc, LookupError):
        return pages.message("Not found", NOT_FOUND, status=404)
    if isinstance(exc, AlreadySent):
        return pages.message("Already done", str(exc), status=409)
    error = reported(request, exc)  # logged if unexpected
    if error.status < 500:
        return pages.message("Error", error.detail, status=error.status)
    return pages.message(
        "Error",
        "Something went wrong on the server; it has been logged. Try again, and if it "
        f"persists, give your operator this request id: {envelope.request_id(request.scope)}",
        status=error.status,
    )


def router() -> Router:
    return Router(
        path=CONSOLE_PATH,
        route_handlers=[
            static,
            *pages.ROUTES,
            *sso.ROUTES,
            *admins.ROUTES,
            *people.ROUTES,
            *audit.ROUTES,
            *operations.ROUTES,
            *webhooks.ROUTES,
            *schemas.ROUTES,
        ],
        include_in_schema=False,
        response_headers=[
            ResponseHeader(name="content-security-policy", value=POLICY),
            # Not no-referrer, the rest of the server's: with it a browser sends a form's
            # Origin as "null", and the origin check could not tell the console's own forms.
            ResponseHeader(name="referrer-policy", value="same-origin"),
        ],
        exception_handlers={Exception: _error},
    )
