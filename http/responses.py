"""SCIM wire format: the media type, message URNs, and JSON responses."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response

SCIM_MEDIA_TYPE = "application/scim+json"
# Where the SCIM API is served: resources' locations and the connector base URL end here.
SCIM_BASE_PATH = "/scim/v2"

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

_encoder = msgspec.json.Encoder()


def scim_response(
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    media_type: str = SCIM_MEDIA_TYPE,
) -> Response[bytes]:
    return Response(
        content=_encoder.encode(body), status_code=status, media_type=media_type, headers=headers
    )


def list_response(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": start_index,
        "Resources": resources,
    }


def resource_response(
    resource: dict[str, Any], version: int, status: int = 200, location: str | None = None
) -> Response[bytes]:
    """A single resource, with its ETag (and Location when created)."""
    headers = {"ETag": etag(version)}
    if location is not None:
        headers["Location"] = location
    return scim_response(resource, status=status, headers=headers)


def not_modified_response(version: int) -> Response[bytes]:
    return Response(content=b"", status_code=304, headers={"ETag": etag(version)})


def etag(version: int) -> str:
    return f'W/"{version}"'


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    """Plain JSON, for the admin API."""
    return scim_response(body, status, headers, media_type="application/json")
