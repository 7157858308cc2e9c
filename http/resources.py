"""SCIM /Users and /Groups (RFC 7644 section 3): the seven routes of each resource type, and
POST /.search over both, translating HTTP to what users.py and groups.py do, nothing more."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from litestar import Request, Response, delete, get, patch, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import RawBody

from scimledger.http import groups, users
from scimledger.http.attributes import Selection
from scimledger.http.auth import scim_context
from scimledger.http.etags import check_if_match, not_modified
from scimledger.http.inputs import (
    base_url,
    decode_body,
    list_query,
    requested,
    resource_id,
    search_query,
)
from scimledger.http.responses import (
    list_response,
    not_modified_response,
    resource_response,
    scim_response,
)
from scimledger.http.services import Injected, Services, read_your_writes
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import VersionCheck, Written
from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import GroupNotFound, UserNotFound
from scimledger.projections.filters import FilterError
from scimledger.projections.scim import Query
from scimledger.projections.sql_filters import SortError

Resource = dict[str, Any]
# A write of an existing resource (PUT, PATCH): its id, the request's body, If-Match.
Write = Callable[[Services, CommandContext, UUID, Any, str | None], Written]


@dataclass(frozen=True)
class ResourceType:
    endpoint: str  # "/Users"
    # The path parameter naming one resource; the access log shows it in the route.
    id_parameter: str
    not_found: Callable[[str], Exception]
    search: Callable[[Services, CommandContext, Query, Selection, str], tuple[int, list[Resource]]]
    read: Callable[[Services, CommandContext, str, Selection, str], tuple[Resource, int]]
    # The new resource's id, and the resource and version to answer with.
    create: Callable[[Services, CommandContext, Any, Selection, str], tuple[UUID, Resource, int]]
    replace: Write
    patch: Write
    delete: Callable[[Ledger, CommandContext, UUID, VersionCheck], Written]


USERS = ResourceType(
    endpoint="/Users",
    id_parameter="user_id",
    not_found=UserNotFound,
    search=users.search_users,
    read=users.read_user,
    create=users.create_user,
    replace=users.replace_user,
    patch=users.patch_user,
    delete=Ledger.delete_user,
)
GROUPS = ResourceType(
    endpoint="/Groups",
    id_parameter="group_id",
    not_found=GroupNotFound,
    search=groups.search_groups,
    read=groups.read_group,
    create=groups.create_group,
    replace=groups.replace_group,
    patch=groups.patch_group,
    delete=Ledger.delete_group,
)


def routes(kind: ResourceType) -> list[HTTPRouteHandler]:
    one = f"{kind.endpoint}/{{{kind.id_parameter}:str}}"

    def path_id(request: Request[Any, Any, Any]) -> UUID:
        text = request.path_params[kind.id_parameter]
        parsed = resource_id(text)
        if parsed is None:
            raise kind.not_found(text)
        return parsed

    def edited(
        request: Request[Any, Any, Any], body: bytes, services: Services, write: Write
    ) -> Response[bytes]:
        """A PUT or PATCH: the resource as the read model has it once it has the write."""
        context = scim_context(services, request)
        chosen = requested(request)  # a bad parameter refuses the write before it is made
        if_match = request.headers.get("if-match")
        written = write(services, context, path_id(request), decode_body(body), if_match)
        services.scim.wait_for(written.position)
        resource, version = kind.read(services, context, str(written.id), chosen, base_url(request))
        return resource_response(resource, version)

    @get(kind.endpoint, sync_to_thread=True)
    def list_resources(
        request: Request[Any, Any, Any], services: Injected[Services]
    ) -> Response[bytes]:
        context = scim_context(services, request)
        query = list_query(request)
        chosen = requested(request)
        total, resources = kind.search(services, context, query, chosen, base_url(request))
        return scim_response(list_response(resources, total, query.start_index))

    @post(f"{kind.endpoint}/.search", sync_to_thread=True, status_code=200)
    def search_resources(
        request: Request[Any, Any, Any], body: RawBody, services: Injected[Services]
    ) -> Response[bytes]:
        context = scim_context(services, request)
        query, chosen = search_query(decode_body(body))
        total, resources = kind.search(services, context, query, chosen, base_url(request))
        return scim_response(list_response(resources, total, query.start_index))

    @get(one, sync_to_thread=True)
    def get_resource(
        request: Request[Any, Any, Any], services: Injected[Services]
    ) -> Response[bytes]:
        context = scim_context(services, request)
        wanted = str(path_id(request))
        resource, version = kind.read(
            services, context, wanted, requested(request), base_url(request)
        )
        if not_modified(request.headers.get("if-none-match"), version):
            return not_modified_response(version)
        return resource_response(resource, version)

    @post(kind.endpoint, sync_to_thread=True)
    def create_resource(
        request: Request[Any, Any, Any], body: RawBody, services: Injected[Services]
    ) -> Response[bytes]:
        context = scim_context(services, request)
        chosen = requested(request)  # a bad parameter refuses the write before it is made
        base = base_url(request)
        created, resource, version = kind.create(services, context, decode_body(body), chosen, base)
        location = f"{base}{kind.endpoint}/{created}"
        return resource_response(resource, version, status=201, location=location)

    @put(one, sync_to_thread=True)
    def replace_resource(
        request: Request[Any, Any, Any], body: RawBody, services: Injected[Services]
    ) -> Response[bytes]:
        return edited(request, body, services, kind.replace)

    @patch(one, sync_to_thread=True)
    def patch_resource(
        request: Request[Any, Any, Any], body: RawBody, services: Injected[Services]
    ) -> Response[bytes]:
        return edited(request, body, services, kind.patch)

    @delete(one, sync_to_thread=True, status_code=204)
    def delete_resource(request: Request[Any, Any, Any], services: Injected[Services]) -> None:
        context = scim_context(services, request)
        if_match = request.headers.get("if-match")
        written = kind.delete(
            services.ledger, context, path_id(request), lambda v: check_if_match(if_match, v)
        )
        read_your_writes(services, written)

    return [
        list_resources,
        search_resources,
        get_resource,
        create_resource,
        replace_resource,
        patch_resource,
        delete_resource,
    ]


@post("/.search", sync_to_thread=True, status_code=200)
def search_all(
    request: Request[Any, Any, Any], body: RawBody, services: Injected[Services]
) -> Response[bytes]:
    """POST /.search (RFC 7644 section 3.4.3): one search over users and groups.

    Users come first, then groups, each in the query's order. A filter naming an attribute
    one resource type does not have selects nothing of that type; only a filter neither type
    can evaluate is an error."""
    context = scim_context(services, request)
    query, chosen = search_query(decode_body(body))
    base = base_url(request)
    searches = (USERS.search, GROUPS.search)
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
    resources: list[Resource] = []
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


ROUTES = [*routes(USERS), *routes(GROUPS), search_all]
