"""SCIM /Groups: translates HTTP to ledger commands and read-model queries.

Who joins and leaves is the ledger's to work out (ledger.members), against the read model
it is given (`Services.directory`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, delete, get, patch, post, put
from litestar.params import FromPath, RawBody

from scimledger.http.attributes import Selection
from scimledger.http.auth import scim_context
from scimledger.http.etags import check_if_match, not_modified
from scimledger.http.group_patch import plan_group_patch
from scimledger.http.inputs import (
    base_url,
    decode_body,
    list_query,
    requested,
    resource_id,
    search_query,
)
from scimledger.http.responses import (
    CORE_GROUP,
    list_response,
    not_modified_response,
    resource_response,
    scim_response,
)
from scimledger.http.schemas import parse_group
from scimledger.http.services import Injected, Services, read_your_writes
from scimledger.ledger.commands import GroupUpdate, NewGroup, Written
from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import GroupNotFound
from scimledger.projections import scim
from scimledger.projections.scim import Query
from scimledger.projections.sql import Cursor


def render_group(
    row: scim.GroupRow, members: list[scim.Member] | None, base: str
) -> dict[str, Any]:
    resource: dict[str, Any] = {"schemas": [CORE_GROUP], "id": row.id}
    if row.external_id is not None:
        resource["externalId"] = row.external_id
    resource["displayName"] = row.display_name
    if members:
        resource["members"] = [
            {
                "value": member.id,
                "$ref": f"{base}/Users/{member.id}",
                "display": member.display,
                "type": "User",
            }
            for member in members
        ]
    resource["meta"] = {
        "resourceType": "Group",
        "created": row.created,
        "lastModified": row.last_modified,
        "location": f"{base}/Groups/{row.id}",
        "version": f'W/"{row.version}"',
    }
    return resource


def _render(
    cursor: Cursor, rows: list[scim.GroupRow], base: str, chosen: Selection
) -> list[dict[str, Any]]:
    # Members are read only when they are returned: a big group then costs nothing.
    members = scim.members_of(cursor, [r.id for r in rows]) if chosen.returns("members") else {}
    return [chosen.apply(render_group(row, members.get(row.id), base)) for row in rows]


def _read(
    services: Services,
    context: CommandContext,
    group_id: str,
    request: Request[Any, Any, Any],
    chosen: Selection,
) -> tuple[dict[str, Any], int]:
    """The group as the read model has it, with its version (and the members of that
    version: one snapshot)."""
    with services.sql.snapshot() as cursor:
        row = scim.get_group(cursor, context.org_id, group_id)
        if row is None:
            raise GroupNotFound(group_id)
        [resource] = _render(cursor, [row], base_url(request), chosen)
    return resource, row.version


def _read_back(
    services: Services,
    context: CommandContext,
    written: Written,
    request: Request[Any, Any, Any],
    chosen: Selection,
) -> tuple[dict[str, Any], int]:
    services.scim.wait_for(written.position)
    return _read(services, context, str(written.id), request, chosen)


def _group_id(text: str) -> UUID:
    group_id = resource_id(text)
    if group_id is None:
        raise GroupNotFound(text)
    return group_id


def _update(
    services: Services,
    context: CommandContext,
    group_id: UUID,
    update: GroupUpdate,
    request: Request[Any, Any, Any],
) -> Written:
    if_match = request.headers.get("if-match")
    return services.ledger.update_group(
        context,
        group_id,
        update,
        services.directory,
        check=lambda version: check_if_match(if_match, version),
    )


def search_groups(
    services: Services, context: CommandContext, query: Query, chosen: Selection, base: str
) -> tuple[int, list[dict[str, Any]]]:
    """The total and one page of the organization's groups a query selects."""
    with services.sql.snapshot() as cursor:
        total, rows = scim.list_groups(cursor, context.org_id, query)
        return total, _render(cursor, rows, base, chosen)


@get("/Groups", sync_to_thread=True)
def list_groups(
    request: Request[Any, Any, Any],
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    query = list_query(request)
    total, resources = search_groups(
        services, context, query, requested(request), base_url(request)
    )
    return scim_response(list_response(resources, total, query.start_index))


@post("/Groups/.search", sync_to_thread=True, status_code=200)
def search_groups_by_post(
    request: Request[Any, Any, Any],
    body: RawBody,
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    query, chosen = search_query(decode_body(body))
    total, resources = search_groups(services, context, query, chosen, base_url(request))
    return scim_response(list_response(resources, total, query.start_index))


@get("/Groups/{group_id:str}", sync_to_thread=True)
def get_group(
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    resource, version = _read(
        services, context, str(_group_id(group_id)), request, requested(request)
    )
    if not_modified(request.headers.get("if-none-match"), version):
        return not_modified_response(version)
    return resource_response(resource, version)


@post("/Groups", sync_to_thread=True)
def create_group(
    request: Request[Any, Any, Any],
    body: RawBody,
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    given = parse_group(decode_body(body))
    written = services.ledger.create_group(
        context, NewGroup(given.display_name, given.external_id, given.members), services.directory
    )
    resource, version = _read_back(services, context, written, request, chosen)
    location = f"{base_url(request)}/Groups/{written.id}"
    return resource_response(resource, version, status=201, location=location)


@put("/Groups/{group_id:str}", sync_to_thread=True)
def replace_group(
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
    body: RawBody,
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    gid = _group_id(group_id)
    given = parse_group(decode_body(body))
    update = GroupUpdate(display_name=given.display_name, external_id=given.external_id)
    update.set_members(given.members)
    written = _update(services, context, gid, update, request)
    resource, version = _read_back(services, context, written, request, chosen)
    return resource_response(resource, version)


@patch("/Groups/{group_id:str}", sync_to_thread=True)
def patch_group(
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
    body: RawBody,
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    gid = _group_id(group_id)
    written = _update(services, context, gid, plan_group_patch(decode_body(body)), request)
    resource, version = _read_back(services, context, written, request, chosen)
    return resource_response(resource, version)


@delete("/Groups/{group_id:str}", sync_to_thread=True, status_code=204)
def delete_group(
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
    services: Injected[Services],
) -> None:
    context = scim_context(services, request)
    if_match = request.headers.get("if-match")
    written = services.ledger.delete_group(
        context, _group_id(group_id), check=lambda version: check_if_match(if_match, version)
    )
    read_your_writes(services, written)


ROUTES = [
    list_groups,
    search_groups_by_post,
    get_group,
    create_group,
    replace_group,
    patch_group,
    delete_group,
]
