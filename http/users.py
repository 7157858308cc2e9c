"""Users in SCIM form, and what the /Users routes (http/resources.py) do with them: read and
search the read model, create, replace and patch through the ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

from scimledger.http.attributes import EVERYTHING, Selection
from scimledger.http.etags import check_if_match
from scimledger.http.schemas import UserInput, parse_user, replacing
from scimledger.http.services import Services, read_your_writes
from scimledger.http.user_patch import apply_user_patch
from scimledger.ledger.commands import NewUser, UserReplacement, UserState, Written
from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import UserNotFound
from scimledger.ledger.schemas import CORE_USER, ResourceSchemas
from scimledger.ledger.users import User
from scimledger.projections import scim
from scimledger.projections.scim import Query
from scimledger.projections.sql_filters import scim_datetime


def render_user(
    row: scim.UserRow,
    groups: list[scim.Member],
    base: str,
    schemas: ResourceSchemas | None,
    chosen: Selection = EVERYTHING,
) -> dict[str, Any]:
    """A user in SCIM form: the one renderer of every user resource this API returns.

    Its input is a read model row. Reads and PUT/PATCH answers get theirs from the read model
    (it alone holds the user's groups). A create and a point-in-time read get one made from
    the aggregate (`render_user_at`): a new user is in no group and the row the read model
    stores is made of exactly these values, so a create needs no read back, and a committed
    create is answered 201 even when the read model cannot be reached at once.

    With the organization's `schemas`, extension values show as its declarations have them
    now (ResourceSchemas.returned, with the attributes `chosen` asks for); without, as they
    were recorded (the events feed's history)."""
    attributes = (
        row.attributes if schemas is None else schemas.returned(row.attributes, chosen.asks_for)
    )
    resource: dict[str, Any] = {
        "schemas": [CORE_USER, *[key for key in attributes if key[:4] == "urn:"]],
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


def render_user_at(
    user: User, base: str, schemas: ResourceSchemas | None, chosen: Selection = EVERYTHING
) -> dict[str, Any]:
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
    return render_user(row, [], base, schemas, chosen)


def _render(
    rows: list[scim.UserRow], base: str, schemas: ResourceSchemas, chosen: Selection
) -> list[dict[str, Any]]:
    return [
        chosen.apply(render_user(row, row.groups, base, schemas, chosen), schemas.always)
        for row in rows
    ]


def read_user(
    services: Services, context: CommandContext, user_id: str, chosen: Selection, base: str
) -> tuple[dict[str, Any], int]:
    """The user as the read model has it, with its version."""
    schemas = services.ledger.declared(context.org_id).user
    with services.sql.read() as cursor:
        row = scim.get_user(cursor, context.org_id, user_id, with_groups=chosen.returns("groups"))
    if row is None:
        raise UserNotFound(user_id)
    [resource] = _render([row], base, schemas, chosen)
    return resource, row.version


def search_users(
    services: Services, context: CommandContext, query: Query, chosen: Selection, base: str
) -> tuple[int, list[dict[str, Any]]]:
    """The total and one page of the organization's users a query selects."""
    schemas = services.ledger.declared(context.org_id).user
    with services.sql.read() as cursor:
        total, rows = scim.list_users(
            cursor,
            context.org_id,
            query,
            with_groups=chosen.returns("groups"),
            marks=services.page_marks,
            schemas=schemas,
        )
    return total, _render(rows, base, schemas, chosen)


def create_user(
    services: Services, context: CommandContext, document: Any, chosen: Selection, base: str
) -> tuple[UUID, dict[str, Any], int]:
    schemas = services.ledger.declared(context.org_id).user
    given = parse_user(document, schemas)
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
    resource = render_user_at(written.aggregate, base, schemas, chosen)
    return written.id, chosen.apply(resource, schemas.always), written.version


def _update(
    services: Services,
    context: CommandContext,
    user_id: UUID,
    if_match: str | None,
    replacement: Callable[[UserState, ResourceSchemas], UserInput],
) -> Written:
    """A PUT or PATCH: `replacement` makes the new attributes from the user's visible ones
    (ResourceSchemas.visible); the values hidden from it (of extensions or attributes no
    longer declared) are kept as they were, and an immutable value cannot change."""
    schemas = services.ledger.declared(context.org_id).user

    def edit(state: UserState) -> UserReplacement:
        check_if_match(if_match, state.version)
        shown, hidden = schemas.visible(state.attributes)
        given = replacement(replace(state, attributes=shown), schemas)
        attributes = replacing(schemas, shown, hidden, given.attributes)
        return UserReplacement(attributes=attributes, active=given.active, password=given.password)

    return services.ledger.update_user(context, user_id, edit)


def replace_user(
    services: Services, context: CommandContext, user_id: UUID, document: Any, if_match: str | None
) -> Written:
    def replaced(_state: UserState, schemas: ResourceSchemas) -> UserInput:
        return parse_user(document, schemas)

    return _update(services, context, user_id, if_match, replaced)


def patch_user(
    services: Services,
    context: CommandContext,
    user_id: UUID,
    operations: Any,
    if_match: str | None,
) -> Written:
    def patched(state: UserState, schemas: ResourceSchemas) -> UserInput:
        document = {**state.attributes, "active": state.active}
        return apply_user_patch(document, operations, schemas)

    return _update(services, context, user_id, if_match, patched)
