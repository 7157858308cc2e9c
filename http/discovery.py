"""SCIM discovery (RFC 7644 section 4): exactly what this server supports, no more."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from scimledger.http.errors import ScimError
from scimledger.http.inputs import MAX_COUNT, base_url
from scimledger.http.responses import list_response, scim_response
from scimledger.ledger.schemas import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE,
    ENTERPRISE_USER,
    GROUP,
    USER,
)

_SCHEMAS = {schema.id: schema for schema in (USER, GROUP, ENTERPRISE)}


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/scimledger/scimledger#readme",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A token issued with `scimledger tokens issue`, sent as "
                "`Authorization: Bearer <token>`.",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def resource_types(base: str) -> dict[str, dict[str, Any]]:
    def described(name: str, endpoint: str, schema: str, description: str) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": name,
            "name": name,
            "endpoint": endpoint,
            "description": description,
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{name}"},
        }

    user = described("User", "/Users", CORE_USER, "User Account")
    user["schemaExtensions"] = [{"schema": ENTERPRISE_USER, "required": False}]
    group = described("Group", "/Groups", CORE_GROUP, "Group")
    group["schemaExtensions"] = []
    return {"User": user, "Group": group}


@get("/ServiceProviderConfig")
async def get_service_provider_config(request: Request[Any, Any, Any]) -> Response[bytes]:
    return scim_response(service_provider_config(base_url(request)))


@get("/ResourceTypes")
async def list_resource_types(request: Request[Any, Any, Any]) -> Response[bytes]:
    types = list(resource_types(base_url(request)).values())
    return scim_response(list_response(types, len(types), 1))


@get("/ResourceTypes/{name:str}")
async def get_resource_type(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[bytes]:
    described = resource_types(base_url(request)).get(name)
    if described is None:
        raise ScimError(404, f"Resource type {name} not found")
    return scim_response(described)


@get("/Schemas")
async def list_schemas(request: Request[Any, Any, Any]) -> Response[bytes]:
    base = base_url(request)
    described = [schema.describe(base) for schema in _SCHEMAS.values()]
    return scim_response(list_response(described, len(described), 1))


@get("/Schemas/{schema_id:str}")
async def get_schema(request: Request[Any, Any, Any], schema_id: FromPath[str]) -> Response[bytes]:
    schema = _SCHEMAS.get(schema_id)
    if schema is None:
        raise ScimError(404, f"Schema {schema_id} not found")
    return scim_response(schema.describe(base_url(request)))


@cache
def _openapi_document() -> bytes:
    return Path(__file__).with_name("scim_openapi.json").read_bytes()


@get("/openapi.json")
async def get_openapi_document() -> Response[bytes]:
    """The SCIM API as an OpenAPI 3.0 document (for client generators and API fuzzers;
    SCIM clients discover the server through the endpoints above)."""
    return Response(content=_openapi_document(), media_type="application/json")


ROUTES = [
    get_openapi_document,
    get_service_provider_config,
    list_resource_types,
    get_resource_type,
    list_schemas,
    get_schema,
]
