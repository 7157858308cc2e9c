"""SCIM /Users: translates HTTP to ledger commands and read-model queries, nothing more."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, patch, post, put
from litestar.params import FromPath, RawBody

from scimledger.http.attributes import Selection, selection
from scimledger.http.inputs import base_url, decode_body, paging, query_param, resource_id
from scimledger.http.patch import apply_user_patch
from scimledger.http.responses import CORE_USER, ENTERPRISE_USER, list_response, scim_response
from scimledger.http.schemas import UserInput, parse_user
from scimledger.http.services import Injected, Services
from scimledger.ledger.application import NewUser, UserReplacement, UserState, Written
from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import UserNotFound
from scimledger.projections import scim
from scimledger.projections.filters import parse_filter
from scimledger.projections.sql import Cursor


def render_user(row: scim.UserRow, groups: list[scim.Member], base: str) -> dict[str, Any]:
    attributes = row.attributes
    resource: dict[str, Any] = {
        "schemas": [CORE_USER, ENTERPRISE_USER] if ENTERPRISE_USER in attributes else [CORE_USER],
        "id": row.id,
    }
    resource.update(attributes)
    resource["active"] = row.active
    if groups:
        resource["groups"] = [
            {
                "value": group.id,
                "$ref": f"{base}/Groups/{group.id}",
                "display": group.display,
                "type": "direct",
            }
            for group in groups
        ]
    resource["meta"] = {
        "resourceType": "User",
        "created": row.created,
        "lastModified": row.last_modified,
        "location": f"{base}/Users/{row.id}",
        "version": f'W/"{row.version}"',
    }
    return resource


def _render(
    cursor: Cursor, rows: list[scim.UserRow], base: str, chosen: Selection
) -> list[dict[str, Any]]:
    if chosen.returns("groups"):
        groups = scim.groups_of(cursor, [row.id for row in rows])
    else:
        groups = {row.id: [] for row in rows}
    return [chosen.apply(render_user(row, groups[row.id], base)) for row in rows]


def _selection(request: Request[Any, Any, Any]) -> Selection:
    return selection(query_param(request, "attributes"), query_param(request, "excludedAttributes"))


def _read(
    services: Services, context: CommandContext, user_id: str, request: Request[Any, Any, Any]
) -> dict[str, Any]:
    with services.sql.transaction(commit=False) as cursor:
        row = scim.get_user(cursor, context.org_id, user_id)
        if row is None:
            raise UserNotFound(user_id)
        [resource] = _render(cursor, [row], base_url(request), _selection(request))
    return resource


def _read_back(
    services: Services, context: CommandContext, written: Written, request: Request[Any, Any, Any]
) -> dict[str, Any]:
    """The user as the read model has it once it has caught up with `written`."""
    services.scim.wait_for(written.position)
    return _read(services, context, str(written.id), request)


def _etag(resource: dict[str, Any]) -> dict[str, str]:
    meta = resource.get("meta")
    return {"ETag": meta["version"]} if isinstance(meta, dict) and "version" in meta else {}


def _user_id(text: str) -> Any:
    user_id = resource_id(text)
    if user_id is None:
        raise UserNotFound(text)
    return user_id


@get("/Users", sync_to_thread=True)
def list_users(
    request: Request[Any, Any, Any],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    start_index, count = paging(request)
    text = query_param(request, "filter")
    where = parse_filter(text) if text is not None else None
    with services.sql.transaction(commit=False) as cursor:
        total, rows = scim.list_users(cursor, context.org_id, where, start_index, count)
        resources = _render(cursor, rows, base_url(request), _selection(request))
    return scim_response(list_response(resources, total, start_index))


@get("/Users/{user_id:str}", sync_to_thread=True)
def get_user(
    request: Request[Any, Any, Any],
    user_id: FromPath[str],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    resource = _read(services, context, str(_user_id(user_id)), request)
    return scim_response(resource, headers=_etag(resource))


@post("/Users", sync_to_thread=True)
def create_user(
    request: Request[Any, Any, Any],
    body: RawBody,
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    given = parse_user(decode_body(body))
    written = services.ledger.create_user(
        context,
        NewUser(
            attributes=given.attributes,
            active=True if given.active is None else given.active,
            password=given.password,
        ),
    )
    resource = _read_back(services, context, written, request)
    location = f"{base_url(request)}/Users/{written.id}"
    return scim_response(resource, status=201, headers={"Location": location, **_etag(resource)})


def _replacement(given: UserInput) -> UserReplacement:
    return UserReplacement(
        attributes=given.attributes, active=given.active, password=given.password
    )


@put("/Users/{user_id:str}", sync_to_thread=True)
def replace_user(
    request: Request[Any, Any, Any],
    user_id: FromPath[str],
    body: RawBody,
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    uid = _user_id(user_id)
    given = parse_user(decode_body(body))
    written = services.ledger.update_user(context, uid, lambda _state: _replacement(given))
    resource = _read_back(services, context, written, request)
    return scim_response(resource, headers=_etag(resource))


@patch("/Users/{user_id:str}", sync_to_thread=True)
def patch_user(
    request: Request[Any, Any, Any],
    user_id: FromPath[str],
    body: RawBody,
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    uid = _user_id(user_id)
    operations = decode_body(body)

    def edit(state: UserState) -> UserReplacement:
        document = {**state.attributes, "active": state.active}
        return _replacement(apply_user_patch(document, operations))

    written = services.ledger.update_user(context, uid, edit)
    resource = _read_back(services, context, written, request)
    return scim_response(resource, headers=_etag(resource))


@delete("/Users/{user_id:str}", sync_to_thread=True, status_code=204)
def delete_user(
    user_id: FromPath[str],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> None:
    written = services.ledger.delete_user(context, _user_id(user_id))
    services.scim.wait_for(written.position)


ROUTES = [list_users, get_user, create_user, replace_user, patch_user, delete_user]
