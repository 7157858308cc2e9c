"""SCIM PATCH (RFC 7644 section 3.5.2) applied to a User document: a pure function.

The document is the user's canonical attributes plus `active`. Operations apply in order to
a copy; the result is validated like a PUT body, so a PATCH can never store what a PUT could
not. Any invalid operation rejects the whole request.
"""

from __future__ import annotations

import copy
from typing import Any

from scimledger.http.errors import ScimError, invalid_value
from scimledger.http.responses import ENTERPRISE_USER, PATCH_OP
from scimledger.http.schemas import ENTERPRISE, EXTERNAL_ID, USER, Attribute, UserInput, parse_user
from scimledger.projections.filters import FilterError, parse_attr_path

MAX_OPERATIONS = 1000
_SERVER_OWNED = frozenset({"id", "meta", "groups", "schemas"})


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def apply_user_patch(document: dict[str, Any], body: Any) -> UserInput:
    """The user after the PatchOp `body`; raises ScimError, changing nothing, if invalid."""
    operations = _operations(body)
    doc = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        _apply(doc, operation, index)
    return parse_user(doc)


def _operations(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP not in schemas:
        raise ScimError(400, f"A PATCH body must list the schema {PATCH_OP}", "invalidSyntax")
    operations = next((v for k, v in body.items() if k.lower() == "operations"), None)
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty array", "invalidSyntax")
    if len(operations) > MAX_OPERATIONS:
        raise ScimError(400, f"At most {MAX_OPERATIONS} operations per request", "invalidSyntax")
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "Each operation must be an object", "invalidSyntax")
    return operations


def _field(operation: dict[str, Any], name: str) -> Any:
    return next((v for k, v in operation.items() if k.lower() == name), None)


def _apply(doc: dict[str, Any], operation: dict[str, Any], index: int) -> None:
    op = _field(operation, "op")
    if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
        raise ScimError(
            400, f"Operations[{index}].op must be add, replace or remove", "invalidSyntax"
        )
    op = op.lower()  # Microsoft Entra ID capitalises op names ("Replace").
    path = _field(operation, "path")
    value = _field(operation, "value")
    if path is not None and not isinstance(path, str):
        raise invalid_path(f"Operations[{index}].path must be a string")
    if op == "remove":
        if not path:
            raise ScimError(400, f"Operations[{index}]: remove needs a path", "noTarget")
        _remove(doc, path)
        return
    if "value" not in {k.lower() for k in operation}:
        raise invalid_value(f"Operations[{index}]: {op} needs a value")
    if path:
        _set(doc, path, value, op)
        return
    if not isinstance(value, dict):
        raise invalid_value(f"Operations[{index}]: {op} without a path needs an object value")
    for key, item in value.items():
        if key.lower() in _SERVER_OWNED:
            continue  # Okta echoes read-only attributes such as id; they change nothing.
        if key.lower() == ENTERPRISE_USER.lower() and isinstance(item, dict):
            for sub_key, sub_item in item.items():
                _set_known(doc, f"{ENTERPRISE_USER}:{sub_key}", sub_item, op)
        else:
            _set_known(doc, key, item, op)


def _set_known(doc: dict[str, Any], path: str, value: Any, op: str) -> None:
    """Like `_set`, but an unknown attribute is ignored, as in a POST or PUT body."""
    try:
        _resolve(path)
    except ScimError as exc:
        if exc.scim_type == "invalidPath":
            return
        raise
    _set(doc, path, value, op)


def _resolve(path: str) -> tuple[list[str], Attribute]:
    """The document keys a path leads to, and the attribute it names."""
    if "[" in path:
        raise invalid_path(f"value filters in PATCH paths are not supported yet: {path}")
    try:
        parsed = parse_attr_path(path)
    except FilterError as exc:
        raise invalid_path(f"invalid path {path!r}") from exc
    if parsed.urn is None or parsed.urn.lower() == USER.id.lower():
        if parsed.attribute.lower() in _SERVER_OWNED:
            raise ScimError(400, f"{parsed.attribute} is read-only", "mutability")
        if parsed.attribute.lower() == "externalid":
            attribute, keys = EXTERNAL_ID, [EXTERNAL_ID.name]
        else:
            found = USER.attribute(parsed.attribute)
            if found is None:
                raise invalid_path(f"unknown attribute {parsed.attribute!r}")
            attribute, keys = found, [found.name]
    elif parsed.urn.lower() == ENTERPRISE_USER.lower():
        found = ENTERPRISE.attribute(parsed.attribute)
        if found is None:
            raise invalid_path(f"unknown attribute {path!r}")
        attribute, keys = found, [ENTERPRISE_USER, found.name]
    else:
        raise invalid_path(f"unknown schema in path {path!r}")
    if parsed.sub_attribute is not None:
        sub = attribute.sub(parsed.sub_attribute)
        if sub is None or attribute.multi_valued:
            raise invalid_path(f"unknown sub-attribute in path {path!r}")
        attribute = sub
        keys.append(sub.name)
    if attribute.mutability == "readOnly":
        raise ScimError(400, f"{path} is read-only", "mutability")
    return keys, attribute


def _canonical(attribute: Attribute, value: Any) -> Any:
    """The value with its sub-attribute names spelled canonically, so it merges by key."""
    if attribute.type != "complex":
        return value
    if attribute.multi_valued and isinstance(value, list):
        single = Attribute(**{**attribute.__dict__, "multi_valued": False})
        return [_canonical(single, item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            sub = attribute.sub(key)
            out[sub.name if sub is not None else key] = item
        return out
    return value


def _set(doc: dict[str, Any], path: str, value: Any, op: str) -> None:
    keys, attribute = _resolve(path)
    value = _canonical(attribute, value)
    parent = doc
    for key in keys[:-1]:
        child = parent.get(key)
        if not isinstance(child, dict):
            child = {}
            parent[key] = child
        parent = child
    last = keys[-1]
    current = parent.get(last)
    if attribute.multi_valued and op == "add" and isinstance(current, list):
        given = value if isinstance(value, list) else [value]
        additions = [item for item in given if item not in current]
        if any(isinstance(item, dict) and item.get("primary") is True for item in additions):
            # RFC 7644 3.5.2: a new primary value makes the others non-primary.
            current = [
                {**item, "primary": False} if isinstance(item, dict) and "primary" in item else item
                for item in current
            ]
        parent[last] = current + additions
    elif attribute.type == "complex" and not attribute.multi_valued and isinstance(value, dict):
        merged = dict(current) if isinstance(current, dict) else {}
        merged.update(value)
        parent[last] = merged
    else:
        parent[last] = value


def _remove(doc: dict[str, Any], path: str) -> None:
    keys, _ = _resolve(path)
    if keys == ["userName"]:
        raise invalid_value("userName is required and cannot be removed")
    parents = [doc]
    for key in keys[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            return  # nothing there to remove
        parents.append(child)
    parents[-1].pop(keys[-1], None)
    # Drop complex values left empty, innermost first.
    for depth in range(len(keys) - 1, 0, -1):
        if not parents[depth]:
            parents[depth - 1].pop(keys[depth - 1], None)
