"""POST /.search (RFC 7644 section 3.4.3): one search over users and groups.

Users come first, then groups, each in the query's order. A filter naming an attribute one
resource type does not have selects nothing of that type; only a filter neither type can
evaluate is an error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from litestar import Request, Response, post
from litestar.params import RawBody

from scimledger.http.auth import scim_context
from scimledger.http.groups import search_groups
from scimledger.http.inputs import base_url, decode_body, search_query
from scimledger.http.responses import list_response, scim_response
from scimledger.http.services import Injected, Services
from scimledger.http.users import search_users
from scimledger.projections.filters import FilterError
from scimledger.projections.sql_filters import SortError


@post("/.search", sync_to_thread=True, status_code=200)
def search_all(
    request: Request[Any, Any, Any],
    body: RawBody,
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    query, chosen = search_query(decode_body(body))
    base = base_url(request)
    searches = (search_users, search_groups)
    totals: list[int | None] = []
    errors: list[Exception] = []
    for search in searches:
        try:
            totals.append(search(services, context, replace(query, count=0), chosen, base)[0])
        except (FilterError, SortError) as exc:
            totals.append(None)
            errors.append(exc)
    if len(errors) == len(searches):
        raise errors[0]
    resources: list[dict[str, Any]] = []
    offset = query.start_index - 1  # into the concatenation of users and groups
    for search, total in zip(searches, totals, strict=True):
        if total is None:
            continue
        wanted = query.count - len(resources)
        if wanted > 0 and offset < total:
            page = replace(query, start_index=offset + 1, count=wanted)
            resources += search(services, context, page, chosen, base)[1]
        offset = max(0, offset - total)
    grand_total = sum(total for total in totals if total is not None)
    return scim_response(list_response(resources, grand_total, query.start_index))


ROUTES = [search_all]
