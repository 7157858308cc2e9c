"""Reading User and Group resources from request bodies, by the schemas in ledger.schemas.

Attribute names are matched case-insensitively (RFC 7643 section 2.1) and stored under their
canonical spelling; the enterprise extension is stored under its URN.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

from scimledger.http.errors import ScimError, invalid_value
from scimledger.ledger.schemas import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE,
    ENTERPRISE_USER,
    EXTERNAL_ID,
    GROUP,
    GROUP_SCHEMAS,
    USER,
    USER_SCHEMAS,
    Attribute,
    Extension,
    ResourceSchemas,
    Schema,
    single_value,
)
from scimledger.projections.filters import FilterError
from scimledger.projections.sql_filters import filter_time

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


def parse_user(body: Any, schemas: ResourceSchemas = USER_SCHEMAS) -> UserInput:
    """Reads a User resource from a decoded JSON body; raises ScimError if it is invalid.

    Unknown attributes of the core and enterprise schemas are ignored, as RFC 7644 allows;
    values of known attributes must have the schema's type. An extension the organization
    declared (`schemas`) is read strictly: an attribute it does not declare, a value of
    another type or outside its canonical values, a missing required one, are refused. An
    extension it did not declare is refused, never dropped: the client believes it is kept.
    """
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    attributes: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    active: bool | None = None
    password: str | None = None
    for key, value in body.items():
        lower = key.lower()
        if lower == "schemas":
            _check_schemas(value, schemas)
        elif lower in SERVER_OWNED:
            continue
        elif lower == "active":
            parsed = check_value(_ACTIVE, value, "active")
            active = None if parsed is UNASSIGNED else parsed
        elif lower == "password":
            parsed = check_value(_PASSWORD, value, "password")
            password = None if parsed is UNASSIGNED else parsed
        elif lower == "externalid":
            parsed = check_value(EXTERNAL_ID, value, "externalId")
            if parsed is not UNASSIGNED:
                attributes["externalId"] = parsed
        elif not lower.startswith("urn:"):
            _set(attributes, USER, key, value, "")
        elif lower.startswith(_CORE_PREFIX):
            _set(attributes, USER, key[len(_CORE_PREFIX) :], value, key[: len(_CORE_PREFIX)])
        else:
            read_extension(key, value, schemas, extensions)
    attributes.update(checked_extensions(extensions, schemas))
    user_name = attributes.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise invalid_value("userName is required")
    return UserInput(attributes=attributes, active=active, password=password)


_CORE_PREFIX = CORE_USER.lower() + ":"


def replacing(
    schemas: ResourceSchemas,
    shown: dict[str, Any],
    hidden: dict[str, Any],
    new: dict[str, Any],
) -> dict[str, Any]:
    """A resource's attributes after a PUT or PATCH made `new` from those its declarations
    show (`shown`, `hidden`: ResourceSchemas.visible of its current ones): an immutable
    value cannot change, and the values hidden from it are kept as they were."""
    check_immutable(schemas, shown, new)
    return _with_hidden(new, hidden)


def _with_hidden(attributes: dict[str, Any], hidden: dict[str, Any]) -> dict[str, Any]:
    merged = dict(attributes)
    for urn, values in hidden.items():
        current = merged.get(urn)
        merged[urn] = {**values, **current} if isinstance(current, dict) else values
    return merged


def check_immutable(
    schemas: ResourceSchemas, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """A replacement (PUT, PATCH) leaves every immutable value a resource has as it is
    (RFC 7643 section 7: set once, when it has none)."""
    for extension in schemas.declared:
        urn = extension.schema.id
        old, new = before.get(urn) or {}, after.get(urn) or {}
        for attribute in extension.schema.attributes:
            name = attribute.name
            if attribute.mutability == "immutable" and name in old and new.get(name) != old[name]:
                raise ScimError(400, f"{urn}:{name} is immutable: it cannot change", "mutability")


def undeclared(urn: str) -> ScimError:
    """The answer to values of an extension the organization has not declared."""
    return invalid_value(
        f"{urn[:200]} is not an extension schema this organization has declared, so its"
        " values cannot be kept: an admin declares it with `scimledger schemas add` (GET"
        " /Schemas lists those declared)"
    )


def read_extension(
    key: str, value: Any, schemas: ResourceSchemas, extensions: dict[str, dict[str, Any]]
) -> None:
    """A resource's key that names an extension (`URN`, with its values as an object, or
    `URN:attribute`): its values read into `extensions`, by URN. One the organization has
    not declared is refused."""
    if (extension := schemas.extension(key)) is not None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise invalid_value(f"{extension.schema.id} must be an object")
        target = extensions.setdefault(extension.schema.id, {})
        for sub_key, sub_value in value.items():
            _set_extension(target, extension, sub_key, sub_value)
    elif (found := schemas.split_urn(key)) is not None:
        extension, name = found
        target = extensions.setdefault(extension.schema.id, {})
        _set_extension(target, extension, name, value)
    else:
        raise undeclared(extension_named(key, value))


def checked_extensions(
    extensions: dict[str, dict[str, Any]], schemas: ResourceSchemas
) -> dict[str, dict[str, Any]]:
    """The extensions' values read (`read_extension`), those left empty dropped, each
    declared extension's required values there (else ScimError)."""
    checked = {}
    for extension in schemas.extensions:
        values = extensions.get(extension.schema.id)
        if values:
            checked[extension.schema.id] = values
        if extension.schema is not ENTERPRISE:
            _check_required(extension, values or None)
    return checked


def holds_a_value(value: Any) -> bool:
    """Whether a value sent for an attribute holds anything (not null, "", [] or {})."""
    return value is not None and value not in ("", [], {})


def not_in_schema(key: str, schema: Schema) -> ScimError:
    """The answer to a value of an attribute its schema does not have: refused, not
    ignored (the client would believe it kept)."""
    return invalid_value(
        f"{key[:200]!r} is not an attribute of the {schema.name} schema ({schema.id}), so its"
        " value cannot be kept: to keep it, declare it in an extension schema (`scimledger"
        " schemas add`) and send it under that extension's URN"
    )


def extension_named(key: str, value: Any) -> str:
    """The URN a key of no declared extension names: the key itself when its value is an
    object (the extension's values), else the key without its last part (an attribute)."""
    return key if isinstance(value, dict) else key.rsplit(":", 1)[0]


def _check_schemas(value: Any, schemas: ResourceSchemas) -> None:
    """The `schemas` a resource says it has: each must be its core schema or an extension
    the organization declared (a client that names another means to send its values)."""
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_value("schemas must be an array of schema URNs")
    for urn in value:
        # Only URNs: Entra ID names a schema of its own for groups, by a URL, with no values.
        if (
            urn.lower().startswith("urn:")
            and urn.lower() != schemas.core.id.lower()
            and schemas.extension(urn) is None
        ):
            raise undeclared(urn)


def _set_extension(target: dict[str, Any], extension: Extension, key: str, value: Any) -> None:
    """One attribute of an extension's values, checked as its schema says. A `schemas` key
    among them is the client's own model of the extension (scim2-models sends it): it
    holds no value, and is ignored."""
    if key.lower() == "schemas":
        return
    if extension.schema is ENTERPRISE:
        _set(target, ENTERPRISE, key, value, f"{ENTERPRISE_USER}:")
        return
    urn = extension.schema.id
    attribute = extension.schema.attribute(key)
    if attribute is None:
        known = ", ".join(a.name for a in extension.schema.attributes)
        raise invalid_value(f"{urn} declares no attribute {key[:64]!r} (it declares: {known})")
    if attribute.mutability == "readOnly":
        return  # the server's to set: RFC 7643 has the values a client sends ignored
    parsed = check_value(attribute, value, f"{urn}:{attribute.name}", strict=True)
    if parsed is not UNASSIGNED:
        target[attribute.name] = parsed


def _check_required(extension: Extension, values: dict[str, Any] | None) -> None:
    """A required extension is present, and so is each required attribute of a present
    one (and each required sub-attribute of a present complex value)."""
    urn = extension.schema.id
    if values is None:
        if extension.required:
            raise invalid_value(f"{urn} is required: every resource must have its values")
        return
    for attribute in extension.schema.attributes:
        value = values.get(attribute.name)
        if value is None:
            if attribute.required and attribute.mutability != "readOnly":
                raise invalid_value(f"{urn}:{attribute.name} is required")
            continue
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict):
                continue
            for sub in attribute.sub_attributes:
                if sub.required and sub.name not in item:
                    raise invalid_value(f"{urn}:{attribute.name}.{sub.name} is required")


def _set(target: dict[str, Any], schema: Schema, key: str, value: Any, prefix: str) -> None:
    attribute = schema.attribute(key)
    if attribute is None:
        if holds_a_value(value):
            raise not_in_schema(prefix + key, schema)
        return  # an empty value of nothing: nothing is lost
    if attribute.name.lower() in _OUTSIDE_ATTRIBUTES or attribute.mutability == "readOnly":
        return
    parsed = check_value(attribute, value, prefix + attribute.name)
    if parsed is not UNASSIGNED:
        target[attribute.name] = parsed


def check_value(attribute: Attribute, value: Any, path: str, *, strict: bool = False) -> Any:
    """A value checked against its attribute's type; UNASSIGNED for null or empty. `strict`
    (a declared extension's): an unknown sub-attribute or a value outside the canonical
    values is refused, not ignored or kept."""
    if value is None:
        return UNASSIGNED
    if attribute.multi_valued:
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list):
            raise invalid_value(f"{path} must be an array")
        single = single_value(attribute)
        parsed = [
            p
            for i, item in enumerate(items)
            if (p := check_value(single, item, f"{path}[{i}]", strict=strict)) is not UNASSIGNED
        ]
        if attribute.type == "complex" and sum(1 for p in parsed if p.get("primary") is True) > 1:
            raise invalid_value(f"{path}: at most one value may be primary")
        return parsed or UNASSIGNED
    if attribute.type == "complex":
        if isinstance(value, str) and attribute.name == "manager" and not strict:
            # Microsoft Entra ID sends the manager as a bare id string.
            value = {"value": value}
        if not isinstance(value, dict):
            raise invalid_value(f"{path} must be an object")
        out: dict[str, Any] = {}
        for key, sub_value in value.items():
            sub = attribute.sub(key)
            if sub is None and strict:
                raise invalid_value(f"{path} has no sub-attribute {key[:64]!r}")
            if sub is None or (sub.mutability == "readOnly" and attribute.mutability != "readOnly"):
                continue
            parsed_sub = check_value(sub, sub_value, f"{path}.{sub.name}", strict=strict)
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
    if attribute.type in ("integer", "decimal"):
        return _number(attribute.type, value, path)
    if not isinstance(value, str):
        raise invalid_value(f"{path} must be a string")
    if attribute.type == "dateTime":
        return _date_time(value, path)
    if attribute.type == "binary":
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            raise invalid_value(f"{path} must be base64 (binary)") from None
    if strict and attribute.canonical_values:
        return _canonical(attribute, value, path)
    return value


MAX_INTEGER = 2**53  # JSON's exact integers: past them clients' parsers round


def _number(kind: str, value: Any, path: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_value(f"{path} must be a number ({kind})")
    if kind == "integer" and not isinstance(value, int):
        raise invalid_value(f"{path} must be an integer")
    if not math.isfinite(value) or abs(value) > (MAX_INTEGER if kind == "integer" else 1e300):
        raise invalid_value(f"{path} is out of range")
    return value


def _date_time(value: str, path: str) -> str:
    """An xsd:dateTime, kept in the form the server writes times in (UTC, milliseconds), so
    that filters compare them as times."""
    try:
        return filter_time(value)
    except FilterError:
        raise invalid_value(f"{path} must be an xsd:dateTime, e.g. 2026-12-07T09:30:00Z") from None


def _canonical(attribute: Attribute, value: str, path: str) -> str:
    """One of the attribute's canonical values, spelled as declared (in any case, unless
    the attribute is caseExact)."""
    for allowed in attribute.canonical_values:
        if allowed == value or (not attribute.case_exact and allowed.lower() == value.lower()):
            return allowed
    listed = ", ".join(attribute.canonical_values[:20])
    raise invalid_value(f"{path} must be one of its canonical values: {listed}")


@dataclass(frozen=True)
class GroupInput:
    """A validated Group resource: displayName, externalId, member ids (unchecked), and the
    values of the organization's declared group extensions, by URN."""

    display_name: str
    external_id: str | None
    members: list[str]
    extensions: dict[str, Any] = field(default_factory=dict)


_GROUP_PREFIX = CORE_GROUP.lower() + ":"
_GROUP_OWNED = frozenset({"id", "meta"})  # the server's: a client's values are ignored


def parse_group(body: Any, schemas: ResourceSchemas = GROUP_SCHEMAS) -> GroupInput:
    """Reads a Group resource from a decoded JSON body; raises ScimError if it is invalid.

    `id` and `meta` are ignored, and so is each member's `display` (Okta's wizard-built apps
    send `display: null`). Extensions are read as a User's are (parse_user)."""
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    display_name: Any = None
    external_id: Any = None
    members: list[str] = []
    extensions: dict[str, dict[str, Any]] = {}
    for key, value in body.items():
        lower = key.lower()
        if lower.startswith(_GROUP_PREFIX):
            lower = lower[len(_GROUP_PREFIX) :]
        if lower == "schemas":
            _check_schemas(value, schemas)
        elif lower == "displayname":
            display_name = value
        elif lower == "externalid":
            parsed = check_value(EXTERNAL_ID, value, "externalId")
            external_id = None if parsed is UNASSIGNED else parsed
        elif lower == "members":
            members = member_ids(value, "members")
        elif lower.startswith("urn:"):
            read_extension(key, value, schemas, extensions)
        elif lower not in _GROUP_OWNED and holds_a_value(value):
            raise not_in_schema(key, GROUP)
    if not isinstance(display_name, str) or not display_name.strip():
        raise invalid_value("displayName is required")
    return GroupInput(
        display_name=display_name,
        external_id=external_id,
        members=members,
        extensions=checked_extensions(extensions, schemas),
    )


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
