"""SCIM filters compiled to SQL conditions over a read model's columns.

Each resource type describes which filter attributes map to which columns; anything else is
`invalidFilter`. Conditions are written so both databases give identical results: values of
case-insensitive attributes are stored normalized and compared with normalized parameters,
and a condition is never NULL, so `not` and `or` treat an absent value as false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scimledger.ledger.names import normalize_name
from scimledger.ledger.schemas import Attribute, Schema
from scimledger.projections.filters import (
    And,
    AttrPath,
    Compare,
    Filter,
    FilterError,
    Not,
    Or,
    ValuePath,
)

_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def scim_datetime(moment: datetime) -> str:
    """xsd:dateTime in UTC with millisecond precision (truncated), as stored and as SCIM
    clients expect. (isoformat: a replay formats millions; strftime is several times
    slower.)"""
    if moment.tzinfo is not UTC and moment.utcoffset() != _ZERO:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


_ZERO = timedelta(0)


def filter_time(value: str) -> str:
    """A filter's dateTime in the stored form, so times compare as times, not as text."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise FilterError(f"{value!r} is not an xsd:dateTime") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return scim_datetime(moment)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise FilterError(f"{value!r} is out of the range of dateTime values") from exc


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "bool", "json_bool" (a JSON true/false), "number" or "time"
    normalize: Callable[[str], str] | None = None
    nullable: bool = False


@dataclass(frozen=True)
class Membership:
    """A multi-valued attribute stored in its own table, filtered with EXISTS.

    `table` has `owner_column` pointing at the resource's id and `value_column` holding the
    values' `value` sub-attribute.
    """

    table: str
    owner_column: str
    value_column: str


@dataclass(frozen=True)
class Document:
    """Attributes held in a JSON column, with string values stored case-folded.

    `schemas` maps each schema's URN to its definition; the first is the resource's core
    schema (its attributes sit at the top level), the others are extensions (their
    attributes sit under the URN, as in the SCIM JSON).
    """

    column: str
    schemas: tuple[Schema, ...]
    # The column holding the same attributes as stored (not case-folded), for the
    # attributes a declaration makes caseExact; None: there is none.
    exact: str | None = None


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a resource type can be filtered on."""

    table: str
    resource_urn: str = ""
    columns: Mapping[str, Column]
    multi_valued: Mapping[str, Membership] = field(default_factory=dict)
    document: Document | None = None


def _chained(node: And | Or) -> list[Filter]:
    """The terms of the chain of `node`'s operator it heads, left to right."""
    terms: list[Filter] = []
    pending: list[Filter] = [node]
    while pending:
        term = pending.pop()
        if type(term) is type(node):
            pending += [term.right, term.left]
        else:
            terms.append(term)
    return terms


def compile_filter(node: Filter, target: Target, dialect: str) -> tuple[str, list[Any]]:
    """A SQL condition on `target.table` selecting the rows the filter selects."""
    if isinstance(node, And | Or):
        # A chain of one operator is one flat list: `(a) OR (b) OR (c)`, not a pair of
        # parentheses a term, which overflows SQLite's parser at about 100 terms.
        parts = [compile_filter(term, target, dialect) for term in _chained(node)]
        joiner = " AND " if isinstance(node, And) else " OR "
        return joiner.join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]
    if isinstance(node, Not):
        inner, params = compile_filter(node.inner, target, dialect)
        return f"NOT ({inner})", params
    if isinstance(node, ValuePath):
        membership = _membership_for(node.path, target)
        if membership is not None:
            inner, params = compile_filter(node.filter, _value_target(membership), dialect)
            return _exists(membership, target, inner), params
        keys, attribute = _document_attribute(node.path, target)
        if not attribute.multi_valued or attribute.type != "complex":
            raise FilterError(f"a value filter needs a multi-valued attribute, not {node.path}")
        inner, params = compile_filter(node.filter, _element_target(attribute, dialect), dialect)
        return _elements_exist(target, keys, inner, dialect), params
    membership = _membership_for(node.path, target)
    if membership is not None:
        # `members eq "x"` and `members.value eq "x"` compare the values (RFC 7644 3.4.2.2).
        if node.path.sub_attribute not in (None, "value"):
            raise FilterError(f"filtering on {node.path} is not supported")
        value_target = _value_target(membership)
        inner, params = _compile_compare(
            Compare(AttrPath("value"), node.op, node.value), value_target, dialect
        )
        return _exists(membership, target, inner), params
    if target.columns.get(_key(node.path)) is not None and _is_core(node.path, target):
        return _compile_compare(node, target, dialect)
    return _compile_document_compare(node, target, dialect)


def _key(path: AttrPath) -> str:
    sub = f".{path.sub_attribute.lower()}" if path.sub_attribute else ""
    return path.attribute.lower() + sub


def _is_core(path: AttrPath, target: Target) -> bool:
    return path.urn is None or path.urn.lower() == target.resource_urn.lower()


def _membership_for(path: AttrPath, target: Target) -> Membership | None:
    return target.multi_valued.get(path.attribute.lower()) if _is_core(path, target) else None


def _value_target(membership: Membership) -> Target:
    return Target(
        table="m", columns={"value": Column(f"m.{membership.value_column}", "text", str.lower)}
    )


def _exists(membership: Membership, target: Target, condition: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {membership.table} m"
        f" WHERE m.{membership.owner_column} = {target.table}.id AND ({condition}))"
    )


# Attributes in the JSON document. Paths are built from the schemas' canonical names, never
# from the filter's text, so they can be written into the SQL.


def _document_attribute(path: AttrPath, target: Target) -> tuple[list[str | int], Attribute]:
    """The JSON keys leading to the attribute a path names, and its definition."""
    document = target.document
    if document is None:
        raise FilterError(f"filtering on {path} is not supported")
    if path.urn is None or path.urn.lower() == document.schemas[0].id.lower():
        schema, keys = document.schemas[0], list[str | int]()
    else:
        found = next((s for s in document.schemas[1:] if s.id.lower() == path.urn.lower()), None)
        if found is None:
            raise FilterError(f"unknown schema in {path}")
        schema, keys = found, [found.id]
    attribute = schema.attribute(path.attribute)
    if attribute is None or attribute.returned == "never":
        raise FilterError(f"filtering on {path} is not supported")
    return [*keys, attribute.name], attribute


def _sqlite_path(keys: list[str | int]) -> str:
    return "$" + "".join(f"[{key}]" if isinstance(key, int) else f'."{key}"' for key in keys)


def _pg_path(keys: list[str | int]) -> str:
    return "{" + ",".join(str(key) if isinstance(key, int) else f'"{key}"' for key in keys) + "}"


def _scalar(source: str, keys: list[str | int], dialect: str) -> str:
    if dialect == "sqlite":
        return f"json_extract({source}, '{_sqlite_path(keys)}')"
    return f"({source} #>> '{_pg_path(keys)}')"


def _element_target(attribute: Attribute, dialect: str) -> Target:
    """The sub-attributes of one value of a multi-valued attribute, as columns of `e`."""
    columns = {
        sub.name.lower(): _document_column(_scalar("e.value", [sub.name], dialect), sub)
        for sub in attribute.sub_attributes
    }
    return Target(table="e", columns=columns)


def _document_column(expression: str, attribute: Attribute) -> Column:
    if attribute.type == "boolean":
        return Column(expression, "json_bool", nullable=True)
    if attribute.type == "dateTime":  # stored as the server writes times, then case-folded
        return Column(expression, "time", _folded_time, nullable=True)
    return Column(expression, "text", normalize_name, nullable=True)


def _folded_time(value: str) -> str:
    return normalize_name(filter_time(value))


def _number(source: str, keys: list[str | int], dialect: str) -> str:
    """A JSON number at `keys`, as a number; NULL for anything else (a value recorded when
    the attribute had another type)."""
    if dialect == "sqlite":
        path = _sqlite_path(keys)
        return (
            f"(CASE WHEN json_type({source}, '{path}') IN ('integer', 'real')"
            f" THEN json_extract({source}, '{path}') END)"
        )
    path = _pg_path(keys)
    return (
        f"(CASE WHEN jsonb_typeof({source} #> '{path}') = 'number'"
        f" THEN ({source} #>> '{path}')::numeric END)"
    )


def _value_column(
    target: Target, keys: list[str | int], attribute: Attribute, dialect: str
) -> Column:
    """The column a filter compares a (single-valued) document attribute in: a number as
    a number, a caseExact string as stored, any other string case-folded."""
    document = target.document
    assert document is not None
    source = f"{target.table}.{document.column}"
    if attribute.type in ("integer", "decimal"):
        return Column(_number(source, keys, dialect), "number", nullable=True)
    if attribute.case_exact and attribute.type == "string" and document.exact is not None:
        exact = f"{target.table}.{document.exact}"
        if dialect == "postgresql":
            exact = f"({exact}::jsonb)"
        return Column(_scalar(exact, keys, dialect), "text", nullable=True)
    return _document_column(_scalar(source, keys, dialect), attribute)


def _elements_exist(target: Target, keys: list[str | int], condition: str, dialect: str) -> str:
    assert target.document is not None
    source = f"{target.table}.{target.document.column}"
    if dialect == "sqlite":
        elements = f"json_each({source}, '{_sqlite_path(keys)}') AS e"
    else:
        elements = f"jsonb_array_elements({source} #> '{_pg_path(keys)}') AS e(value)"
    return f"EXISTS (SELECT 1 FROM {elements} WHERE {condition})"


def _compile_document_compare(node: Compare, target: Target, dialect: str) -> tuple[str, list[Any]]:
    keys, attribute = _document_attribute(node.path, target)
    assert target.document is not None
    if attribute.multi_valued and attribute.type != "complex":
        # A declared array of strings, numbers or booleans: one of its values compares.
        if node.path.sub_attribute is not None:
            raise FilterError(f"{node.path.attribute} has no sub-attributes")
        if node.op == "pr":
            return _elements_exist(target, keys, "1 = 1", dialect), []
        element = "e.value" if dialect == "sqlite" else "(e.value #>> '{}')"
        if attribute.type in ("integer", "decimal"):
            number = "e.type IN ('integer', 'real')" if dialect == "sqlite" else None
            typed = number or "jsonb_typeof(e.value) = 'number'"
            numeric = element if dialect == "sqlite" else f"{element}::numeric"
            column = Column(f"(CASE WHEN {typed} THEN {numeric} END)", "number", nullable=True)
        else:
            column = _document_column(element, attribute)
        urn = node.path.urn or target.resource_urn
        element_target = Target(table="e", resource_urn=urn, columns={_key(node.path): column})
        condition, params = _compile_compare(node, element_target, dialect)
        return _elements_exist(target, keys, condition, dialect), params
    if attribute.multi_valued:
        # `emails co "@x"` compares each email's value; `emails.type eq "work"` its type.
        sub = node.path.sub_attribute or "value"
        inner = Compare(AttrPath(sub), node.op, node.value)
        if node.op == "pr" and node.path.sub_attribute is None:
            return _elements_exist(target, keys, "1 = 1", dialect), []
        condition, params = _compile_compare(inner, _element_target(attribute, dialect), dialect)
        return _elements_exist(target, keys, condition, dialect), params
    if attribute.type == "complex":
        if node.path.sub_attribute is None:
            raise FilterError(f"{node.path} is complex: filter on one of its sub-attributes")
        sub_attribute = attribute.sub(node.path.sub_attribute)
        if sub_attribute is None:
            raise FilterError(f"unknown sub-attribute in {node.path}")
        keys, attribute = [*keys, sub_attribute.name], sub_attribute
    elif node.path.sub_attribute is not None:
        raise FilterError(f"{node.path.attribute} has no sub-attributes")
    column = _value_column(target, keys, attribute, dialect)
    # The path kept as the client wrote it, for the errors that name it.
    urn = node.path.urn or target.resource_urn
    return _compile_compare(
        node,
        Target(table=target.table, resource_urn=urn, columns={_key(node.path): column}),
        dialect,
    )


def _column_for(path: AttrPath, target: Target) -> Column:
    column = target.columns.get(_key(path)) if _is_core(path, target) else None
    if column is None:
        raise FilterError(f"filtering on {path} is not supported")
    return column


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compile_compare(node: Compare, target: Target, dialect: str) -> tuple[str, list[Any]]:
    column = _column_for(node.path, target)
    sql, params = _condition(column, node, dialect)
    if not column.nullable or node.op == "pr" or node.value is None:
        return sql, params
    if node.op == "ne":
        return f"({column.name} IS NULL OR {sql})", params
    return f"({column.name} IS NOT NULL AND {sql})", params


def _condition(column: Column, node: Compare, dialect: str) -> tuple[str, list[Any]]:
    col = column.name
    if node.op == "pr":
        return f"{col} IS NOT NULL", []
    value = node.value
    if value is None:
        if node.op == "eq":
            return f"{col} IS NULL", []
        if node.op == "ne":
            return f"{col} IS NOT NULL", []
        raise FilterError(f"operator {node.op} cannot compare with null")
    if column.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FilterError(f"{node.path} is a number: compare it with a number")
        if node.op in ("co", "sw", "ew"):
            raise FilterError(f"operator {node.op} does not apply to {node.path}")
        return f"{col} {_SQL_OPS[node.op]} ?", [value]
    if column.kind in ("bool", "json_bool"):
        if not isinstance(value, bool) or node.op not in ("eq", "ne"):
            raise FilterError(f"{node.path} is boolean: use eq or ne with true or false")
        if column.kind == "json_bool" and dialect == "postgresql":
            return f"{col} {_SQL_OPS[node.op]} ?", ["true" if value else "false"]
        return f"{col} {_SQL_OPS[node.op]} ?", [value]
    if not isinstance(value, str):
        raise FilterError(f"{node.path} is a string: compare it with a quoted value")
    if column.kind == "time" and node.op in ("co", "sw", "ew"):
        raise FilterError(f"operator {node.op} does not apply to {node.path}")
    if column.normalize is not None:
        value = column.normalize(value)
    if node.op in ("co", "sw", "ew"):
        if value == "":
            return f"{col} IS NOT NULL", []  # every string contains the empty string
        if dialect == "sqlite":
            # SQLite's LIKE ignores ASCII case; these keep case-exact columns exact.
            return {
                "co": (f"instr({col}, ?) > 0", [value]),
                "sw": (f"substr({col}, 1, length(?)) = ?", [value, value]),
                "ew": (
                    f"(length({col}) >= length(?) AND substr({col}, -length(?)) = ?)",
                    [value, value, value],
                ),
            }[node.op]
        pattern = _like_escape(value)
        pattern = {"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[node.op]
        return f"{col} LIKE ? ESCAPE '\\'", [pattern]
    collate = ' COLLATE "C"' if dialect == "postgresql" and node.op not in ("eq", "ne") else ""
    return f"{col}{collate} {_SQL_OPS[node.op]} ?", [value]


class SortError(ValueError):
    """sortBy names an attribute the resources cannot be sorted by."""


def sort_expression(path: AttrPath, target: Target, dialect: str) -> str:
    """A SQL expression to ORDER BY for `sortBy` (RFC 7644 section 3.4.2.3).

    A multi-valued attribute sorts by its first value (its `value`, or the sub-attribute
    named). Strings sort by code point on both databases.
    """
    collate = ' COLLATE "C"' if dialect == "postgresql" else ""
    column = target.columns.get(_key(path)) if _is_core(path, target) else None
    if column is not None:
        return column.name + (collate if column.kind == "text" else "")
    if _membership_for(path, target) is not None:
        raise SortError(f"cannot sort by {path}")
    try:
        keys, attribute = _document_attribute(path, target)
    except FilterError as exc:
        raise SortError(f"cannot sort by {path}: {exc}") from exc
    if attribute.multi_valued and attribute.type == "complex":
        sub = attribute.sub(path.sub_attribute or "value")
        if sub is None:
            raise SortError(f"unknown sub-attribute in {path}")
        keys, attribute = [*keys, 0, sub.name], sub
    elif attribute.type == "complex":
        sub = attribute.sub(path.sub_attribute) if path.sub_attribute else None
        if sub is None:
            raise SortError(f"{path} is complex: sort by one of its sub-attributes")
        keys, attribute = [*keys, sub.name], sub
    elif path.sub_attribute is not None:
        raise SortError(f"{path.attribute} has no sub-attributes")
    column = _value_column(target, keys, attribute, dialect)
    return column.name + (collate if column.kind in ("text", "time") else "")
