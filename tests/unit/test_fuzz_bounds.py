"""Property-based fuzzing of the bounds (issue 16): whatever a client or an operator types as
a date, a duration, a setting or a long filter, the answer is a value within its documented
range or the documented error (a 400, exit 2), never another exception (a 500, a traceback).

Each property runs 200 examples by default (`SCIMLEDGER_FUZZ_EXAMPLES` for more)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from scimledger.ledger.errors import InvalidSettings
from scimledger.ledger.moments import EARLIEST, LATEST, MAX_GRACE, parse_moment
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import TokenRequestError, parse_expiry, parse_grace
from scimledger.projections.filters import parse_filter
from scimledger.projections.scim import USERS
from scimledger.projections.sql_filters import compile_filter
from tests.fuzz import FUZZ
from tests.unit.events import OPERATOR

NOW = datetime(2026, 12, 5, tzinfo=UTC)

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
iso_moments = st.builds(
    lambda moment, offset, naive: (
        moment.isoformat() if naive else moment.replace(tzinfo=offset).isoformat()
    ),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    offsets,
    st.booleans(),
)
typed = st.one_of(st.text(max_size=40), iso_moments, st.dates().map(str))


def in_range(moment: datetime) -> bool:
    return moment.tzinfo is not None and EARLIEST <= moment < LATEST


@FUZZ
@given(typed)
@example("9999-12-31T23:59:59-14:00")
@example("0001-01-01T00:00:00+01:00")
def test_a_typed_moment_is_in_range_or_a_value_error(text: str) -> None:
    try:
        moment = parse_moment(text)
    except ValueError:
        return
    assert in_range(moment)
    assert moment.utcoffset() == timedelta(0)


@FUZZ
@given(st.one_of(typed, st.from_regex(r"\d{1,6}d", fullmatch=True), st.just("never")))
def test_an_expiry_is_in_range_or_a_token_request_error(text: str) -> None:
    try:
        expiry = parse_expiry(text, NOW)
    except TokenRequestError:
        return
    assert expiry is None or (in_range(expiry) and expiry > NOW)


@FUZZ
@given(st.one_of(st.text(max_size=12), st.from_regex(r"\s*\d{1,8}\s*[mhd]?\s*", fullmatch=True)))
def test_a_grace_is_within_365_days_or_a_token_request_error(text: str) -> None:
    try:
        grace = parse_grace(text)
    except TokenRequestError:
        return
    assert timedelta(0) <= grace <= MAX_GRACE


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["warn", "revoke-after", "https://scim.test/v2", "javascript:alert(1)"]),
    st.lists(st.integers(), max_size=2),
)
settings_changes = st.dictionaries(
    st.sampled_from(["departed_policy", "departed_grace_seconds", "scim_base_url", "colour"]),
    values,
    max_size=3,
)


@FUZZ
@given(settings_changes)
def test_settings_are_within_bounds_or_invalid_settings(changes: dict[str, Any]) -> None:
    organization = Organization(slug="acme", context=OPERATOR)
    try:
        organization.change_settings(changes, OPERATOR)
    except InvalidSettings:
        assert organization.version == 1  # nothing recorded
        return
    settings = organization.settings
    assert settings["departed_policy"] in ("warn", "revoke-after")
    assert 0 <= settings["departed_grace_seconds"] <= MAX_GRACE.total_seconds()
    url = settings["scim_base_url"]
    assert url is None or url.startswith(("http://", "https://"))


def chain(joiners: list[bool]) -> str:
    """`userName co "t0" or userName co "t1" and ...`: terms joined with no parentheses."""
    terms = [f'userName co "t{n}"' for n in range(len(joiners) + 1)]
    return terms[0] + "".join(
        f" {'or' if by_or else 'and'} {term}"
        for by_or, term in zip(joiners, terms[1:], strict=True)
    )


def nesting(sql: str) -> int:
    depth = deepest = 0
    for character in sql:
        depth += {"(": 1, ")": -1}.get(character, 0)
        deepest = max(deepest, depth)
    return deepest


@FUZZ
@given(st.lists(st.booleans(), max_size=180))
def test_a_chain_of_any_length_compiles_to_sql_of_bounded_nesting(joiners: list[bool]) -> None:
    """SQLite's parser takes about 100 levels: a chain of terms must not nest a level each."""
    sql, params = compile_filter(parse_filter(chain(joiners)), USERS, "sqlite")
    assert len(params) == len(joiners) + 1
    assert nesting(sql) <= 3  # (x) OR ((y) AND (z)) whatever the length
