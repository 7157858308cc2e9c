"""Reading SCIM requests: bodies, query parameters, resource ids, the base URL."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import msgspec
from litestar import Request

from scimledger.http.attributes import Selection, selection
from scimledger.http.errors import ScimError, invalid_value
from scimledger.projections.filters import FilterError, parse_attr_path, parse_filter
from scimledger.projections.scim import Query

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

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
    """A query parameter, its name matched case-insensitively (the first, if repeated)."""
    scope = cast("dict[str, Any]", request.scope)
    params: dict[str, str] | None = scope.get(_PARAMS)
    if params is None:  # once per request: a list reads seven of them
        params = {}
        for key, value in request.query_params.items():
            params.setdefault(key.lower(), value)
        scope[_PARAMS] = params
    return params.get(name.lower())


_PARAMS = "scimledger.params"  # the request's query parameters by lower-case name


def list_query(request: Request[Any, Any, Any]) -> Query:
    """filter, sortBy, sortOrder, startIndex and count from a GET's query parameters."""
    return _query(
        filter_text=query_param(request, "filter"),
        sort_by=query_param(request, "sortBy"),
        sort_order=query_param(request, "sortOrder"),
        start_index=_integer(query_param(request, "startIndex"), "startIndex"),
        count=_integer(query_param(request, "count"), "count"),
    )


def search_query(body: Any) -> tuple[Query, Selection]:
    """The same from a SearchRequest body (POST .search, RFC 7644 section 3.4.3)."""
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    fields = {key.lower(): value for key, value in body.items()}
    schemas = fields.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST not in schemas:
        raise ScimError(400, f"A search must list the schema {SEARCH_REQUEST}", "invalidSyntax")
    for name in ("filter", "sortby", "sortorder"):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise invalid_value(f"{name} must be a string")
    query = _query(
        filter_text=fields.get("filter"),
        sort_by=fields.get("sortby"),
        sort_order=fields.get("sortorder"),
        start_index=_integer(fields.get("startindex"), "startIndex"),
        count=_integer(fields.get("count"), "count"),
    )
    return query, selection(_names(fields, "attributes"), _names(fields, "excludedattributes"))


def _names(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_value(f"{name} must be an array of attribute names")
    return ",".join(value)


def _integer(raw: Any, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise invalid_value(f"{name} must be an integer")
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise invalid_value(f"{name} must be an integer") from exc


def _query(
    *,
    filter_text: str | None,
    sort_by: str | None,
    sort_order: str | None,
    start_index: int | None,
    count: int | None,
) -> Query:
    order = (sort_order or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise invalid_value("sortOrder must be ascending or descending")
    try:
        sort_path = parse_attr_path(sort_by) if sort_by else None
    except FilterError as exc:
        raise invalid_value(f"sortBy: {exc}") from exc
    return Query(
        where=parse_filter(filter_text) if filter_text is not None else None,
        sort_by=sort_path,
        descending=order == "descending",
        # RFC 7644 3.4.2.4: a startIndex below 1 means 1; a negative count means 0.
        start_index=max(1, start_index if start_index is not None else 1),
        count=min(MAX_COUNT, max(0, count if count is not None else DEFAULT_COUNT)),
    )


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


def requested(request: Request[Any, Any, Any]) -> Selection:
    """The selection a request's `attributes` and `excludedAttributes` parameters make."""
    return selection(query_param(request, "attributes"), query_param(request, "excludedAttributes"))
