"""SCIM /Users: translates HTTP to ledger commands and read-model queries, nothing more."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, delete, get, patch, post, put
from litestar.params import FromPath, RawBody

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
    CORE_USER,
    ENTERPRISE_USER,
    list_response,
    not_modified_response,
    resource_response,
    scim_response,
)
from scimledger.http.schemas import UserInput, parse_user
from scimledger.http.services import Injected, Services, read_your_writes
from scimledger.http.user_patch import apply_user_patch
from scimledger.ledger.commands import NewUser, UserReplacement, UserState, Written
from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import UserNotFound
from scimledger.ledger.users import User
from scimledger.projections import scim
from scimledger.projections.scim import Query
from scimledger.projections.sql_filters import scim_datetime


def render_user(row: scim.UserRow, groups: list[scim.Member], base: str) -> dict[str, Any]:
    """A user in SCIM form: the one renderer of every user resource this API returns.

    Its input is a read model row. Reads and PUT/PATCH answers get theirs from the read model
    (it alone holds the user's groups). A create and a point-in-time read get one made from
    the aggregate (`render_user_at`): a new user is in no group and the row the read model
    stores is made of exactly these values, so a create needs no read back, and a committed
    create is answered 201 even when the read model cannot be reached at once."""
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


def render_user_at(user: User, base: str) -> dict[str, Any]:
    """A user rebuilt from its events (see Ledger.user_at), in SCIM form.

    Group memberships are not part of a user's own events, so `groups` is left out."""
    row = scim.UserRow(
        id=str(user.id),
        attributes=user.attributes,
        active=user.active,
        version=user.version,
        created=scim_datetime(user.created_on),
        last_modified=scim_datetime(user.modified_on),
    )
    return render_user(row, [], base)


def _render(rows: list[scim.UserRow], base: str, chosen: Selection) -> list[dict[str, Any]]:
    return [chosen.apply(render_user(row, row.groups, base)) for row in rows]


def _read(
    services: Services,
    context: CommandContext,
    user_id: str,
    request: Request[Any, Any, Any],
    chosen: Selection,
) -> tuple[dict[str, Any], int]:
    """The user as the read model has it, with its version."""
    with services.sql.read() as cursor:
        row = scim.get_user(cursor, context.org_id, user_id, with_groups=chosen.returns("groups"))
    if row is None:
        raise UserNotFound(user_id)
    [resource] = _render([row], base_url(request), chosen)
    return resource, row.version


def _read_back(
    services: Services,
    context: CommandContext,
    written: Written,
    request: Request[Any, Any, Any],
    chosen: Selection,
) -> tuple[dict[str, Any], int]:
    """The user as the read model has it once it has caught up with `written`."""
    services.scim.wait_for(written.position)
    return _read(services, context, str(written.id), request, chosen)


def _user_id(text: str) -> UUID:
    user_id = resource_id(text)
    if user_id is None:
        raise UserNotFound(text)
    return user_id


def search_users(
    services: Services, context: CommandContext, query: Query, chosen: Selection, base: str
) -> tuple[int, list[dict[str, Any]]]:
    """The total and one page of the organization's users a query selects."""
    with services.sql.read() as cursor:
        total, rows = scim.list_users(
            cursor,
            context.org_id,
            query,
            with_groups=chosen.returns("groups"),
            marks=services.page_marks,
        )
    return total, _render(rows, base, chosen)


@get("/Users", sync_to_thread=True)
def list_users(
    request: Request[Any, Any, Any],
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    query = list_query(request)
    total, resources = search_users(services, context, query, requested(request), base_url(request))
    return scim_response(list_response(resources, total, query.start_index))


@post("/Users/.search", sync_to_thread=True, status_code=200)
def search_users_by_post(
    request: Request[Any, Any, Any],
    body: RawBody,
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    query, chosen = search_query(decode_body(body))
    total, resources = search_users(services, context, query, chosen, base_url(request))
    return scim_response(list_response(resources, total, query.start_index))


@get("/Users/{user_id:str}", sync_to_thread=True)
def get_user(
    request: Request[Any, Any, Any],
    user_id: FromPath[str],
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    resource, version = _read(
        services, context, str(_user_id(user_id)), request, requested(request)
    )
    if not_modified(request.headers.get("if-none-match"), version):
        return not_modified_response(version)
    return resource_response(resource, version)


@post("/Users", sync_to_thread=True)
def create_user(
    request: Request[Any, Any, Any],
    body: RawBody,
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    given = parse_user(decode_body(body))
    written = services.ledger.create_user(
        context,
        NewUser(
            attributes=given.attributes,
            active=True if given.active is None else given.active,
            password=given.password,
        ),
    )
    read_your_writes(services, written)  # a GET finds it now
    # Rendered from the user as written (see render_user; tests/e2e check they agree).
    assert isinstance(written.aggregate, User)
    base = base_url(request)
    resource = chosen.apply(render_user_at(written.aggregate, base))
    location = f"{base}/Users/{written.id}"
    return resource_response(resource, written.version, status=201, location=location)


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
) -> Response[bytes]:
    context = scim_context(services, request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    uid = _user_id(user_id)
    given = parse_user(decode_body(body))
    if_match = request.headers.get("if-match")

    def edit(state: UserState) -> UserReplacement:
        check_if_match(if_match, state.version)
        return _replacement(given)

    written = services.ledger.update_user(context, uid, edit)
    resource, version = _read_back(services, context, written, request, chosen)
    return resource_response(resource, version)


@patch("/Users/{user_id:str}", sync_to_thread=True)
def patch_user(
    request: Request[Any, Any, Any],
    user_id: FromPath[str],
    body: RawBody,
    services: Injected[Services],
) -> Response[bytes]:
    context = scim_context(services, request)
    chosen = requested(request)  # a bad parameter refuses the write before it is made
    uid = _user_id(user_id)
    operations = decode_body(body)
    if_match = request.headers.get("if-match")

    def edit(state: UserState) -> UserReplacement:
        check_if_match(if_match, state.version)
        document = {**state.attributes, "active": state.active}
        return _replacement(apply_user_patch(document, operations))

    written = services.ledger.update_user(context, uid, edit)
    resource, version = _read_back(services, context, written, request, chosen)
    return resource_response(resource, version)


@delete("/Users/{user_id:str}", sync_to_thread=True, status_code=204)
def delete_user(
    request: Request[Any, Any, Any],
    user_id: FromPath[str],
    services: Injected[Services],
) -> None:
    context = scim_context(services, request)
    if_match = request.headers.get("if-match")
    written = services.ledger.delete_user(
        context, _user_id(user_id), check=lambda version: check_if_match(if_match, version)
    )
    read_your_writes(services, written)


ROUTES = [
    list_users,
    search_users_by_post,
    get_user,
    create_user,
    replace_user,
    patch_user,
    delete_user,
]
