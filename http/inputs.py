"""Reading SCIM requests: bodies, query parameters, resource ids, the base URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

import msgspec
from litestar import Request

from scimledger.http.attributes import Selection, selection
from scimledger.http.errors import ScimError, invalid_value
from scimledger.http.responses import SCIM_BASE_PATH
from scimledger.projections.filters import FilterError, parse_attr_path, parse_filter
from scimledger.projections.scim import Query

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_START_INDEX = 2**53
# What a request body may hold (the body itself is at most 1 MiB, http/app.py): SCIM
# documents nest 5 levels at most (a PATCH value holding an extension's complex attribute).
MAX_NESTING = 16
MAX_STRING = 8192  # characters, for any string: a value or a member name

_decode = msgspec.json.Decoder().decode


def decode_body(body: bytes) -> Any:
    if not body.strip():
        raise ScimError(400, "The request body is empty", "invalidSyntax")
    try:
        document = _decode(body)
    except msgspec.DecodeError as exc:
        raise ScimError(400, f"The request body is not valid JSON: {exc}", "invalidSyntax") from exc
    except RecursionError as exc:  # the decoder's own bound, far deeper than MAX_NESTING
        raise _too_deep() from exc
    _check_document(document)
    return document


def _check_document(document: Any) -> None:
    """Refuses what no SCIM document holds and storage should never see: nesting deeper than
    MAX_NESTING, strings longer than MAX_STRING, NUL characters (PostgreSQL cannot store
    them in text). Iterative: a body nested 500,000 deep must not exhaust the stack."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_string(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_NESTING:
            raise _too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_string(key)
                pending.append((item, depth + 1))
        else:
            pending.extend((item, depth + 1) for item in value)


def _too_deep() -> ScimError:
    return ScimError(
        400, f"The request body nests deeper than {MAX_NESTING} levels", "invalidSyntax"
    )


def _check_string(text: str) -> None:
    if len(text) > MAX_STRING:
        raise invalid_value(f"A value is longer than {MAX_STRING} characters")
    if "\x00" in text:
        raise invalid_value("A value holds a NUL character")


def base_url(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/") + SCIM_BASE_PATH


def query_param(request: Request[Any, Any, Any], name: str) -> str | None:
    """A query parameter, its name matched case-insensitively (the first, if repeated)."""
    scope = cast("dict[str, Any]", request.scope)
    params: dict[str, str] | None = scope.get(_PARAMS)
    if params is None:  # once per request: a list reads seven of them
        params = {}
        for key, value in request.query_params.items():
            if "\x00" in key or "\x00" in value:
                raise invalid_value("A query parameter holds a NUL character")
            params.setdefault(key.lower(), value)
        scope[_PARAMS] = params
    return params.get(name.lower())


_PARAMS = "scimledger.params"  # the request's query parameters by lower-case name


def list_query(request: Request[Any, Any, Any]) -> Query:
    """filter, sortBy, sortOrder, startIndex and count from a GET's query parameters."""
    return _query(lambda name: query_param(request, name))


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
    query = _query(lambda name: fields.get(name.lower()))
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


def _query(parameter: Callable[[str], Any]) -> Query:
    """The query of the five parameters, each by its name as `parameter` gives it."""
    start_index = _integer(parameter("startIndex"), "startIndex")
    count = _integer(parameter("count"), "count")
    order = (parameter("sortOrder") or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise invalid_value("sortOrder must be ascending or descending")
    sort_by = parameter("sortBy")
    try:
        sort_path = parse_attr_path(sort_by) if sort_by else None
    except FilterError as exc:
        raise invalid_value(f"sortBy: {exc}") from exc
    filter_text = parameter("filter")
    return Query(
        where=parse_filter(filter_text) if filter_text is not None else None,
        sort_by=sort_path,
        descending=order == "descending",
        # RFC 7644 3.4.2.4: a startIndex below 1 means 1; a negative count means 0.
        # Past MAX_START_INDEX no page holds anything: the same empty page, with no
        # offset that overflows the database's integers.
        start_index=max(1, min(MAX_START_INDEX, start_index if start_index is not None else 1)),
        count=min(MAX_COUNT, max(0, count if count is not None else DEFAULT_COUNT)),
    )


def resource_id(text: str) -> UUID | None:
    """The UUID in a path, or None when it cannot name any resource (then: 404)."""
    try:
        return UUID(text)
    except ValueError:
        return None


def requested(request: Request[Any, Any, Any]) -> Selection:
    """The selection a request's `attributes` and `excludedAttributes` parameters make."""
    return selection(query_param(request, "attributes"), query_param(request, "excludedAttributes"))
