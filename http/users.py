"""Users in SCIM form, and what the /Users routes (http/resources.py) do with them: read and
search the read model, create, replace and patch through the ledger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from scimledger.http.attributes import Selection
from scimledger.http.etags import check_if_match
from scimledger.http.schemas import UserInput, parse_user
from scimledger.http.services import Services, read_your_writes
from scimledger.http.user_patch import apply_user_patch
from scimledger.ledger.commands import NewUser, UserReplacement, UserState, Written
from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import UserNotFound
from scimledger.ledger.schemas import CORE_USER, ENTERPRISE_USER
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


def read_user(
    services: Services, context: CommandContext, user_id: str, chosen: Selection, base: str
) -> tuple[dict[str, Any], int]:
    """The user as the read model has it, with its version."""
    with services.sql.read() as cursor:
        row = scim.get_user(cursor, context.org_id, user_id, with_groups=chosen.returns("groups"))
    if row is None:
        raise UserNotFound(user_id)
    [resource] = _render([row], base, chosen)
    return resource, row.version


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


def create_user(
    services: Services, context: CommandContext, document: Any, chosen: Selection, base: str
) -> tuple[UUID, dict[str, Any], int]:
    given = parse_user(document)
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
    return written.id, chosen.apply(render_user_at(written.aggregate, base)), written.version


def _update(
    services: Services,
    context: CommandContext,
    user_id: UUID,
    if_match: str | None,
    replacement: Callable[[UserState], UserInput],
) -> Written:
    def edit(state: UserState) -> UserReplacement:
        check_if_match(if_match, state.version)
        given = replacement(state)
        return UserReplacement(
            attributes=given.attributes, active=given.active, password=given.password
        )

    return services.ledger.update_user(context, user_id, edit)


def replace_user(
    services: Services, context: CommandContext, user_id: UUID, document: Any, if_match: str | None
) -> Written:
    given = parse_user(document)
    return _update(services, context, user_id, if_match, lambda _state: given)


def patch_user(
    services: Services,
    context: CommandContext,
    user_id: UUID,
    operations: Any,
    if_match: str | None,
) -> Written:
    def patched(state: UserState) -> UserInput:
        return apply_user_patch({**state.attributes, "active": state.active}, operations)

    return _update(services, context, user_id, if_match, patched)
