"""Property-based fuzzing of SCIM filters (issue 8): parsing, in-memory matching, SQL compiling.

Whatever text a client sends as a filter, `parse_filter` returns a tree or raises
`FilterError` (a 400 invalidFilter), never another exception (which would be a 500). Trees
built from the grammar print to text that parses back to the same tree; `matches` and
`compile_filter` give a result or a `FilterError` for any tree.

Each property runs 200 examples by default, so CI stays short. Set the environment variable
`SCIMLEDGER_FUZZ_EXAMPLES` to another number for a longer run, e.g.
`SCIMLEDGER_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/unit/test_fuzz_filters.py`.
No example database is kept (`database=None`); Hypothesis still writes caches to `.hypothesis/`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypeVar

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from scimledger.projections.filters import (
    COMPARE_OPS,
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    And,
    AttrPath,
    Compare,
    Filter,
    FilterError,
    Not,
    Or,
    ValuePath,
    _Parser,
    matches,
    parse_attr_path,
    parse_filter,
)
from scimledger.projections.scim import GROUPS, USERS
from scimledger.projections.sql_filters import Target, compile_filter
from tests.fuzz import FUZZ
from tests.scim import CORE_GROUP, CORE_USER
from tests.scim import ENTERPRISE_USER as ENTERPRISE

T = TypeVar("T")


# Strategies: the grammar of RFC 7644 section 3.4.2.2, and text around it.

KNOWN_NAMES = [
    "userName",
    "USERNAME",
    "name",
    "familyName",
    "givenName",
    "emails",
    "value",
    "type",
    "primary",
    "display",
    "meta",
    "lastModified",
    "created",
    "active",
    "externalId",
    "displayName",
    "members",
    "groups",
    "id",
    "title",
    "$ref",
    "x-custom_attr2",
    "and",
    "OR",
    "true",
    "null",
    "pr",
    "eq",
]

ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"


def _is_name_char(char: str) -> bool:
    return re.fullmatch(r"[\w-]", char) is not None


names = st.one_of(
    st.sampled_from(KNOWN_NAMES),
    st.builds(
        str.__add__,
        st.sampled_from(ASCII_LETTERS + "$"),
        st.text(ASCII_LETTERS + DIGITS + "_$-", max_size=12),
    ),
    # Any Unicode word characters after the first: the tokenizer and the path syntax both
    # use \w.
    st.builds(
        str.__add__,
        st.sampled_from("abcxyzABCXYZ$"),
        st.text(st.characters(categories=["L", "N", "Pc", "Pd"]).filter(_is_name_char), max_size=7),
    ),
).filter(lambda s: s.lower() != "not")  # `not` cannot name an attribute: it starts `not (`

urns = st.one_of(
    st.sampled_from([CORE_USER, ENTERPRISE, CORE_GROUP, "urn", "URN:x", "urn:a.b-c:1.0"]),
    st.builds(
        "{}:{}".format,
        st.sampled_from(["urn", "URN", "Urn"]),
        st.lists(
            st.text(ASCII_LETTERS + DIGITS + ".-", min_size=1, max_size=10), min_size=1, max_size=4
        ).map(":".join),
    ),
)


attr_paths = st.builds(AttrPath, names, st.none() | names, st.none() | urns)
attribute_paths = st.builds(AttrPath, names, st.none(), st.none() | urns)  # no sub-attribute


# Strings a filter can hold: anything but NUL (refused: see test_a_string_spelling_nul_...).
values = st.one_of(
    st.text(st.characters(exclude_characters="\x00")),
    st.text(alphabet='"\\/\b\f\n\r\t\x01 aZ\u00e9\u2028\U0001f600]['),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


def compares(paths: st.SearchStrategy[AttrPath]) -> st.SearchStrategy[Compare]:
    return st.builds(Compare, paths, st.sampled_from(sorted(COMPARE_OPS)), values) | st.builds(
        Compare, paths, st.just("pr")
    )


def _extend(
    vp_paths: st.SearchStrategy[AttrPath], children: st.SearchStrategy[Filter]
) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.builds(And, children, children),
        st.builds(Or, children, children),
        st.builds(Not, children),
        st.builds(ValuePath, vp_paths, children),
    )


def trees(
    leaves: st.SearchStrategy[Filter], vp_paths: st.SearchStrategy[AttrPath]
) -> st.SearchStrategy[Filter]:
    return st.recursive(leaves, partial(_extend, vp_paths), max_leaves=6)


filter_trees = trees(compares(attr_paths), attribute_paths)

SPACES = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\r\n", " \u3000"])


CASINGS = [str.lower, str.upper, str.capitalize, str.swapcase]
CASES = st.sampled_from(CASINGS)


def _case(draw: st.DrawFn, word: str) -> str:
    """A keyword or operator in some case: they are case-insensitive."""
    return draw(CASES)(word)


def _literal(draw: st.DrawFn, value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # ensure_ascii spells characters beyond the BMP as surrogate pairs, which must join.
        return json.dumps(value, ensure_ascii=draw(st.booleans()))
    return repr(value)


def _render(draw: st.DrawFn, node: Filter) -> tuple[str, int]:
    """The filter as text, and how deep the parser nests to read it (its `unary` levels).

    Parentheses go where precedence needs them (and binds tighter than or, both associate
    left), and sometimes where it does not.
    """
    sp = draw(SPACES)
    if isinstance(node, Compare):
        if node.op == "pr":
            return f"{node.path}{sp}{_case(draw, 'pr')}", 1
        op = _case(draw, node.op)
        return f"{node.path}{sp}{op}{draw(SPACES)}{_literal(draw, node.value)}", 1
    if isinstance(node, Not):
        inner, depth = _render(draw, node.inner)
        return f"{_case(draw, 'not')}{sp}({inner})", depth + 1
    if isinstance(node, ValuePath):
        inner, depth = _render(draw, node.filter)
        return f"{node.path}[{inner}]", depth + 1
    assert isinstance(node, And | Or)
    word = "and" if isinstance(node, And) else "or"
    left, left_depth = _render(draw, node.left)
    right, right_depth = _render(draw, node.right)
    left_parens = isinstance(node, And) and isinstance(node.left, Or)
    right_parens = isinstance(node.right, Or) or (
        isinstance(node, And) and isinstance(node.right, And)
    )
    if left_parens or draw(st.booleans()):
        left, left_depth = f"({left})", left_depth + 1
    if right_parens or draw(st.integers(0, 3)) == 0:
        right, right_depth = f"({right}{draw(SPACES)})", right_depth + 1
    return f"{left}{sp}{_case(draw, word)}{draw(SPACES)}{right}", max(left_depth, right_depth)


@st.composite
def rendered(draw: st.DrawFn) -> tuple[Filter, str, int]:
    tree = draw(filter_trees)
    text, depth = _render(draw, tree)
    return tree, draw(SPACES) + text, depth


FRAGMENTS = [
    "(",
    ")",
    "[",
    "]",
    '"',
    "\\",
    "\\u",
    "\\ud800",
    "\\udc00",
    "\\ud83d\\ude00",
    " and ",
    " or ",
    "not",
    " pr",
    " eq ",
    " gt ",
    ".",
    ":",
    "urn:",
    "1e",
    "-",
    "-1.5e+3",
    "9" * 50,
    "\x00",
    "\u2028",
    "true",
    "null",
    "emails[",
    ".value",
    "$",
    "_",
    " ",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid filter with a few edits: near-misses reach the parser's error paths."""
    _, text, _ = draw(rendered())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["delete", "insert", "char"]))
        if edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        elif edit == "insert":
            text = text[:at] + draw(st.sampled_from(FRAGMENTS)) + text[at:]
        else:
            text = text[:at] + draw(st.characters()) + text[at:]
    return text


LONG_UNITS = ['userName eq "x" or ', "a pr and ", "(", "not (", "a[", '"\\u00e9', " ", "x", "\\"]


def _repeated(unit: str, count: int, tail: str) -> str:
    return unit * count + tail


# Long texts, a few thousand characters, some past MAX_FILTER_LENGTH (drawing them
# character by character would be slow).
long_texts = st.builds(
    _repeated,
    st.sampled_from(LONG_UNITS) | st.text(min_size=1, max_size=8),
    st.integers(1, 800),
    st.sampled_from(["", "a pr", ")", '"', "]"]),
)

any_text = st.one_of(
    st.text(),
    st.text(max_size=3000),
    long_texts,
    st.text(alphabet=st.characters(codec="ascii")),
    st.text(alphabet=st.characters(categories=["Cc", "Zs", "Zl", "Zp", "Po", "Ps", "Pe"])),
    st.lists(st.sampled_from(FRAGMENTS) | names, max_size=40).map("".join),
    rendered().map(lambda found: found[1]),
    mutated(),
)


def _outcome(call: Callable[..., T], *arguments: Any) -> T | FilterError:
    """What call(*arguments) returns, or the FilterError it raises; any other exception
    escapes and fails the test."""
    try:
        return call(*arguments)
    except FilterError as exc:
        return exc


def _parse(text: str) -> Filter | FilterError:
    return _outcome(parse_filter, text)


def _general_parse(text: str) -> Filter:
    """What the general parser alone makes of the text (parse_filter has a fast path)."""
    return _Parser(text).parse()


def _shape(node: Filter) -> Any:
    """The tree with each value's type beside it: 1, 1.0 and True are equal in Python."""
    if isinstance(node, Compare):
        return ("compare", node.path, node.op, type(node.value).__name__, node.value)
    if isinstance(node, And | Or):
        return (type(node).__name__, _shape(node.left), _shape(node.right))
    if isinstance(node, Not):
        return ("not", _shape(node.inner))
    return ("valuepath", node.path, _shape(node.filter))


# Parsing


@FUZZ
@given(any_text, st.sampled_from([" ", "\t", "\n", "  \r\n "]))
def test_any_text_parses_to_a_tree_or_raises_filter_error(text: str, space: str) -> None:
    result = _parse(text)
    assert isinstance(result, FilterError | Compare | And | Or | Not | ValuePath)
    # The same text, the same outcome.
    again = _parse(text)
    if isinstance(result, FilterError):
        assert isinstance(again, FilterError)
        assert str(again) == str(result)
    else:
        assert again == result
    if len(text) + 2 * len(space) > MAX_FILTER_LENGTH or not text.strip():
        return  # refused before either parser runs: see the limit tests
    # The fast path for `attribute op "string"` agrees with the general parser.
    general = _outcome(_general_parse, text)
    # Whitespace around the filter changes nothing.
    spaced = _parse(space + text + space)
    if isinstance(result, FilterError):
        assert isinstance(general, FilterError)
        assert isinstance(spaced, FilterError)
    else:
        assert not isinstance(general, FilterError)
        assert not isinstance(spaced, FilterError)
        assert _shape(general) == _shape(result)
        assert _shape(spaced) == _shape(result)


@FUZZ
@given(rendered())
def test_printed_tree_parses_back_to_the_same_tree(found: tuple[Filter, str, int]) -> None:
    tree, text, depth = found
    if len(text) > MAX_FILTER_LENGTH:
        with pytest.raises(FilterError, match=f"^filter longer than {MAX_FILTER_LENGTH} "):
            parse_filter(text)
    elif depth > MAX_DEPTH:
        with pytest.raises(FilterError, match=f"^filter nested deeper than {MAX_DEPTH} levels$"):
            parse_filter(text)
    else:
        assert _shape(parse_filter(text)) == _shape(tree)


@FUZZ
@given(
    st.sampled_from(['userName eq "bjensen"', 'emails[type eq "work"]', "a pr"]) | st.text(),
    st.integers(1, 3000),
    st.sampled_from([" ", "\n", "x", "(", " and a pr"]),
)
def test_filter_longer_than_the_limit_is_refused(text: str, extra: int, filler: str) -> None:
    text += filler * (MAX_FILTER_LENGTH + extra - len(text))
    assert len(text) > MAX_FILTER_LENGTH
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert str(caught.value) == f"filter longer than {MAX_FILTER_LENGTH} characters"


WRAPPERS = {
    "parens": ("(", ")"),
    "not": ("not (", ")"),
    "NOT": ("NOT(", ")"),
    "value path": ("emails[", "]"),
}


@FUZZ
@given(st.lists(st.sampled_from(sorted(WRAPPERS)), min_size=0, max_size=MAX_DEPTH + 8))
def test_nesting_limit_is_exact(wrappers: list[str]) -> None:
    """Each wrapper is one level; the innermost comparison is one more."""
    text = 'type eq "work"'
    for wrapper in reversed(wrappers):
        opening, closing = WRAPPERS[wrapper]
        text = f"{opening}{text}{closing}"
    if len(wrappers) + 1 > MAX_DEPTH:
        with pytest.raises(FilterError) as caught:
            parse_filter(text)
        assert str(caught.value) == f"filter nested deeper than {MAX_DEPTH} levels"
    else:
        node = parse_filter(text)
        for wrapper in wrappers:
            if wrapper == "value path":
                assert isinstance(node, ValuePath)
                assert node.path == AttrPath("emails")
                node = node.filter
            elif wrapper != "parens":
                assert isinstance(node, Not)
                node = node.inner
        assert node == Compare(AttrPath("type"), "eq", "work")


@FUZZ
@given(st.integers(MAX_DEPTH, 300), st.sampled_from(["(", "not(", "a[", "not (a["]))
def test_unclosed_deep_nesting_is_refused_not_a_recursion_error(count: int, opening: str) -> None:
    text = opening * count
    if len(text) > MAX_FILTER_LENGTH:
        return  # the length limit speaks first
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert str(caught.value) == f"filter nested deeper than {MAX_DEPTH} levels"


# Attribute paths


@FUZZ
@given(
    st.one_of(
        st.text(),
        st.lists(st.sampled_from(FRAGMENTS) | names, max_size=6).map("".join),
        st.builds("{}:{}".format, urns, st.text(max_size=12)),
        attr_paths,
    )
)
def test_attr_path_parses_back_to_its_own_text_or_raises_filter_error(
    given_path: str | AttrPath,
) -> None:
    text = str(given_path)
    path = _outcome(parse_attr_path, text)
    if isinstance(path, FilterError):
        assert not isinstance(given_path, AttrPath)
        assert str(path) == f"invalid attribute path {text!r}"
        return
    assert str(path) == text
    if isinstance(given_path, AttrPath):
        assert path == given_path


# matches: a parsed filter evaluated against one complex value, as PATCH value paths do

DOC_NAMES = ["type", "value", "primary", "display", "name"]
DOC_SUBS = ["givenName", "familyName"]

match_paths = st.builds(
    AttrPath,
    st.sampled_from(DOC_NAMES),
    st.none() | st.sampled_from(DOC_SUBS),
    st.none() | st.just(ENTERPRISE),
)
match_trees = trees(compares(match_paths), st.builds(AttrPath, st.sampled_from(DOC_NAMES)))

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.sampled_from(["work", "WORK", "Work", "home", "ß", "SS", "", "2011-05-13T04:42:34Z"]),
)
json_keys = st.sampled_from(DOC_NAMES + DOC_SUBS)


def _json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)


json_values = st.recursive(json_scalars, _json_containers, max_leaves=8)


# Names match case-insensitively: documents spell them in several ways.
documents = st.dictionaries(
    st.sampled_from([spelling(n) for n in [*DOC_NAMES, ENTERPRISE] for spelling in CASINGS]),
    json_values,
    max_size=6,
)


def _lookup(item: Any, path: AttrPath) -> Any:
    for name in [n for n in (path.urn, path.attribute, path.sub_attribute) if n]:
        if not isinstance(item, dict):
            return None
        item = next((v for k, v in item.items() if k.lower() == name.lower()), None)
    return item


def _has_value_path(node: Filter) -> bool:
    if isinstance(node, ValuePath):
        return True
    if isinstance(node, And | Or):
        return _has_value_path(node.left) or _has_value_path(node.right)
    return isinstance(node, Not) and _has_value_path(node.inner)


def _check_laws(node: Filter, doc: dict[str, Any]) -> bool:
    """matches(node, doc), checked against its children's results, for a tree with no
    value path."""
    result = matches(node, doc)
    assert isinstance(result, bool)
    if isinstance(node, And):
        assert result == (_check_laws(node.left, doc) and _check_laws(node.right, doc))
    elif isinstance(node, Or):
        assert result == (_check_laws(node.left, doc) or _check_laws(node.right, doc))
    elif isinstance(node, Not):
        assert result == (not _check_laws(node.inner, doc))
    elif isinstance(node, Compare) and node.op == "pr":
        assert result == (_lookup(doc, node.path) not in (None, "", [], {}))
    elif isinstance(node, Compare) and node.op == "ne":
        assert result == (not matches(replace(node, op="eq"), doc))
    return result


@FUZZ
@given(match_trees, documents, st.booleans())
def test_matches_gives_a_bool_by_the_laws_of_and_or_not(
    node: Filter, doc: dict[str, Any], exact: bool
) -> None:
    if _has_value_path(node):
        result = _outcome(matches, node, doc)
        if isinstance(result, FilterError):
            assert str(result) == "nested value filters are not supported"
        else:
            assert isinstance(result, bool)
        return
    _check_laws(node, doc)
    # What a PATCH does: parse the text, then match. The printed tree behaves the same.
    text = _plain(node)
    if len(text) > MAX_FILTER_LENGTH:
        return
    parsed = _parse(text)
    if isinstance(parsed, FilterError):  # every operand in parentheses can nest too deep
        assert str(parsed) == f"filter nested deeper than {MAX_DEPTH} levels"
        return
    assert matches(parsed, doc, lambda _: exact) == matches(node, doc, lambda _: exact)


def _plain(node: Filter) -> str:
    """The tree printed with parentheses around every operand: no precedence to get wrong."""
    if isinstance(node, Compare):
        if node.op == "pr":
            return f"{node.path} pr"
        value = "null" if node.value is None else json.dumps(node.value)
        return f"{node.path} {node.op} {value}"
    if isinstance(node, Not):
        return f"not ({_plain(node.inner)})"
    assert isinstance(node, And | Or)
    word = "and" if isinstance(node, And) else "or"
    return f"({_plain(node.left)}) {word} ({_plain(node.right)})"


plain_scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)


@FUZZ
@given(match_paths, plain_scalars, st.lists(json_scalars, max_size=3))
def test_a_value_matches_eq_itself_alone_and_among_others(
    path: AttrPath, value: Any, others: list[Any]
) -> None:
    def holding(stored: Any) -> dict[str, Any]:
        inner = {path.sub_attribute: stored} if path.sub_attribute else stored
        return {path.urn: {path.attribute: inner}} if path.urn else {path.attribute: inner}

    eq = Compare(path, "eq", value)
    assert matches(eq, holding(value)) is True
    assert matches(eq, holding([*others, value])) is True
    assert matches(replace(eq, op="ne"), holding(value)) is False
    assert matches(eq, {}) is False
    assert matches(replace(eq, op="ne"), {}) is True


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
_TEXTUAL: dict[str, Callable[[str, str], bool]] = {
    **_ORDER,
    "co": lambda a, b: b in a,
    "sw": lambda a, b: a.startswith(b),
    "ew": lambda a, b: a.endswith(b),
}


def _rfc_compare(op: str, actual: Any, expected: Any, exact: bool) -> bool:
    """RFC 7644 3.4.2.2 for one value: booleans are only equal or not, strings compare
    case-insensitively unless case-exact, numbers by value, other pairs never match."""
    if actual is None:
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        return op == "eq" and actual is expected
    if isinstance(actual, str) and isinstance(expected, str):
        a, b = (actual, expected) if exact else (actual.casefold(), expected.casefold())
        return _TEXTUAL[op](a, b)
    numbers = (int, float)
    if isinstance(actual, numbers) and isinstance(expected, numbers) and op in _ORDER:
        return _ORDER[op](actual, expected)
    return False


comparable = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["Work", "WORK", "ß", "SS", "ss", "İ", "i"]),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
)


@FUZZ
@given(st.sampled_from(sorted(COMPARE_OPS)), comparable | st.none(), comparable, st.booleans())
def test_one_value_compares_as_rfc_7644_says(
    op: str, actual: Any, expected: Any, exact: bool
) -> None:
    """A None `actual` is an absent value. (Comparing with null is left out: `matches` and
    `compile_filter` read it differently, and neither documents which is meant.)"""
    node = Compare(AttrPath("value"), op, expected)
    if op == "ne":  # the negation of eq, so an absent or odd value is not equal
        wanted = not _rfc_compare("eq", actual, expected, exact)
    else:
        wanted = _rfc_compare(op, actual, expected, exact)
    assert matches(node, {"value": actual}, lambda _: exact) is wanted
    if not exact and isinstance(expected, str):
        # Swapping the case of ASCII letters, in the value or the name, changes nothing.
        swapped = "".join(c.swapcase() if c.isascii() else c for c in expected)
        assert matches(replace(node, value=swapped), {"VALUE": actual}) is wanted


# SQL: filters compiled for the users' and groups' read models, without a database

SQL_NAMES = [
    "userName",
    "externalId",
    "id",
    "active",
    "meta",
    "emails",
    "phoneNumbers",
    "addresses",
    "name",
    "displayName",
    "title",
    "password",
    "groups",
    "members",
    "manager",
    "department",
    "employeeNumber",
    "unknown",
]
SQL_SUBS = [
    "value",
    "type",
    "primary",
    "display",
    "created",
    "lastModified",
    "givenName",
    "locality",
    "familyName",
    "nope",
]
# Paths each read model can filter on; inside a value path, the values' sub-attributes.
USER_PATHS = [
    "userName",
    "externalId",
    "id",
    "active",
    "meta.created",
    "meta.lastModified",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "name.givenName",
    "displayName",
    "title",
    "groups",
    "groups.value",
    "phoneNumbers.value",
    "addresses.locality",
    f"{CORE_USER}:userName",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:manager.value",
]
GROUP_PATHS = [
    "displayName",
    "externalId",
    "id",
    "members",
    "members.value",
    "meta.created",
    "meta.lastModified",
    f"{CORE_GROUP}:displayName",
]
ELEMENT_PATHS = ["value", "type", "primary", "display", "Value"]
any_sql_paths = st.one_of(
    st.builds(
        AttrPath,
        st.sampled_from(SQL_NAMES),
        st.none() | st.sampled_from(SQL_SUBS),
        st.none() | st.sampled_from([CORE_USER, ENTERPRISE, CORE_GROUP, "urn:x"]),
    ),
    attr_paths,
)
ONE_IN_4 = st.integers(0, 3)

offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)


def _datetime_texts(years: tuple[int, int]) -> st.SearchStrategy[str]:
    moments = st.datetimes(
        min_value=datetime(years[0], 1, 1),
        max_value=datetime(years[1], 12, 31, 23, 59, 59),
        timezones=st.one_of(st.none(), offsets),
    )
    return st.one_of(moments.map(datetime.isoformat), moments.map(lambda m: m.isoformat(" ")))


@st.composite
def _sql_leaves(
    draw: st.DrawFn, paths: st.SearchStrategy[AttrPath], values: st.SearchStrategy[Any]
) -> Compare:
    """A comparison, usually on a path the read model has (Hypothesis leans to 0)."""
    path = draw(any_sql_paths) if draw(ONE_IN_4) == 3 else draw(paths)
    op = draw(st.sampled_from(sorted(COMPARE_OPS | {"pr"})))
    return Compare(path, "pr") if op == "pr" else Compare(path, op, draw(values))


def _logic(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.builds(And, children, children),
        st.builds(Or, children, children),
        st.builds(Not, children),
    )


def _sql_cases(years: tuple[int, int]) -> st.SearchStrategy[tuple[Target, Filter]]:
    """A read model, and a filter of a few comparisons, mostly on what it has."""
    sql_values = st.one_of(st.text(max_size=8), _datetime_texts(years), values)
    elements = st.sampled_from([parse_attr_path(p) for p in ELEMENT_PATHS])
    element_filters = st.recursive(_sql_leaves(elements, sql_values), _logic, max_leaves=3)
    cases = []
    for target, paths, value_paths in [
        (USERS, USER_PATHS, ["emails", "phoneNumbers", "addresses", "groups", "name"]),
        (GROUPS, GROUP_PATHS, ["members", "displayName"]),
    ]:
        leaves: st.SearchStrategy[Filter] = _sql_leaves(
            st.sampled_from([parse_attr_path(p) for p in paths]), sql_values
        )
        leaves |= st.builds(
            ValuePath, st.builds(AttrPath, st.sampled_from(value_paths)), element_filters
        )
        cases.append(st.tuples(st.just(target), st.recursive(leaves, _logic, max_leaves=4)))
    return st.one_of(cases)


def _check_compiles(node: Filter, target: Target, dialect: str) -> None:
    try:
        sql, params = compile_filter(node, target, dialect)
    except FilterError:
        return
    assert isinstance(sql, str)
    assert isinstance(params, list)
    # Every value is a bound parameter, never text in the statement.
    assert sql.count("?") == len(params)
    assert sql.isascii()
    assert ";" not in sql


DIALECTS = st.sampled_from(["sqlite", "postgresql"])
OUT_OF_RANGE = "0001-01-01T00:00:00+01:00"


@FUZZ
@given(_sql_cases((1, 9999)), DIALECTS)
@example((USERS, Compare(AttrPath("meta", "created"), "gt", OUT_OF_RANGE)), "sqlite")
def test_compile_filter_gives_sql_or_filter_error(
    case: tuple[Target, Filter], dialect: str
) -> None:
    target, node = case
    _check_compiles(node, target, dialect)


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01 00:30+00:31"]
)
@pytest.mark.parametrize("target", [USERS, GROUPS], ids=["users", "groups"])
def test_out_of_range_datetime_is_an_invalid_filter(moment: str, target: Target) -> None:
    with pytest.raises(FilterError, match="out of the range of dateTime values"):
        compile_filter(parse_filter(f'meta.lastModified lt "{moment}"'), target, "postgresql")


@pytest.mark.parametrize("literal", ['"\\u0000"', '"a\\u0000b"', '"\x00"'])
def test_a_string_spelling_nul_is_an_invalid_filter(literal: str) -> None:
    """No stored value holds NUL, and PostgreSQL text cannot: such a filter is refused."""
    with pytest.raises(FilterError, match="a NUL character in string"):
        parse_filter(f"userName eq {literal}")
