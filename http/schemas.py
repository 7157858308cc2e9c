"""Reading User and Group resources from request bodies, by the schemas in ledger.schemas.

Attribute names are matched case-insensitively (RFC 7643 section 2.1) and stored under their
canonical spelling; the enterprise extension is stored under its URN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scimledger.http.errors import ScimError, invalid_value
from scimledger.ledger.schemas import (
    ENTERPRISE,
    ENTERPRISE_USER,
    EXTERNAL_ID,
    USER,
    Attribute,
    Schema,
)

# Attributes the client may send but the server owns: ignored on input (Okta echoes them).
# A user's attributes the server keeps: a client's values for them are ignored or refused.
SERVER_OWNED = frozenset({"id", "meta", "groups", "schemas"})
# Attributes the aggregate holds outside `attributes`.
_OUTSIDE_ATTRIBUTES = frozenset({"active", "password"})

UNASSIGNED = object()


@dataclass(frozen=True)
class UserInput:
    """A validated User resource: canonical attributes, plus `active` and `password`."""

    attributes: dict[str, Any]
    active: bool | None
    password: str | None


def _defined(schema: Schema, name: str) -> Attribute:
    attribute = schema.attribute(name)
    assert attribute is not None, name
    return attribute


_ACTIVE = _defined(USER, "active")
_PASSWORD = _defined(USER, "password")


def parse_user(body: Any) -> UserInput:
    """Reads a User resource from a decoded JSON body; raises ScimError if it is invalid.

    Unknown attributes and unknown extension schemas are ignored, as RFC 7644 allows; values
    of known attributes must have the schema's type.
    """
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    attributes: dict[str, Any] = {}
    enterprise: dict[str, Any] = {}
    active: bool | None = None
    password: str | None = None
    enterprise_prefix = ENTERPRISE_USER.lower() + ":"
    for key, value in body.items():
        lower = key.lower()
        if lower in SERVER_OWNED:
            continue
        if lower == "active":
            parsed = check_value(_ACTIVE, value, "active")
            active = None if parsed is UNASSIGNED else parsed
        elif lower == "password":
            parsed = check_value(_PASSWORD, value, "password")
            password = None if parsed is UNASSIGNED else parsed
        elif lower == ENTERPRISE_USER.lower():
            if value is None:
                continue
            if not isinstance(value, dict):
                raise invalid_value(f"{ENTERPRISE_USER} must be an object")
            for sub_key, sub_value in value.items():
                _set(enterprise, ENTERPRISE, sub_key, sub_value, f"{ENTERPRISE_USER}:")
        elif lower.startswith(enterprise_prefix):
            cut = len(enterprise_prefix)
            _set(enterprise, ENTERPRISE, key[cut:], value, key[:cut])
        elif lower == "externalid":
            parsed = check_value(EXTERNAL_ID, value, "externalId")
            if parsed is not UNASSIGNED:
                attributes["externalId"] = parsed
        elif not lower.startswith("urn:"):
            _set(attributes, USER, key, value, "")
    if enterprise:
        attributes[ENTERPRISE_USER] = enterprise
    user_name = attributes.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise invalid_value("userName is required")
    return UserInput(attributes=attributes, active=active, password=password)


def _set(target: dict[str, Any], schema: Schema, key: str, value: Any, prefix: str) -> None:
    attribute = schema.attribute(key)
    if attribute is None or attribute.name.lower() in _OUTSIDE_ATTRIBUTES:
        return  # unknown attribute: ignored
    if attribute.mutability == "readOnly":
        return
    parsed = check_value(attribute, value, prefix + attribute.name)
    if parsed is not UNASSIGNED:
        target[attribute.name] = parsed


def check_value(attribute: Attribute, value: Any, path: str) -> Any:
    """A value checked against its attribute's type; UNASSIGNED for null or empty."""
    if value is None:
        return UNASSIGNED
    if attribute.multi_valued:
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list):
            raise invalid_value(f"{path} must be an array")
        single = Attribute(**{**attribute.__dict__, "multi_valued": False})
        parsed = [
            p
            for i, item in enumerate(items)
            if (p := check_value(single, item, f"{path}[{i}]")) is not UNASSIGNED
        ]
        if attribute.type == "complex" and sum(1 for p in parsed if p.get("primary") is True) > 1:
            raise invalid_value(f"{path}: at most one value may be primary")
        return parsed or UNASSIGNED
    if attribute.type == "complex":
        if isinstance(value, str) and attribute.name == "manager":
            # Microsoft Entra ID sends the manager as a bare id string.
            value = {"value": value}
        if not isinstance(value, dict):
            raise invalid_value(f"{path} must be an object")
        out: dict[str, Any] = {}
        for key, sub_value in value.items():
            sub = attribute.sub(key)
            if sub is None or (sub.mutability == "readOnly" and attribute.mutability != "readOnly"):
                continue
            parsed_sub = check_value(sub, sub_value, f"{path}.{sub.name}")
            if parsed_sub is not UNASSIGNED:
                out[sub.name] = parsed_sub
        return out or UNASSIGNED
    if attribute.type == "boolean":
        if isinstance(value, bool):
            return value
        # Microsoft Entra ID sends booleans as strings ("True", "False").
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid_value(f"{path} must be a boolean")
    if not isinstance(value, str):
        raise invalid_value(f"{path} must be a string")
    return value


@dataclass(frozen=True)
class GroupInput:
    """A validated Group resource: displayName, externalId and member ids (unchecked)."""

    display_name: str
    external_id: str | None
    members: list[str]


def parse_group(body: Any) -> GroupInput:
    """Reads a Group resource from a decoded JSON body; raises ScimError if it is invalid.

    `id`, `meta` and `schemas` are ignored, and so is each member's `display` (Okta's
    wizard-built apps send `display: null`).
    """
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    display_name: Any = None
    external_id: Any = None
    members: list[str] = []
    for key, value in body.items():
        lower = key.lower()
        if lower == "displayname":
            display_name = value
        elif lower == "externalid":
            parsed = check_value(EXTERNAL_ID, value, "externalId")
            external_id = None if parsed is UNASSIGNED else parsed
        elif lower == "members":
            members = member_ids(value, "members")
    if not isinstance(display_name, str) or not display_name.strip():
        raise invalid_value("displayName is required")
    return GroupInput(display_name=display_name, external_id=external_id, members=members)


def member_ids(value: Any, path: str) -> list[str]:
    """The ids in a `members` value: a list of {"value": id, ...} (or one such object)."""
    if value is None:
        return []
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise invalid_value(f"{path} must be an array of objects with a value")
    ids: list[str] = []
    for index, item in enumerate(items):
        member = (
            next((v for k, v in item.items() if k.lower() == "value"), None)
            if isinstance(item, dict)
            else None
        )
        if not isinstance(member, str) or not member:
            raise invalid_value(f"{path}[{index}].value must be a member id")
        ids.append(member)
    return ids
