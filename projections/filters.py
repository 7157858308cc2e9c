"""SCIM filter expressions (RFC 7644 section 3.4.2.2): parsed into a small tree.

Parsing is pure and knows nothing of storage; each read model compiles the tree to SQL for
the attributes it indexes. Attribute names and operators are case-insensitive. `matches`
evaluates a tree in memory against one complex value, for PATCH value-filter paths.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 32

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})


class FilterError(ValueError):
    """The filter is not valid SCIM filter syntax, or cannot be evaluated here."""


@dataclass(frozen=True)
class AttrPath:
    """`[urn:]attribute[.subAttribute]` with names as written by the client."""

    attribute: str
    sub_attribute: str | None = None
    urn: str | None = None

    def __str__(self) -> str:
        text = self.attribute + (f".{self.sub_attribute}" if self.sub_attribute else "")
        return f"{self.urn}:{text}" if self.urn else text


@dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: str  # one of COMPARE_OPS, or "pr"
    value: Any = None


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


@dataclass(frozen=True)
class ValuePath:
    """`emails[type eq "work"]`: a filter over the values of a multi-valued attribute."""

    path: AttrPath
    filter: Filter


Filter = Compare | And | Or | Not | ValuePath

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<punct>[()\[\]])
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w:.]))
    | (?P<word>[A-Za-z_$][\w$:.\-]*)
    )""",
    re.VERBOSE,
)

# The JSON escapes allowed in a filter string literal.
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise FilterError(
                f"unexpected character at position {pos + 1}: {text[pos : pos + 12]!r}"
            )
        tokens.append(
            _Tok(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup))
        )
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    out: list[str] = []
    i, body = 0, literal[1:-1]
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1] if i + 1 < len(body) else ""
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            raise FilterError(f"invalid escape in string {literal}")
    text = "".join(out)
    if "\x00" in text:  # no stored value holds one (and PostgreSQL text cannot)
        raise FilterError(f"a NUL character in string {literal}")
    try:
        # \u escapes may spell a UTF-16 surrogate pair, as in JSON: join it; a lone
        # surrogate is not a character.
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError as exc:
        raise FilterError(f"invalid unicode escape in string {literal}") from exc


def parse_attr_path(text: str) -> AttrPath:
    """`userName`, `name.familyName`, `urn:...:User:department`, `urn:...:User:manager.value`."""
    urn = None
    rest = text
    if text.lower().startswith("urn:"):
        urn, sep, rest = text.rpartition(":")
        if not sep or not urn:
            raise FilterError(f"invalid attribute path {text!r}")
    attribute, dot, sub = rest.partition(".")
    if dot and not sub:
        raise FilterError(f"invalid attribute path {text!r}")
    if not re.fullmatch(r"[A-Za-z$][\w$-]*", attribute) or (
        sub and not re.fullmatch(r"[A-Za-z$][\w$-]*", sub)
    ):
        raise FilterError(f"invalid attribute path {text!r}")
    return AttrPath(attribute=attribute, sub_attribute=sub or None, urn=urn)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise FilterError(f"filter ends where {what} was expected")
        self.i += 1
        return tok

    def accept(self, kind: str, text: str) -> bool:
        """Takes the next token if it is `text` (words in any case)."""
        tok = self.peek()
        if tok is not None and tok.kind == kind and tok.text.lower() == text:
            self.i += 1
            return True
        return False

    def expect_punct(self, punct: str) -> None:
        tok = self.next(f"'{punct}'")
        if tok.kind != "punct" or tok.text != punct:
            raise FilterError(f"expected '{punct}' at position {tok.pos + 1}, found {tok.text!r}")

    def parse(self) -> Filter:
        result = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise FilterError(f"unexpected {tok.text!r} at position {tok.pos + 1}")
        return result

    def or_expr(self) -> Filter:
        left = self.and_expr()
        while self.accept("word", "or"):
            left = Or(left, self.and_expr())
        return left

    def and_expr(self) -> Filter:
        left = self.unary()
        while self.accept("word", "and"):
            left = And(left, self.unary())
        return left

    def unary(self) -> Filter:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"filter nested deeper than {MAX_DEPTH} levels")
        try:
            if self.accept("word", "not"):
                self.expect_punct("(")
                inner = self.or_expr()
                self.expect_punct(")")
                return Not(inner)
            if self.accept("punct", "("):
                inner = self.or_expr()
                self.expect_punct(")")
                return inner
            return self.attr_expr()
        finally:
            self.depth -= 1

    def attr_expr(self) -> Filter:
        tok = self.next("an attribute name")
        if tok.kind != "word":
            raise FilterError(
                f"expected an attribute name at position {tok.pos + 1}, found {tok.text!r}"
            )
        path = parse_attr_path(tok.text)
        if self.accept("punct", "["):
            if path.sub_attribute:
                raise FilterError(f"a value filter applies to an attribute, not {path}")
            inner = self.or_expr()
            self.expect_punct("]")
            return ValuePath(path, inner)
        op_tok = self.next("an operator")
        op = op_tok.text.lower()
        if op_tok.kind != "word" or (op != "pr" and op not in COMPARE_OPS):
            raise FilterError(f"unknown operator {op_tok.text!r} at position {op_tok.pos + 1}")
        if op == "pr":
            return Compare(path, "pr")
        return Compare(path, op, self.value())

    def value(self) -> Any:
        tok = self.next("a value")
        if tok.kind == "string":
            return _unquote(tok.text)
        if tok.kind == "number":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "word" and tok.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.text]
        raise FilterError(
            f"expected a quoted string, number, true, false or null at position {tok.pos + 1}, "
            f"found {tok.text!r}"
        )


# `attribute op "string"`, the whole filter: what Okta and Entra send for every lookup
# (userName eq "...", externalId eq "..."), parsed without the general parser (a third of a
# lookup's Python time went to it). Gives exactly what the parser gives (tests compare).
_SIMPLE = re.compile(r'\s*([A-Za-z_$][\w$:.\-]*)\s+([A-Za-z]{2})\s+("(?:[^"\\]|\\.)*")\s*')
_KEYWORDS = frozenset({"and", "or", "not"})


def parse_filter(text: str) -> Filter:
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        raise FilterError("empty filter")
    simple = _SIMPLE.fullmatch(text)
    if simple is not None:
        name, op, quoted = simple.groups()
        op = op.lower()
        if op in COMPARE_OPS and name.lower() not in _KEYWORDS:
            return Compare(parse_attr_path(name), op, _unquote(quoted))
    return _Parser(text).parse()


def matches(
    node: Filter,
    item: Mapping[str, Any],
    case_exact: Callable[[str], bool] = lambda name: False,
) -> bool:
    """Whether one complex value, such as an email, satisfies the filter.

    `case_exact` is asked about each attribute path as written in the filter; strings of the
    others compare case-insensitively, as RFC 7643 section 2.3.1 makes the default. A value of
    the wrong type for the comparison never matches, and never raises: clients filter on
    whatever they like, and a PATCH must answer with a SCIM error, not a traceback.
    """
    if isinstance(node, And):
        return matches(node.left, item, case_exact) and matches(node.right, item, case_exact)
    if isinstance(node, Or):
        return matches(node.left, item, case_exact) or matches(node.right, item, case_exact)
    if isinstance(node, Not):
        return not matches(node.inner, item, case_exact)
    if isinstance(node, ValuePath):
        raise FilterError("nested value filters are not supported")
    actual = _lookup(item, node.path)
    if node.op == "pr":
        # RFC 7643 section 2.5: null, an empty string and an empty array all mean unassigned.
        return actual not in (None, "", [], {})
    exact = case_exact(str(node.path))
    # A multi-valued attribute matches if any of its values does (RFC 7644 section 3.4.2.2).
    values = actual if isinstance(actual, list) else [actual]
    if node.op == "ne":
        # The negation of eq, so a missing attribute is "not equal" to anything.
        return not any(_compare("eq", value, node.value, exact) for value in values)
    return any(_compare(node.op, value, node.value, exact) for value in values)


_ORDERED: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_TEXTUAL: dict[str, Callable[[Any, Any], bool]] = {
    **_ORDERED,
    "co": operator.contains,
    "sw": str.startswith,
    "ew": str.endswith,
}


def _lookup(item: Mapping[str, Any], path: AttrPath) -> Any:
    """The value at `path`, None if missing; names match case-insensitively (RFC 7643 2.1)."""
    names = [path.urn] if path.urn else []  # an extension's attributes sit under its URN
    names.append(path.attribute)
    if path.sub_attribute:
        names.append(path.sub_attribute)
    value: Any = item
    for name in names:
        if not isinstance(value, Mapping):
            return None
        value = next((v for k, v in value.items() if k.lower() == name.lower()), None)
    return value


def _compare(op: str, actual: Any, expected: Any, exact: bool) -> bool:
    if actual is None:
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        # Booleans have no order (RFC 7644 3.4.2.2), and True must not equal the number 1.
        return op == "eq" and actual is expected
    if isinstance(actual, str) and isinstance(expected, str):
        if not exact:
            actual, expected = actual.casefold(), expected.casefold()
        return _TEXTUAL[op](actual, expected)
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        compare = _ORDERED.get(op)
        return compare is not None and compare(actual, expected)
    return False
