"""Reading SCIM requests: bodies, query parameters, resource ids, the base URL."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request

from scimledger.http.errors import ScimError, invalid_value

DEFAULT_COUNT = 100
MAX_COUNT = 1000

_decode = msgspec.json.Decoder().decode


def decode_body(body: bytes) -> Any:
    if not body.strip():
        raise ScimError(400, "The request body is empty", "invalidSyntax")
    try:
        return _decode(body)
    except msgspec.DecodeError as exc:
        raise ScimError(400, f"The request body is not valid JSON: {exc}", "invalidSyntax") from exc


def base_url(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


def query_param(request: Request[Any, Any, Any], name: str) -> str | None:
    """A query parameter, its name matched case-insensitively."""
    lower = name.lower()
    return next((v for k, v in request.query_params.items() if k.lower() == lower), None)


def int_param(request: Request[Any, Any, Any], name: str, default: int) -> int:
    raw = query_param(request, name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise invalid_value(f"{name} must be an integer") from exc


def paging(request: Request[Any, Any, Any]) -> tuple[int, int]:
    """startIndex (1-based, at least 1) and count (0 to MAX_COUNT, default DEFAULT_COUNT)."""
    start_index = max(1, int_param(request, "startIndex", 1))
    count = min(MAX_COUNT, max(0, int_param(request, "count", DEFAULT_COUNT)))
    return start_index, count


def resource_id(text: str) -> UUID | None:
    """The UUID in a path, or None when it cannot name any resource (then: 404)."""
    try:
        return UUID(text)
    except ValueError:
        return None


def parse_ids(ids: list[str]) -> tuple[list[UUID], list[str]]:
    """The ids that are UUIDs, normalized, and those that are not."""
    good: list[UUID] = []
    bad: list[str] = []
    for text in ids:
        parsed = resource_id(text)
        if parsed is None:
            bad.append(text)
        else:
            good.append(parsed)
    return good, bad
