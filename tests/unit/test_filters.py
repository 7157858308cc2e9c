"""SCIM filter parsing (RFC 7644 section 3.4.2.2): the exact tree each filter parses to.

Most filters are the RFC's own examples. Trees are dataclasses, so they compare by value.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from scimledger.projections.filters import (
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
    parse_attr_path,
    parse_filter,
)
from tests.scim import CORE_USER as CORE
from tests.scim import ENTERPRISE_USER as ENTERPRISE

USER_NAME = AttrPath("userName")
TITLE = AttrPath("title")
USER_TYPE = AttrPath("userType")
EMAILS = AttrPath("emails")
EMAILS_VALUE = AttrPath("emails", "value")
LAST_MODIFIED = AttrPath("meta", "lastModified")


# Attribute paths


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userName", AttrPath("userName")),
        ("name.familyName", AttrPath("name", "familyName")),
        ("meta.lastModified", AttrPath("meta", "lastModified")),
        ("$ref", AttrPath("$ref")),
        ("x-custom_attr2", AttrPath("x-custom_attr2")),
        (f"{CORE}:userName", AttrPath("userName", urn=CORE)),
        (f"{ENTERPRISE}:department", AttrPath("department", urn=ENTERPRISE)),
        (f"{ENTERPRISE}:manager.value", AttrPath("manager", "value", urn=ENTERPRISE)),
    ],
)
def test_attribute_path_splits_into_urn_attribute_and_sub_attribute(
    text: str, expected: AttrPath
) -> None:
    assert parse_attr_path(text) == expected


def test_attribute_path_keeps_names_as_written() -> None:
    assert parse_attr_path("NAME.FamilyNAME") == AttrPath("NAME", "FamilyNAME")


@pytest.mark.parametrize(
    "path",
    [
        AttrPath("userName"),
        AttrPath("name", "familyName"),
        AttrPath("manager", "value", urn=ENTERPRISE),
    ],
)
def test_attribute_path_prints_as_the_client_wrote_it(path: AttrPath) -> None:
    assert parse_attr_path(str(path)) == path


@pytest.mark.parametrize(
    "text",
    ["", "9lives", ".name", "name..familyName", "a.b.c", "urn:", "user name", "emails[type"],
)
def test_malformed_attribute_path_is_rejected(text: str) -> None:
    with pytest.raises(FilterError, match="invalid attribute path"):
        parse_attr_path(text)


def test_attribute_path_with_empty_sub_attribute_is_rejected() -> None:
    with pytest.raises(FilterError, match="invalid attribute path"):
        parse_attr_path("name.")


# Operators


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_each_comparison_operator_parses(op: str) -> None:
    assert parse_filter(f'userName {op} "J"') == Compare(USER_NAME, op, "J")


def test_present_operator_takes_no_value() -> None:
    assert parse_filter("title pr") == Compare(TITLE, "pr")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName EQ "J"', Compare(USER_NAME, "eq", "J")),
        ('userName Sw "J"', Compare(USER_NAME, "sw", "J")),
        ("title PR", Compare(TITLE, "pr")),
    ],
)
def test_operators_are_case_insensitive_and_normalized_to_lower_case(
    text: str, expected: Filter
) -> None:
    assert parse_filter(text) == expected


def test_attribute_names_are_kept_as_written() -> None:
    assert parse_filter('USERNAME eq "J"') == Compare(AttrPath("USERNAME"), "eq", "J")


# Logical operators, precedence and grouping


def test_and_binds_tighter_than_or() -> None:
    assert parse_filter('title pr or userType eq "Intern" and userName sw "J"') == Or(
        Compare(TITLE, "pr"),
        And(Compare(USER_TYPE, "eq", "Intern"), Compare(USER_NAME, "sw", "J")),
    )


def test_and_binds_tighter_than_or_when_or_comes_second() -> None:
    assert parse_filter('title pr and userType eq "Intern" or userName sw "J"') == Or(
        And(Compare(TITLE, "pr"), Compare(USER_TYPE, "eq", "Intern")),
        Compare(USER_NAME, "sw", "J"),
    )


def test_not_binds_tighter_than_and() -> None:
    assert parse_filter('not (title pr) and userName sw "J"') == And(
        Not(Compare(TITLE, "pr")), Compare(USER_NAME, "sw", "J")
    )


def test_not_applies_to_the_whole_parenthesized_expression() -> None:
    assert parse_filter('not (title pr or userName sw "J")') == Not(
        Or(Compare(TITLE, "pr"), Compare(USER_NAME, "sw", "J"))
    )


def test_parentheses_override_precedence() -> None:
    assert parse_filter('(title pr or userType eq "Intern") and userName sw "J"') == And(
        Or(Compare(TITLE, "pr"), Compare(USER_TYPE, "eq", "Intern")),
        Compare(USER_NAME, "sw", "J"),
    )


def test_and_chains_associate_to_the_left() -> None:
    assert parse_filter("a pr and b pr and c pr") == And(
        And(Compare(AttrPath("a"), "pr"), Compare(AttrPath("b"), "pr")),
        Compare(AttrPath("c"), "pr"),
    )


def test_or_chains_associate_to_the_left() -> None:
    assert parse_filter("a pr or b pr or c pr") == Or(
        Or(Compare(AttrPath("a"), "pr"), Compare(AttrPath("b"), "pr")),
        Compare(AttrPath("c"), "pr"),
    )


def test_redundant_parentheses_leave_no_trace_in_the_tree() -> None:
    assert parse_filter('((userName eq "J"))') == Compare(USER_NAME, "eq", "J")


def test_logical_keywords_are_case_insensitive() -> None:
    assert parse_filter('NOT (title pr) AND userName sw "J" Or userType pr') == Or(
        And(Not(Compare(TITLE, "pr")), Compare(USER_NAME, "sw", "J")),
        Compare(USER_TYPE, "pr"),
    )


def test_keywords_inside_a_string_are_part_of_the_value() -> None:
    assert parse_filter('title eq "a (b) and not c or d"') == Compare(
        TITLE, "eq", "a (b) and not c or d"
    )


# Sub-attributes, value paths, extension URNs


def test_sub_attribute_compares() -> None:
    assert parse_filter('name.familyName co "O\'Malley"') == Compare(
        AttrPath("name", "familyName"), "co", "O'Malley"
    )


def test_value_path_holds_a_filter_over_the_attribute_values() -> None:
    assert parse_filter('emails[type eq "work" and value co "@x"]') == ValuePath(
        EMAILS,
        And(Compare(AttrPath("type"), "eq", "work"), Compare(AttrPath("value"), "co", "@x")),
    )


def test_value_path_combines_with_other_expressions() -> None:
    assert parse_filter('emails[type eq "work"] and userName pr') == And(
        ValuePath(EMAILS, Compare(AttrPath("type"), "eq", "work")),
        Compare(USER_NAME, "pr"),
    )


def test_extension_attribute_keeps_its_urn() -> None:
    assert parse_filter(f'{ENTERPRISE}:department eq "R&D"') == Compare(
        AttrPath("department", urn=ENTERPRISE), "eq", "R&D"
    )


def test_extension_sub_attribute_keeps_its_urn() -> None:
    assert parse_filter(f'{ENTERPRISE}:manager.value eq "26118915-6090-4610"') == Compare(
        AttrPath("manager", "value", urn=ENTERPRISE), "eq", "26118915-6090-4610"
    )


# Values


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('""', ""),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"a\/b"', "a/b"),
        (r'"tab\there\nnew\rline\bb\ff"', "tab\there\nnew\rline\bb\ff"),
        (r'"caf\u00e9"', "café"),
        (r'"CAF\u00C9"', "CAFÉ"),
        ('"Ärger"', "Ärger"),
        ('"100%_off"', "100%_off"),
    ],
)
def test_string_literal_is_unescaped_like_json(literal: str, value: str) -> None:
    assert parse_filter(f"title eq {literal}") == Compare(TITLE, "eq", value)


def test_escaped_surrogate_pair_is_one_character() -> None:
    assert parse_filter(r'title eq "\ud83d\ude00"') == Compare(TITLE, "eq", "\U0001f600")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("2.5", 2.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("6.02E+23", 6.02e23),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_number_and_json_literal_values(literal: str, value: Any) -> None:
    parsed = parse_filter(f"x eq {literal}")
    assert parsed == Compare(AttrPath("x"), "eq", value)
    assert isinstance(parsed, Compare)
    assert type(parsed.value) is type(value)


def test_whitespace_around_tokens_is_ignored() -> None:
    assert parse_filter(' \t( userName  eq\t"J" )\n') == Compare(USER_NAME, "eq", "J")


# The RFC's own examples (RFC 7644 section 3.4.2.2, Figure 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen"', Compare(USER_NAME, "eq", "bjensen")),
        (
            'name.familyName co "O\'Malley"',
            Compare(AttrPath("name", "familyName"), "co", "O'Malley"),
        ),
        ('userName sw "J"', Compare(USER_NAME, "sw", "J")),
        (f'{CORE}:userName sw "J"', Compare(AttrPath("userName", urn=CORE), "sw", "J")),
        ("title pr", Compare(TITLE, "pr")),
        (
            'meta.lastModified gt "2011-05-13T04:42:34Z"',
            Compare(LAST_MODIFIED, "gt", "2011-05-13T04:42:34Z"),
        ),
        (
            'meta.lastModified ge "2011-05-13T04:42:34Z"',
            Compare(LAST_MODIFIED, "ge", "2011-05-13T04:42:34Z"),
        ),
        (
            'meta.lastModified lt "2011-05-13T04:42:34Z"',
            Compare(LAST_MODIFIED, "lt", "2011-05-13T04:42:34Z"),
        ),
        (
            'meta.lastModified le "2011-05-13T04:42:34Z"',
            Compare(LAST_MODIFIED, "le", "2011-05-13T04:42:34Z"),
        ),
        (
            'title pr and userType eq "Employee"',
            And(Compare(TITLE, "pr"), Compare(USER_TYPE, "eq", "Employee")),
        ),
        (
            'title pr or userType eq "Intern"',
            Or(Compare(TITLE, "pr"), Compare(USER_TYPE, "eq", "Intern")),
        ),
        (
            f'schemas eq "{ENTERPRISE}"',
            Compare(AttrPath("schemas"), "eq", ENTERPRISE),
        ),
        (
            'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
            And(
                Compare(USER_TYPE, "eq", "Employee"),
                Or(
                    Compare(EMAILS, "co", "example.com"),
                    Compare(EMAILS_VALUE, "co", "example.org"),
                ),
            ),
        ),
        (
            'userType ne "Employee" and not (emails co "example.com" or '
            'emails.value co "example.org")',
            And(
                Compare(USER_TYPE, "ne", "Employee"),
                Not(
                    Or(
                        Compare(EMAILS, "co", "example.com"),
                        Compare(EMAILS_VALUE, "co", "example.org"),
                    )
                ),
            ),
        ),
        (
            'userType eq "Employee" and (emails.type eq "work")',
            And(
                Compare(USER_TYPE, "eq", "Employee"),
                Compare(AttrPath("emails", "type"), "eq", "work"),
            ),
        ),
        (
            'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
            And(
                Compare(USER_TYPE, "eq", "Employee"),
                ValuePath(
                    EMAILS,
                    And(
                        Compare(AttrPath("type"), "eq", "work"),
                        Compare(AttrPath("value"), "co", "@example.com"),
                    ),
                ),
            ),
        ),
        (
            'emails[type eq "work" and value co "@example.com"] or '
            'ims[type eq "xmpp" and value co "@foo.com"]',
            Or(
                ValuePath(
                    EMAILS,
                    And(
                        Compare(AttrPath("type"), "eq", "work"),
                        Compare(AttrPath("value"), "co", "@example.com"),
                    ),
                ),
                ValuePath(
                    AttrPath("ims"),
                    And(
                        Compare(AttrPath("type"), "eq", "xmpp"),
                        Compare(AttrPath("value"), "co", "@foo.com"),
                    ),
                ),
            ),
        ),
    ],
)
def test_rfc_example_filter_parses(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected


# Errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty filter"),
        ("   \t", "empty filter"),
        ('userName like "J"', "unknown operator 'like'"),
        ('userName == "J"', "unexpected character"),
        ("userName", "filter ends where an operator was expected"),
        ("userName eq", "filter ends where a value was expected"),
        ('userName eq "J" and', "filter ends where an attribute name was expected"),
        ('(userName eq "J"', "filter ends where ')' was expected"),
        ('((userName eq "J")', "filter ends where ')' was expected"),
        ('userName eq "J")', "unexpected ')'"),
        ('emails[type eq "work"', "filter ends where ']' was expected"),
        ('emails[type eq "work"]]', "unexpected ']'"),
        ("()", "expected an attribute name"),
        ('userName eq "J" title pr', "unexpected 'title'"),
        ('title pr "J"', "unexpected '\"J\"'"),
        ("userName eq bjensen", "expected a quoted string"),
        ("active eq True", "expected a quoted string"),
        ('userName eq "bjensen', "unexpected character"),
        (r'userName eq "a\qb"', "invalid escape"),
        (r'userName eq "\u00e"', "invalid escape"),
        ('not userName eq "J"', "expected '('"),
        ('name.familyName[value eq "J"]', "a value filter applies to an attribute"),
        ('a.b.c eq "J"', "invalid attribute path"),
    ],
)
def test_invalid_filter_is_rejected(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=re.escape(message)):
        parse_filter(text)


def _compare_with_length(length: int) -> str:
    text = 'userName eq ""'
    return text[:-1] + "a" * (length - len(text)) + '"'


def test_filter_of_maximum_length_is_accepted() -> None:
    text = _compare_with_length(MAX_FILTER_LENGTH)
    assert len(text) == MAX_FILTER_LENGTH
    assert parse_filter(text) == Compare(USER_NAME, "eq", "a" * (MAX_FILTER_LENGTH - 14))


def test_filter_longer_than_maximum_length_is_rejected() -> None:
    with pytest.raises(FilterError, match=f"longer than {MAX_FILTER_LENGTH} characters"):
        parse_filter(_compare_with_length(MAX_FILTER_LENGTH + 1))


def _nested(levels: int) -> str:
    """A comparison inside `levels` levels of expressions; the comparison is the first."""
    parentheses = levels - 1
    return "(" * parentheses + 'userName eq "J"' + ")" * parentheses


def test_filter_nested_maximum_depth_is_accepted() -> None:
    assert parse_filter(_nested(MAX_DEPTH)) == Compare(USER_NAME, "eq", "J")


def test_filter_nested_deeper_than_maximum_depth_is_rejected() -> None:
    with pytest.raises(FilterError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_filter(_nested(MAX_DEPTH + 1))


def test_nested_not_counts_towards_depth() -> None:
    text = "not (" * MAX_DEPTH + "title pr" + ")" * MAX_DEPTH
    with pytest.raises(FilterError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_filter(text)


def test_nested_value_paths_count_towards_depth() -> None:
    text = "a[" * MAX_DEPTH + "title pr" + "]" * MAX_DEPTH
    with pytest.raises(FilterError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_filter(text)


def test_deep_nesting_within_the_length_limit_fails_cleanly_not_by_recursion() -> None:
    depth = (MAX_FILTER_LENGTH - len("title pr")) // 2
    text = "(" * depth + "title pr" + ")" * depth
    with pytest.raises(FilterError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_filter(text)
