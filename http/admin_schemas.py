"""The admin API's extension schemas: the custom attributes an organization declares
(ledger.schemas), as `scimledger schemas` does from a terminal.

For tokens with the `admin` scope, in the token's own organization:
- GET /admin/v1/schemas: every declaration (its resource type, whether it is required, and
  the schema as /Schemas describes it);
- GET /admin/v1/schemas/{urn}: one;
- POST /admin/v1/schemas, {"schema": <RFC 7643 section 7 document>, "resourceType": "User"
  (default: the URN's last part), "required": false}: declares it, or changes its
  declaration (201 declared, 200 changed or unchanged; `changed` says which);
- DELETE /admin/v1/schemas/{urn}[?force=true]: stops accepting and returning its values;
  409 while users hold values of it, unless forced (the values stay in their events).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from scimledger.http.errors import ScimError
from scimledger.http.inputs import query_param
from scimledger.http.responses import json_response
from scimledger.http.services import Injected, Services
from scimledger.ledger.context import CommandContext
from scimledger.ledger.schemas import RESOURCE_TYPES, declaration_view
from scimledger.projections.scim import extension_holders, extension_values_counter


class DeclareRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    schema: dict[str, Any]
    resource_type: str | None = None
    required: bool = False


def _declarations(services: Services, context: CommandContext) -> dict[str, dict[str, Any]]:
    slug = services.ledger.organization_slug(context.org_id)
    return services.ledger.organization(slug).extensions


@get("/schemas", sync_to_thread=True)
def list_org_schemas(
    services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    declared = _declarations(services, context).values()
    return json_response({"schemas": [declaration_view(d) for d in declared]})


@get("/schemas/{urn:str}", sync_to_thread=True)
def get_org_schema(
    urn: FromPath[str], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    organization = services.ledger.organization(services.ledger.organization_slug(context.org_id))
    return json_response(declaration_view(organization.declaration(urn)))


@post("/schemas", sync_to_thread=True)
def declare_org_schema(
    request: Request[Any, Any, Any],
    data: JSONBody[DeclareRequest],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    if data.resource_type is not None and data.resource_type not in RESOURCE_TYPES:
        raise ScimError(400, f"resourceType must be one of {', '.join(RESOURCE_TYPES)}")
    slug = services.ledger.organization_slug(context.org_id)
    existed = {urn.lower() for urn in _declarations(services, context)}
    urn, changed = services.ledger.declare_schema(
        slug,
        data.schema,
        context.actor,
        context.request,
        extension_holders(services.sql),
        resource_type=data.resource_type,
        required=data.required,
    )
    body = {**declaration_view(services.ledger.organization(slug).extensions[urn])}
    body["changed"] = changed
    return json_response(body, status=200 if urn.lower() in existed else 201)


@delete("/schemas/{urn:str}", sync_to_thread=True, status_code=204)
def remove_org_schema(
    request: Request[Any, Any, Any],
    urn: FromPath[str],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> None:
    services.ledger.remove_schema(
        services.ledger.organization_slug(context.org_id),
        urn,
        extension_values_counter(services.sql),
        context.actor,
        context.request,
        force=query_param(request, "force") in ("true", "1"),
    )


ROUTES = [list_org_schemas, get_org_schema, declare_org_schema, remove_org_schema]
