"""SCIM filters compiled to SQL conditions over a read model's columns.

Each resource type describes which filter attributes map to which columns; anything else is
`invalidFilter`. Conditions are written so both databases give identical results: values of
case-insensitive attributes are stored normalized and compared with normalized parameters,
and a condition is never NULL, so `not` and `or` treat an absent value as false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    """xsd:dateTime in UTC with millisecond precision, as stored and as SCIM clients expect."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def filter_time(value: str) -> str:
    """A filter's dateTime in the stored form, so times compare as times, not as text."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise FilterError(f"{value!r} is not an xsd:dateTime") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return scim_datetime(moment)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "bool" or "time"
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
class Target:
    """What a resource type can be filtered on."""

    table: str
    resource_urn: str
    columns: Mapping[str, Column]
    multi_valued: Mapping[str, Membership]


def compile_filter(node: Filter, target: Target, dialect: str) -> tuple[str, list[Any]]:
    """A SQL condition on `target.table` selecting the rows the filter selects."""
    if isinstance(node, And | Or):
        left, lp = compile_filter(node.left, target, dialect)
        right, rp = compile_filter(node.right, target, dialect)
        joiner = "AND" if isinstance(node, And) else "OR"
        return f"({left}) {joiner} ({right})", [*lp, *rp]
    if isinstance(node, Not):
        inner, params = compile_filter(node.inner, target, dialect)
        return f"NOT ({inner})", params
    if isinstance(node, ValuePath):
        membership = _membership_for(node.path, target)
        if membership is None:
            raise FilterError(f"value filters on {node.path} are not supported")
        inner, params = compile_filter(node.filter, _value_target(membership), dialect)
        return _exists(membership, target, inner), params
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
    return _compile_compare(node, target, dialect)


def _key(path: AttrPath) -> str:
    sub = f".{path.sub_attribute.lower()}" if path.sub_attribute else ""
    return path.attribute.lower() + sub


def _check_urn(path: AttrPath, target: Target) -> None:
    if path.urn is not None and path.urn.lower() != target.resource_urn.lower():
        raise FilterError(f"filtering on {path} is not supported")


def _membership_for(path: AttrPath, target: Target) -> Membership | None:
    _check_urn(path, target)
    return target.multi_valued.get(path.attribute.lower())


def _value_target(membership: Membership) -> Target:
    return Target(
        table="m",
        resource_urn="",
        columns={"value": Column(f"m.{membership.value_column}", "text")},
        multi_valued={},
    )


def _exists(membership: Membership, target: Target, condition: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {membership.table} m"  # noqa: S608 (names are constants)
        f" WHERE m.{membership.owner_column} = {target.table}.id AND ({condition}))"
    )


def _column_for(path: AttrPath, target: Target) -> Column:
    _check_urn(path, target)
    column = target.columns.get(_key(path))
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
    if column.kind == "bool":
        if not isinstance(value, bool) or node.op not in ("eq", "ne"):
            raise FilterError(f"{node.path} is boolean: use eq or ne with true or false")
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
