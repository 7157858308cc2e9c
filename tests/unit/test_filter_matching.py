"""matches: a SCIM filter (RFC 7644 section 3.4.2.2) evaluated against one complex value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scimledger.projections.filters import FilterError, matches, parse_filter

WORK_EMAIL: dict[str, Any] = {"value": "bjensen@example.com", "type": "work", "primary": True}


def check(
    text: str,
    item: dict[str, Any],
    case_exact: Callable[[str], bool] = lambda name: False,
) -> bool:
    return matches(parse_filter(text), item, case_exact)


def test_eq_matches_an_equal_string() -> None:
    assert check('type eq "work"', WORK_EMAIL) is True


def test_eq_does_not_match_a_different_string() -> None:
    assert check('type eq "home"', WORK_EMAIL) is False


def test_strings_compare_case_insensitively_by_default() -> None:
    assert check('value eq "BJensen@Example.COM"', WORK_EMAIL) is True


def test_strings_compare_by_casefold() -> None:
    assert check('value eq "STRASSE"', {"value": "straße"}) is True


def test_strings_of_a_case_exact_attribute_compare_exactly() -> None:
    assert check('value eq "BJensen@Example.COM"', WORK_EMAIL, lambda name: True) is False


def test_case_exact_is_asked_about_the_attribute_named_in_the_filter() -> None:
    asked: list[str] = []

    def case_exact(name: str) -> bool:
        asked.append(name)
        return False

    check('type eq "work" and value sw "bjensen"', WORK_EMAIL, case_exact)

    assert asked == ["type", "value"]


def test_attribute_names_match_case_insensitively() -> None:
    assert check('TYPE eq "work"', {"Type": "work"}) is True


def test_ne_matches_a_different_string() -> None:
    assert check('type ne "home"', WORK_EMAIL) is True


def test_ne_does_not_match_an_equal_string() -> None:
    assert check('type ne "WORK"', WORK_EMAIL) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('value co "JENSEN@"', True),
        ('value co "jensen@example.org"', False),
        ('value sw "BJ"', True),
        ('value sw "jensen"', False),
        ('value ew "EXAMPLE.com"', True),
        ('value ew "example"', False),
    ],
)
def test_co_sw_ew_compare_substrings_case_insensitively(text: str, expected: bool) -> None:
    assert check(text, WORK_EMAIL) is expected


@pytest.mark.parametrize("text", ['value co "JENSEN"', 'value sw "BJ"', 'value ew ".COM"'])
def test_co_sw_ew_of_a_case_exact_attribute_compare_exactly(text: str) -> None:
    assert check(text, WORK_EMAIL, lambda name: True) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('locality gt "amsterdam"', True),
        ('locality gt "HOLLYWOOD"', False),
        ('locality ge "HOLLYWOOD"', True),
        ('locality lt "Zagreb"', True),
        ('locality lt "hollywood"', False),
        ('locality le "hollywood"', True),
    ],
)
def test_ordering_compares_strings_lexicographically(text: str, expected: bool) -> None:
    assert check(text, {"locality": "Hollywood"}) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count eq 3", True),
        ("count eq 3.0", True),
        ("count ne 3", False),
        ("count gt 2", True),
        ("count ge 3", True),
        ("count lt 3", False),
        ("count le 2.5", False),
    ],
)
def test_numbers_compare_numerically(text: str, expected: bool) -> None:
    assert check(text, {"count": 3}) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("primary eq true", True),
        ("primary eq false", False),
        ("primary ne false", True),
        ("primary ne true", False),
    ],
)
def test_booleans_compare_with_eq_and_ne(text: str, expected: bool) -> None:
    assert check(text, WORK_EMAIL) is expected


@pytest.mark.parametrize("op", ["gt", "ge", "lt", "le", "co", "sw", "ew"])
def test_booleans_have_no_order_and_no_substrings(op: str) -> None:
    assert check(f"primary {op} false", WORK_EMAIL) is False


@pytest.mark.parametrize(
    ("text", "item"),
    [("primary eq 1", {"primary": True}), ("count eq true", {"count": 1})],
)
def test_a_boolean_never_equals_a_number(text: str, item: dict[str, Any]) -> None:
    assert check(text, item) is False


@pytest.mark.parametrize("op", ["eq", "co", "sw", "ew", "gt", "ge", "lt", "le"])
@pytest.mark.parametrize(
    ("attribute", "literal"),
    [("value", "5"), ("value", "true"), ("count", '"5"'), ("primary", '"true"')],
)
def test_comparing_values_of_different_types_is_false(
    op: str, attribute: str, literal: str
) -> None:
    item = {"value": "5", "count": 5, "primary": True}

    assert check(f"{attribute} {op} {literal}", item) is False


def test_ne_between_values_of_different_types_is_true() -> None:
    assert check("value ne 5", {"value": "5"}) is True


@pytest.mark.parametrize("op", ["eq", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_a_missing_attribute_matches_no_comparison(op: str) -> None:
    assert check(f'display {op} "x"', WORK_EMAIL) is False


def test_a_missing_attribute_is_ne_anything() -> None:
    assert check('display ne "x"', WORK_EMAIL) is True


def test_a_null_attribute_counts_as_missing() -> None:
    assert check('display eq "x"', {"display": None}) is False


@pytest.mark.parametrize("value", ["x", False, 0, ["x"], {"a": "b"}])
def test_pr_matches_a_present_value(value: Any) -> None:
    assert check("display pr", {"display": value}) is True


@pytest.mark.parametrize("item", [{}, {"display": None}, {"display": ""}, {"display": []}])
def test_pr_does_not_match_a_missing_null_or_empty_value(item: dict[str, Any]) -> None:
    assert check("display pr", item) is False


def test_an_array_value_matches_if_any_element_does() -> None:
    assert check('tags eq "b"', {"tags": ["a", "b"]}) is True


def test_ne_on_an_array_value_matches_only_if_no_element_is_equal() -> None:
    assert check('tags ne "b"', {"tags": ["a", "b"]}) is False


def test_a_sub_attribute_path_looks_inside_a_complex_value() -> None:
    assert check('name.familyName eq "jensen"', {"name": {"familyName": "Jensen"}}) is True


def test_a_schema_urn_path_looks_under_the_urn_key() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

    assert check(f'{urn}:department eq "tour operations"', {urn: {"department": "Tour Operations"}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('type eq "work" and value ew "example.com"', True),
        ('type eq "work" and value ew "example.org"', False),
        ('type eq "home" or primary eq true', True),
        ('type eq "home" or primary eq false', False),
        ('not (type eq "home")', True),
        ('not (type eq "work")', False),
        ('type eq "home" or (type eq "work" and not (value co "example.org"))', True),
    ],
)
def test_logical_operators_combine_comparisons(text: str, expected: bool) -> None:
    assert check(text, WORK_EMAIL) is expected


def test_a_missing_attribute_inside_not_makes_the_not_true() -> None:
    assert check('not (display eq "x")', WORK_EMAIL) is True


def test_a_nested_value_filter_is_not_supported() -> None:
    with pytest.raises(FilterError, match="nested value filters are not supported"):
        check('emails[type eq "work"]', {"emails": [WORK_EMAIL]})
