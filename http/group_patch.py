"""SCIM PATCH of a Group, reduced to a `GroupUpdate` without its member list.

A group may have 50,000 members, so a PATCH is not applied to a document holding them all.
It is reduced to what it does: the new displayName and externalId, and either the members to
add and remove or the complete new member set. Okta's and Entra ID's shapes are all covered:
rename by `replace` without path (with the read-only `id` in the value), add or replace a
member list, remove by `members[value eq "..."]`, and Entra's `remove` of `members` with a
value list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from scimledger.http.errors import ScimError, invalid_value
from scimledger.http.patch import Operation, invalid_path, parse_operations
from scimledger.http.schemas import check_value, member_ids
from scimledger.http.user_patch import apply_extension_patch, check_extension_path
from scimledger.ledger.commands import GroupUpdate
from scimledger.ledger.schemas import CORE_GROUP, EXTERNAL_ID, GROUP_SCHEMAS, ResourceSchemas
from scimledger.projections.filters import Compare, Filter, FilterError, Or, parse_filter

_SERVER_OWNED = frozenset({"id", "meta", "schemas"})
_GROUP_PREFIX = CORE_GROUP.lower() + ":"


def plan_group_patch(body: Any, schemas: ResourceSchemas = GROUP_SCHEMAS) -> GroupUpdate:
    """What a PatchOp body does to a group; raises ScimError if any operation is invalid.
    Operations on the organization's declared extensions (`schemas`) are applied to the
    group's extension values as they are when the update is made."""
    plan = GroupUpdate()
    extension_operations: list[Operation] = []
    for operation in parse_operations(body):
        if operation.op == "remove":
            path = operation.required_path()
            if _names_an_extension(path):
                extension_operations.append(operation)
            else:
                _apply(plan, "remove", path, operation.value, operation.has_value)
        elif operation.path:
            if _names_an_extension(operation.path):
                extension_operations.append(operation)
            else:
                _apply(plan, operation.op, operation.path, operation.value, has_value=True)
        else:
            for key, item in operation.object_value().items():
                if _names_an_extension(key):
                    extension_operations.append(replace(operation, path=key, value=item))
                elif key.lower() not in _SERVER_OWNED:  # Okta sends the read-only id along
                    _apply(plan, operation.op, key, item, has_value=True)
    for operation in extension_operations:
        assert operation.path is not None
        check_extension_path(operation.path, operation.value, schemas)
    if extension_operations:
        # Applied, and checked, in the update's own attempt (Ledger.update_group): on the
        # group's values as they are then; an invalid one refuses the whole update.
        plan.extensions = lambda values: apply_extension_patch(
            values, extension_operations, schemas
        )
    return plan


def _names_an_extension(path: str) -> bool:
    lower = path.lower()
    return lower.startswith("urn:") and not lower.startswith(_GROUP_PREFIX)


def _apply(plan: GroupUpdate, op: str, path: str, value: Any, has_value: bool) -> None:
    lower = path.lower()
    if lower.startswith(_GROUP_PREFIX):
        path = path[len(_GROUP_PREFIX) :]
        lower = lower[len(_GROUP_PREFIX) :]
    if lower == "displayname":
        if op == "remove":
            raise invalid_value("displayName is required and cannot be removed")
        if not isinstance(value, str) or not value.strip():
            raise invalid_value("displayName must be a non-empty string")
        plan.display_name = value
    elif lower == "externalid":
        if op == "remove":
            plan.external_id = None
        else:
            parsed = check_value(EXTERNAL_ID, value, "externalId")
            plan.external_id = parsed if isinstance(parsed, str) else None
    elif lower == "members":
        if op == "add":
            plan.add_members(member_ids(value, "members"))
        elif op == "replace":
            plan.set_members(member_ids(value, "members"))
        elif has_value and value is not None:
            plan.remove_members(member_ids(value, "members"))  # Entra ID's shape
        else:
            plan.set_members([])
    elif lower.startswith("members["):
        if op != "remove":
            raise invalid_path(f"{op} with a members filter is not supported: use remove")
        plan.remove_members(_filtered_ids(path))
    elif lower in _SERVER_OWNED:
        raise ScimError(400, f"{path} is read-only", "mutability")
    else:
        raise invalid_path(f"unknown attribute {path!r}")


def _filtered_ids(path: str) -> list[str]:
    """The ids a `members[value eq "a" or value eq "b"]` path names."""
    if not path.endswith("]"):
        raise invalid_path(f"unsupported members path {path!r}")
    try:
        node = parse_filter(path[path.index("[") + 1 : -1])
    except FilterError as exc:
        raise invalid_path(f"invalid members filter in {path!r}: {exc}") from exc
    return _ids(node, path)


def _ids(node: Filter, path: str) -> list[str]:
    if isinstance(node, Or):
        return [*_ids(node.left, path), *_ids(node.right, path)]
    if (
        isinstance(node, Compare)
        and node.op == "eq"
        and node.path.attribute.lower() == "value"
        and node.path.sub_attribute is None
        and isinstance(node.value, str)
    ):
        return [node.value]
    raise invalid_path(f'members filters must be value eq "id" (joined by or): {path!r}')
