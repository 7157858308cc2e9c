"""SCIM PATCH of a User (RFC 7644 section 3.5.2): a pure function over its document.

The document is the user's canonical attributes plus `active`. Operations apply in order to
a copy; the result is validated like a PUT body, so a PATCH can never store what a PUT could
not. Any invalid operation rejects the whole request. Paths may select values of a
multi-valued complex attribute with a value filter: `emails[type eq "work"].value`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scimledger.http.errors import ScimError, invalid_value
from scimledger.http.patch import Operation, invalid_path, parse_operations
from scimledger.http.schemas import (
    SERVER_OWNED,
    UserInput,
    checked_extensions,
    extension_named,
    holds_a_value,
    not_in_schema,
    parse_user,
    read_extension,
    replacing,
    undeclared,
)
from scimledger.ledger.schemas import (
    ENTERPRISE,
    EXTERNAL_ID,
    USER,
    USER_SCHEMAS,
    Attribute,
    ResourceSchemas,
    single_value,
)
from scimledger.projections.filters import (
    And,
    Compare,
    Filter,
    FilterError,
    Not,
    Or,
    ValuePath,
    matches,
    parse_attr_path,
    parse_filter,
)


def apply_user_patch(
    document: dict[str, Any], body: Any, schemas: ResourceSchemas = USER_SCHEMAS
) -> UserInput:
    """The user after the PatchOp `body`; raises ScimError, changing nothing, if invalid.
    `schemas`: the organization's (its declared extensions are patched like the enterprise
    one, by their URN alone or with an attribute)."""
    operations = parse_operations(body)
    doc = copy.deepcopy(document)
    for operation in operations:
        _apply(doc, operation, schemas)
    return parse_user(doc, schemas)


def apply_extension_patch(
    values: dict[str, Any], operations: list[Operation], schemas: ResourceSchemas
) -> dict[str, Any]:
    """A group's extension values (by URN) after PATCH operations whose paths all name an
    extension or one of its attributes (http.group_patch), checked like a PUT's; the values
    its declarations hide are kept."""
    shown, hidden = schemas.visible(values)
    doc = copy.deepcopy(shown)
    for operation in operations:
        _apply(doc, operation, schemas)
    extensions: dict[str, dict[str, Any]] = {}
    for key, value in doc.items():
        read_extension(key, value, schemas, extensions)
    return replacing(schemas, shown, hidden, checked_extensions(extensions, schemas))


def check_extension_path(path: str, value: Any, schemas: ResourceSchemas) -> None:
    """Refuses, before anything is read, an operation's path (or path-less key) that names
    an extension the organization has not declared, or an attribute it does not declare."""
    if schemas.extension(path) is not None:
        return
    _refuse_undeclared(path, value, schemas)
    _resolve(path.split("[", 1)[0], schemas)


def _apply(doc: dict[str, Any], operation: Operation, schemas: ResourceSchemas) -> None:
    op, path, value = operation.op, operation.path, operation.value
    extension = schemas.extension(path) if path is not None else None
    if extension is not None:
        # The extension's URN alone names the whole extension object. RFC 7644's path
        # grammar has no such path, but clients (scim2-tester among them) send it.
        urn = extension.schema.id
        if op == "remove":
            doc.pop(urn, None)
            return
        for sub_key, sub_item in operation.object_value().items():
            if sub_key.lower() != "schemas":  # see http.schemas._set_extension
                _set_known(doc, f"{urn}:{sub_key}", sub_item, op, schemas)
        return
    if op == "remove":
        _remove(doc, operation.required_path(), schemas)
        return
    if path:
        _refuse_undeclared(path, value, schemas)
        _set(doc, path, value, op, schemas)
        return
    for key, item in operation.object_value().items():
        if key.lower() in SERVER_OWNED:
            continue  # Okta echoes read-only attributes such as id; they change nothing.
        extension = schemas.extension(key)
        if extension is not None and isinstance(item, dict):
            for sub_key, sub_item in item.items():
                if sub_key.lower() != "schemas":  # see http.schemas._set_extension
                    _set_known(doc, f"{extension.schema.id}:{sub_key}", sub_item, op, schemas)
        else:
            _refuse_undeclared(key, item, schemas)
            _set_known(doc, key, item, op, schemas)


def _refuse_undeclared(path: str, value: Any, schemas: ResourceSchemas) -> None:
    """A whole extension's values (an object) under a URN the organization has not
    declared: refused, naming it."""
    lower = path.lower()
    if (
        isinstance(value, dict)
        and lower.startswith("urn:")
        and not lower.startswith(USER.id.lower() + ":")
        and schemas.split_urn(path) is None
    ):
        raise undeclared(extension_named(path, value))


def _set_known(
    doc: dict[str, Any], path: str, value: Any, op: str, schemas: ResourceSchemas
) -> None:
    """Like `_set`, for a key of a value without a path: as in a POST or PUT body, an
    empty value of an attribute no schema has is ignored, and any other refused."""
    try:
        _resolve(path, schemas)
    except ScimError as exc:
        if exc.scim_type != "invalidPath" or _declared_path(path, schemas):
            raise
        if not holds_a_value(value):
            return
        extension = schemas.split_urn(path)
        if extension is not None:
            raise not_in_schema(path, extension[0].schema) from None
        raise not_in_schema(path, USER) from None
    _set(doc, path, value, op, schemas)


def _declared_path(path: str, schemas: ResourceSchemas) -> bool:
    """Whether a path names an attribute of an extension the organization declared."""
    found = schemas.split_urn(path)
    return found is not None and found[0].schema is not ENTERPRISE


def _resolve(path: str, schemas: ResourceSchemas) -> tuple[list[str], Attribute]:
    """The document keys a path leads to, and the attribute it names."""
    try:
        parsed = parse_attr_path(path)
    except FilterError as exc:
        raise invalid_path(f"invalid path {path!r}") from exc
    extension = schemas.extension(parsed.urn) if parsed.urn is not None else None
    if parsed.urn is None or parsed.urn.lower() == USER.id.lower():
        if parsed.attribute.lower() in SERVER_OWNED:
            raise ScimError(400, f"{parsed.attribute} is read-only", "mutability")
        if parsed.attribute.lower() == "externalid":
            attribute, keys = EXTERNAL_ID, [EXTERNAL_ID.name]
        else:
            found = USER.attribute(parsed.attribute)
            if found is None:
                raise invalid_path(f"unknown attribute {parsed.attribute!r}")
            attribute, keys = found, [found.name]
    elif extension is not None:
        found = extension.schema.attribute(parsed.attribute)
        if found is None:
            known = ", ".join(a.name for a in extension.schema.attributes)
            raise invalid_path(f"unknown attribute {path!r} (its schema declares: {known})")
        attribute, keys = found, [extension.schema.id, found.name]
    else:
        raise undeclared(parsed.urn)
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
        single = single_value(attribute)
        return [_canonical(single, item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            sub = attribute.sub(key)
            out[sub.name if sub is not None else key] = item
        return out
    return value


def _parent(doc: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The object holding the attribute at `keys`, created if missing."""
    parent = doc
    for key in keys[:-1]:
        child = parent.get(key)
        if not isinstance(child, dict):
            child = {}
            parent[key] = child
        parent = child
    return parent


def _is_primary(item: Any) -> bool:
    # Microsoft Entra ID sends booleans as strings; parse_user reads "True" as true too.
    primary = item.get("primary") if isinstance(item, dict) else None
    return primary is True or (isinstance(primary, str) and primary.lower() == "true")


def _demoted(item: Any) -> Any:
    """The value made non-primary: RFC 7644 3.5.2 lets only one value be primary."""
    return {**item, "primary": False} if isinstance(item, dict) and "primary" in item else item


def _set(doc: dict[str, Any], path: str, value: Any, op: str, schemas: ResourceSchemas) -> None:
    if "[" in path:
        target = _filtered(path, schemas)
        _set_filtered(_parent(doc, target.keys), target, value)
        return
    keys, attribute = _resolve(path, schemas)
    value = _canonical(attribute, value)
    parent = _parent(doc, keys)
    last = keys[-1]
    current = parent.get(last)
    if attribute.multi_valued and op == "add" and isinstance(current, list):
        given = value if isinstance(value, list) else [value]
        additions = [item for item in given if item not in current]
        if any(_is_primary(item) for item in additions):
            current = [_demoted(item) for item in current]
        parent[last] = current + additions
    elif attribute.type == "complex" and not attribute.multi_valued and isinstance(value, dict):
        merged = dict(current) if isinstance(current, dict) else {}
        merged.update(value)
        parent[last] = merged
    else:
        parent[last] = value


def _remove(doc: dict[str, Any], path: str, schemas: ResourceSchemas) -> None:
    target = _filtered(path, schemas) if "[" in path else None
    keys = target.keys if target is not None else _resolve(path, schemas)[0]
    if keys == ["userName"]:
        raise invalid_value("userName is required and cannot be removed")
    if keys == ["active"]:
        # A user is active or not: the ledger keeps no third, unassigned state.
        raise invalid_value("active cannot be removed: replace it with true or false")
    parents = [doc]
    for key in keys[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            return  # nothing there to remove
        parents.append(child)
    if target is None:
        parents[-1].pop(keys[-1], None)
    else:
        _remove_filtered(parents[-1], target)
    # Drop complex values left empty, innermost first.
    for depth in range(len(keys) - 1, 0, -1):
        if not parents[depth]:
            parents[depth - 1].pop(keys[depth - 1], None)


@dataclass(frozen=True)
class _FilteredPath:
    """`attr[filter]` or `attr[filter].sub`: values of a multi-valued complex attribute."""

    keys: list[str]
    attribute: Attribute
    filter: Filter
    sub: Attribute | None

    def selects(self, item: Any) -> bool:
        return isinstance(item, dict) and matches(self.filter, item, self._case_exact)

    def _case_exact(self, name: str) -> bool:
        sub = self.attribute.sub(name)
        return sub is not None and sub.case_exact


def _filtered(path: str, schemas: ResourceSchemas) -> _FilteredPath:
    attribute_text, filter_text, sub_text = _split_filter_path(path)
    keys, attribute = _resolve(attribute_text, schemas)
    if not (attribute.multi_valued and attribute.type == "complex"):
        raise invalid_path(f"a value filter needs a multi-valued complex attribute: {path!r}")
    try:
        node = parse_filter(filter_text)
    except FilterError as exc:
        raise invalid_path(f"invalid value filter in path {path!r}: {exc}") from exc
    _check_filter(attribute, node, path)
    sub = None
    if sub_text is not None:
        sub = attribute.sub(sub_text)
        if sub is None:
            raise invalid_path(f"unknown sub-attribute in path {path!r}")
        if sub.mutability == "readOnly":
            raise ScimError(400, f"{path} is read-only", "mutability")
    return _FilteredPath(keys, attribute, node, sub)


def _split_filter_path(path: str) -> tuple[str, str, str | None]:
    """`emails[type eq "work"].value` as ("emails", 'type eq "work"', "value")."""
    start = path.index("[")
    depth, quoted, escaped = 0, False, False
    for end in range(start, len(path)):
        char = path[end]
        if quoted:
            # A "]" inside a string literal is data, not the end of the filter.
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                break
    else:
        raise invalid_path(f"unclosed value filter in path {path!r}")
    rest = path[end + 1 :]
    if rest and (not rest.startswith(".") or len(rest) == 1):
        raise invalid_path(f"invalid path {path!r}")
    return path[:start], path[start + 1 : end], rest[1:] or None


def _check_filter(attribute: Attribute, node: Filter, path: str) -> None:
    """Rejects a filter naming anything but the attribute's own sub-attributes."""
    if isinstance(node, And | Or):
        _check_filter(attribute, node.left, path)
        _check_filter(attribute, node.right, path)
    elif isinstance(node, Not):
        _check_filter(attribute, node.inner, path)
    elif isinstance(node, ValuePath):
        raise invalid_path(f"nested value filters are not supported: {path!r}")
    elif (
        node.path.urn is not None
        or node.path.sub_attribute is not None
        or attribute.sub(node.path.attribute) is None
    ):
        raise invalid_path(f"unknown sub-attribute {node.path} in the filter of {path!r}")


def _set_filtered(parent: dict[str, Any], target: _FilteredPath, value: Any) -> None:
    """add and replace alike: the matching values get the new sub-attribute(s)."""
    name = target.attribute.name
    if target.sub is None and not isinstance(value, dict):
        raise invalid_value(f"a value for {name}[...] must be an object")
    update = _canonical(target.attribute, value) if target.sub is None else {target.sub.name: value}
    items = _values(parent, name)
    hits = {i for i, item in enumerate(items) if target.selects(item)}
    items = [{**item, **update} if i in hits else item for i, item in enumerate(items)]
    if not hits:
        pairs = _eq_pairs(target.attribute, target.filter)
        if target.sub is None or pairs is None:
            raise ScimError(400, f"no value of {name} matches the filter", "noTarget")
        # Deliberately not RFC 7644's noTarget: Microsoft Entra ID sets a value that does not
        # exist yet with `emails[type eq "work"].value`, so add the value the filter describes.
        hits = {len(items)}
        items.append({**pairs, **update})
    if any(_is_primary(items[i]) for i in hits):
        items = [item if i in hits else _demoted(item) for i, item in enumerate(items)]
    parent[name] = items


def _values(parent: dict[str, Any], name: str) -> list[Any]:
    current = parent.get(name)
    if isinstance(current, dict):
        return [current]  # one object stands for a one-value array, as in a POST body
    return list(current) if isinstance(current, list) else []


def _eq_pairs(attribute: Attribute, node: Filter) -> dict[str, Any] | None:
    """The sub-attribute values of a filter made only of `eq` joined by `and`, else None."""
    if isinstance(node, And):
        left = _eq_pairs(attribute, node.left)
        right = _eq_pairs(attribute, node.right)
        if left is None or right is None or any(left.get(k, v) != v for k, v in right.items()):
            return None
        return {**left, **right}
    if isinstance(node, Compare) and node.op == "eq" and node.value is not None:
        sub = attribute.sub(node.path.attribute)
        return None if sub is None else {sub.name: node.value}
    return None


def _remove_filtered(parent: dict[str, Any], target: _FilteredPath) -> None:
    """The matching values, or their sub-attribute, removed; no match removes nothing."""
    name = target.attribute.name
    items = _values(parent, name)
    if target.sub is None:
        kept = [item for item in items if not target.selects(item)]
    else:
        sub_name = target.sub.name
        kept = [
            {k: v for k, v in item.items() if k != sub_name} if target.selects(item) else item
            for item in items
        ]
    if kept:
        parent[name] = kept
    else:
        parent.pop(name, None)
