"""Groups in SCIM form, and what the /Groups routes (http/resources.py) do with them: read
and search the read model, create, replace and patch through the ledger.

Who joins and leaves is the ledger's to work out (ledger.members), against the read model
it is given (`Services.directory`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from scimledger.http.attributes import EVERYTHING, Selection
from scimledger.http.etags import check_if_match
from scimledger.http.group_patch import plan_group_patch
from scimledger.http.schemas import parse_group, replacing
from scimledger.http.services import Services
from scimledger.ledger.commands import GroupUpdate, NewGroup, Written
from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import GroupNotFound
from scimledger.ledger.schemas import CORE_GROUP, ResourceSchemas
from scimledger.projections import scim
from scimledger.projections.scim import Query
from scimledger.projections.sql import Cursor


def render_group(
    row: scim.GroupRow,
    members: list[scim.Member] | None,
    base: str,
    schemas: ResourceSchemas | None,
    chosen: Selection = EVERYTHING,
) -> dict[str, Any]:
    """A group in SCIM form; its extension values as render_user shows a user's."""
    extensions = (
        row.attributes if schemas is None else schemas.returned(row.attributes, chosen.asks_for)
    )
    resource: dict[str, Any] = {"schemas": [CORE_GROUP, *extensions], "id": row.id}
    if row.external_id is not None:
        resource["externalId"] = row.external_id
    resource["displayName"] = row.display_name
    resource.update(extensions)
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
    cursor: Cursor,
    rows: list[scim.GroupRow],
    base: str,
    schemas: ResourceSchemas,
    chosen: Selection,
) -> list[dict[str, Any]]:
    # Members are read only when they are returned: a big group then costs nothing.
    members = scim.members_of(cursor, [r.id for r in rows]) if chosen.returns("members") else {}
    return [
        chosen.apply(render_group(row, members.get(row.id), base, schemas, chosen), schemas.always)
        for row in rows
    ]


def read_group(
    services: Services, context: CommandContext, group_id: str, chosen: Selection, base: str
) -> tuple[dict[str, Any], int]:
    """The group as the read model has it, with its version (and the members of that
    version: one snapshot)."""
    schemas = services.ledger.declared(context.org_id).group
    with services.sql.snapshot() as cursor:
        row = scim.get_group(cursor, context.org_id, group_id)
        if row is None:
            raise GroupNotFound(group_id)
        [resource] = _render(cursor, [row], base, schemas, chosen)
    return resource, row.version


def search_groups(
    services: Services, context: CommandContext, query: Query, chosen: Selection, base: str
) -> tuple[int, list[dict[str, Any]]]:
    """The total and one page of the organization's groups a query selects."""
    schemas = services.ledger.declared(context.org_id).group
    with services.sql.snapshot() as cursor:
        total, rows = scim.list_groups(cursor, context.org_id, query, schemas)
        return total, _render(cursor, rows, base, schemas, chosen)


def create_group(
    services: Services, context: CommandContext, document: Any, chosen: Selection, base: str
) -> tuple[UUID, dict[str, Any], int]:
    given = parse_group(document, services.ledger.declared(context.org_id).group)
    new = NewGroup(given.display_name, given.external_id, given.members, given.extensions)
    written = services.ledger.create_group(context, new, services.directory)
    services.scim.wait_for(written.position)
    resource, version = read_group(services, context, str(written.id), chosen, base)
    return written.id, resource, version


def _update(
    services: Services,
    context: CommandContext,
    group_id: UUID,
    update: GroupUpdate,
    if_match: str | None,
) -> Written:
    return services.ledger.update_group(
        context,
        group_id,
        update,
        services.directory,
        check=lambda version: check_if_match(if_match, version),
    )


def replace_group(
    services: Services, context: CommandContext, group_id: UUID, document: Any, if_match: str | None
) -> Written:
    schemas = services.ledger.declared(context.org_id).group
    given = parse_group(document, schemas)

    def extensions(current: dict[str, Any]) -> dict[str, Any]:
        return replacing(schemas, *schemas.visible(current), given.extensions)

    update = GroupUpdate(
        display_name=given.display_name, external_id=given.external_id, extensions=extensions
    )
    update.set_members(given.members)
    return _update(services, context, group_id, update, if_match)


def patch_group(
    services: Services,
    context: CommandContext,
    group_id: UUID,
    operations: Any,
    if_match: str | None,
) -> Written:
    schemas = services.ledger.declared(context.org_id).group
    return _update(services, context, group_id, plan_group_patch(operations, schemas), if_match)
