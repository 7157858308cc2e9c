"""The Litestar application: routes, dependencies, and the exception mapping."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from scimledger import __version__
from scimledger.http import admin, console, discovery, envelope, health, metrics, resources
from scimledger.http.errors import handle_exception
from scimledger.http.responses import SCIM_BASE_PATH
from scimledger.http.services import Services

MAX_BODY_BYTES = 1024 * 1024


def create_app(services: Services) -> Litestar:
    """The app, serving `services` (see `bind`)."""
    scim = Router(
        path=SCIM_BASE_PATH,
        include_in_schema=False,
        # Each resource handler authenticates first (auth.scim_context); discovery is public.
        route_handlers=[*resources.ROUTES, *discovery.ROUTES],
    )
    app = Litestar(
        route_handlers=[
            scim,
            admin.router(),
            console.router(),
            *health.ROUTES,
            *metrics.ROUTES,
        ],
        # Handlers of both APIs are given the services by name (`services: Injected[Services]`).
        dependencies={"services": Provide(_services, sync_to_thread=False)},
        # With `serve --metrics-port`, /metrics on that port only (none of the SCIM API there).
        guards=[metrics.on_its_port] if services.metrics_port is not None else [],
        exception_handlers={Exception: handle_exception},
        request_max_body_size=MAX_BODY_BYTES,
        template_config=console.template_config(),
        # The admin API's OpenAPI document, at /admin/v1/openapi.json (SCIM is described by
        # its own discovery endpoints instead).
        openapi_config=OpenAPIConfig(
            title="scimledger admin API",
            version=__version__,
            description="Tokens, admins, settings and the audit trail of one organization.",
            path="/admin/v1",
            render_plugins=[JsonRenderPlugin()],
            use_handler_docstrings=True,
            security=[{"bearer": []}],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="scl_")
                }
            ),
        ),
        debug=False,
        # The process configures logging (scripts/logs.py); Litestar must not replace it.
        logging_config=None,
    )
    bind(app, services)
    return envelope.install(app)


def bind(app: Litestar, services: Services) -> None:
    """Makes `app` serve `services`: the one place they are kept (`app.state.services`), with
    what is kept per app about them (the readiness cache, the metrics registry). The tests
    rebind one app to each test's services, building an app costing them ~150 ms."""
    app.state.services = services
    health.install(app, services)
    metrics.install(app, services)


def _services(state: State) -> Services:
    services: Services = state.services
    return services
