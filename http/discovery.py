"""SCIM discovery (RFC 7644 section 4): exactly what this server supports, no more."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from scimledger.http.auth import declared_for
from scimledger.http.errors import ScimError
from scimledger.http.inputs import MAX_COUNT, base_url
from scimledger.http.responses import list_response, scim_response
from scimledger.http.services import Injected, Services
from scimledger.ledger.schemas import Declared, ResourceSchemas


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


def resource_types(base: str, declared: Declared) -> dict[str, dict[str, Any]]:
    def described(
        name: str, endpoint: str, schemas: ResourceSchemas, description: str
    ) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": name,
            "name": name,
            "endpoint": endpoint,
            "description": description,
            "schema": schemas.core.id,
            "schemaExtensions": [
                {"schema": extension.schema.id, "required": extension.required}
                for extension in schemas.extensions
            ],
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{name}"},
        }

    return {
        "User": described("User", "/Users", declared.user, "User Account"),
        "Group": described("Group", "/Groups", declared.group, "Group"),
    }


@get("/ServiceProviderConfig")
async def get_service_provider_config(request: Request[Any, Any, Any]) -> Response[bytes]:
    return scim_response(service_provider_config(base_url(request)))


# Discovery is public; with a token it describes the token's organization, its declared
# extensions included (auth.declared_for), so that strict clients accept its resources.


@get("/ResourceTypes", sync_to_thread=True)
def list_resource_types(
    request: Request[Any, Any, Any], services: Injected[Services]
) -> Response[bytes]:
    types = list(resource_types(base_url(request), declared_for(services, request)).values())
    return scim_response(list_response(types, len(types), 1))


@get("/ResourceTypes/{name:str}", sync_to_thread=True)
def get_resource_type(
    request: Request[Any, Any, Any], name: FromPath[str], services: Injected[Services]
) -> Response[bytes]:
    described = resource_types(base_url(request), declared_for(services, request)).get(name)
    if described is None:
        raise ScimError(404, f"Resource type {name} not found")
    return scim_response(described)


@get("/Schemas", sync_to_thread=True)
def list_schemas(request: Request[Any, Any, Any], services: Injected[Services]) -> Response[bytes]:
    base = base_url(request)
    described = [schema.describe(base) for schema in declared_for(services, request).schemas()]
    return scim_response(list_response(described, len(described), 1))


@get("/Schemas/{schema_id:str}", sync_to_thread=True)
def get_schema(
    request: Request[Any, Any, Any], schema_id: FromPath[str], services: Injected[Services]
) -> Response[bytes]:
    schema = declared_for(services, request).schema(schema_id)
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
