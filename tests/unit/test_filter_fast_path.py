"""The simple-filter fast path of parse_filter gives exactly what the general parser gives."""

from __future__ import annotations

import pytest

from scimledger.projections import filters
from scimledger.projections.filters import Compare, FilterError, _Parser, parse_filter

SAME = [
    'userName eq "bjensen@example.com"',
    '  userName   EQ   "bjensen@example.com"  ',
    'externalId eq "00ujl29u0le5T6Aj10h7"',
    'emails.value co "@example.com"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName sw "b"',
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"',
    'displayName eq "with \\"quotes\\" and \\\\ backslash"',
    'displayName eq "unicode \\u00e9t\\u00e9"',
    'displayName eq ""',
    'meta.lastModified gt "2011-05-13T04:42:34Z"',
    'title ne "Tour Guide"',
    'name.familyName ew "sen"',
    # Not simple: the general parser decides.
    'userName eq "a" and active eq true',
    "active eq true",
    "userName pr",
    'emails[type eq "work"]',
    'userName eq"glued"',
    'and eq "x"',
    'or eq "x"',
]

REFUSED = [
    'not eq "x"',
    'userName zz "x"',
    'userName eq "bad \\q escape"',
    'userName eq "unterminated',
    'userName eq "a" "b"',
]


@pytest.mark.parametrize("text", SAME)
def test_the_fast_path_parses_as_the_parser_does(text: str) -> None:
    assert parse_filter(text) == _Parser(text).parse()


@pytest.mark.parametrize("text", REFUSED)
def test_what_the_parser_refuses_the_fast_path_refuses_alike(text: str) -> None:
    with pytest.raises(FilterError) as general:
        _Parser(text).parse()
    with pytest.raises(FilterError) as fast:
        parse_filter(text)
    assert str(fast.value) == str(general.value)


def test_a_lookup_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def unused(text: str) -> None:
        raise AssertionError("the general parser ran")

    monkeypatch.setattr(filters, "_Parser", unused)
    assert parse_filter('userName eq "bjensen@example.com"') == Compare(
        filters.AttrPath("userName"), "eq", "bjensen@example.com"
    )
