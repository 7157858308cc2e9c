"""The Litestar application: routes, dependencies, and the exception mapping."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Router
from litestar.di import Provide

from scimledger.http import admin, discovery, groups, search, users
from scimledger.http.auth import command_context
from scimledger.http.errors import handle_exception
from scimledger.http.services import Services
from scimledger.ledger.context import CommandContext

SCIM_BASE_PATH = "/scim/v2"
MAX_BODY_BYTES = 1024 * 1024


def create_app(services: Services) -> Litestar:
    def provide_services() -> Services:
        return services

    def provide_context(request: Request[Any, Any, Any]) -> CommandContext:
        return command_context(services, request)

    scim = Router(
        path=SCIM_BASE_PATH,
        route_handlers=[
            Router(
                path="/",
                route_handlers=[*users.ROUTES, *groups.ROUTES, *search.ROUTES],
                dependencies={"context": Provide(provide_context, sync_to_thread=True)},
            ),
            *discovery.ROUTES,
        ],
    )
    return Litestar(
        route_handlers=[scim, admin.router(services)],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers={Exception: handle_exception},
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        debug=False,
    )
