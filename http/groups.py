"""SCIM /Groups: translates HTTP to ledger commands and read-model queries.

Membership checks (who is a member, who is a user) read the read model, through the plan
functions the ledger calls with the group's current version; the ledger re-plans if the
group changed meanwhile.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, delete, get, patch, post, put
from litestar.params import FromPath, RawBody

from scimledger.http.attributes import Selection
from scimledger.http.auth import scim_caller
from scimledger.http.errors import invalid_value
from scimledger.http.etags import check_if_match, not_modified
from scimledger.http.group_patch import GroupPatch, Keep, plan_group_patch
from scimledger.http.inputs import (
    base_url,
    decode_body,
    list_query,
    parse_ids,
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
from scimledger.http.services import Services, read_your_writes
from scimledger.ledger.application import (
    GroupChange,
    GroupPlan,
    GroupState,
    NewGroup,
    Written,
)
from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import GroupNotFound
from scimledger.projections import scim
from scimledger.projections.scim import Query
from scimledger.projections.sql import Cursor

_SHOWN_UNKNOWN = 10


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


def _users(cursor: Cursor, context: CommandContext, ids: set[str]) -> frozenset[UUID]:
    """The given member ids as users of the organization; 400 if any is not one."""
    parsed, malformed = parse_ids(sorted(ids))
    known = scim.users_among(cursor, context.org_id, [str(u) for u in parsed])
    unknown = malformed + [str(u) for u in parsed if str(u) not in known]
    if unknown:
        shown = ", ".join(unknown[:_SHOWN_UNKNOWN]) + (
            " ..." if len(unknown) > _SHOWN_UNKNOWN else ""
        )
        raise invalid_value(
            f"Unknown member ids (members must be users of this organization; nested groups"
            f" are not supported): {shown}"
        )
    return frozenset(parsed)


def _normalized(ids: set[str]) -> list[str]:
    return [str(u) for u in parse_ids(sorted(ids))[0]]


def _plan(
    services: Services, context: CommandContext, change: GroupPatch, if_match: str | None
) -> GroupPlan:
    """The ledger's plan function for a group change, checked against the read model."""

    def plan(state: GroupState) -> GroupChange:
        check_if_match(if_match, state.version)
        services.scim.catch_up()  # the read model now reflects the group at state.version
        group_id = str(state.id)
        with services.sql.read() as cursor:
            if change.replace_members is not None:
                wanted = {str(u) for u in _users(cursor, context, change.replace_members)}
                current = scim.all_members(cursor, group_id)
                add = frozenset(UUID(u) for u in wanted - current)
                remove = {UUID(u) for u in current - wanted}
            else:
                adding = [str(u) for u in _users(cursor, context, change.add)]
                already = scim.members_among(cursor, group_id, adding)
                add = frozenset(UUID(u) for u in adding if u not in already)
                removing = _normalized(change.remove)
                remove = {UUID(u) for u in scim.members_among(cursor, group_id, removing)}
        return GroupChange(
            display_name=(
                state.display_name if isinstance(change.display_name, Keep) else change.display_name
            ),
            external_id=(
                state.external_id if isinstance(change.external_id, Keep) else change.external_id
            ),
            add=add,
            remove=frozenset(remove),
        )

    return plan


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
) -> Response[bytes]:
    services, context = scim_caller(request)
    query = list_query(request)
    total, resources = search_groups(
        services, context, query, requested(request), base_url(request)
    )
    return scim_response(list_response(resources, total, query.start_index))


@post("/Groups/.search", sync_to_thread=True, status_code=200)
def search_groups_by_post(
    request: Request[Any, Any, Any],
    body: RawBody,
) -> Response[bytes]:
    services, context = scim_caller(request)
    query, chosen = search_query(decode_body(body))
    total, resources = search_groups(services, context, query, chosen, base_url(request))
    return scim_response(list_response(resources, total, query.start_index))


@get("/Groups/{group_id:str}", sync_to_thread=True)
def get_group(
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
) -> Response[bytes]:
    services, context = scim_caller(request)
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
) -> Response[bytes]:
    services, context = scim_caller(request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    given = parse_group(decode_body(body))
    with services.sql.read() as cursor:
        members = _users(cursor, context, set(given.members))
    written = services.ledger.create_group(
        context, NewGroup(given.display_name, given.external_id, members)
    )
    resource, version = _read_back(services, context, written, request, chosen)
    location = f"{base_url(request)}/Groups/{written.id}"
    return resource_response(resource, version, status=201, location=location)


@put("/Groups/{group_id:str}", sync_to_thread=True)
def replace_group(
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
    body: RawBody,
) -> Response[bytes]:
    services, context = scim_caller(request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    gid = _group_id(group_id)
    given = parse_group(decode_body(body))
    change = GroupPatch(display_name=given.display_name, external_id=given.external_id)
    change.set_members(given.members)
    written = services.ledger.update_group(
        context, gid, _plan(services, context, change, request.headers.get("if-match"))
    )
    resource, version = _read_back(services, context, written, request, chosen)
    return resource_response(resource, version)


@patch("/Groups/{group_id:str}", sync_to_thread=True)
def patch_group(
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
    body: RawBody,
) -> Response[bytes]:
    services, context = scim_caller(request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    gid = _group_id(group_id)
    change = plan_group_patch(decode_body(body))
    written = services.ledger.update_group(
        context, gid, _plan(services, context, change, request.headers.get("if-match"))
    )
    resource, version = _read_back(services, context, written, request, chosen)
    return resource_response(resource, version)


@delete("/Groups/{group_id:str}", sync_to_thread=True, status_code=204)
def delete_group(
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
) -> None:
    services, context = scim_caller(request)
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
