"""Filters on every User attribute, compiled to SQL over the read model's JSON document.

One table of cases, run on SQLite and on PostgreSQL: both must select exactly the same
users. String comparisons ignore case (every attribute here is caseExact=false). The tests
only read: those of one database share its client and its users (tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.scim import CORE_USER, Client
from tests.scim import ENTERPRISE_USER as ENTERPRISE

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
EVERYONE = {ALICE, BOB, CAROL}

BODIES: list[dict[str, Any]] = [
    {
        "userName": ALICE,
        "displayName": "Alice Ä",
        "name": {"givenName": "Alice", "familyName": "Ängström"},
        "title": "VP Sales",
        "emails": [
            {"value": "alice@work.example", "type": "work", "primary": True},
            {"value": "Alice@Home.Example", "type": "home"},
        ],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
        ENTERPRISE: {"department": "R&D", "manager": {"value": "M-1"}},
    },
    {
        "userName": BOB,
        "name": {"givenName": "Bob"},
        "title": "Engineer 100%",
        "emails": [{"value": "bob@work.example", "type": "work"}],
        "addresses": [{"locality": "Berlin", "type": "work", "primary": True}],
        ENTERPRISE: {"department": "Sales"},
    },
    {"userName": CAROL},
]


@pytest.fixture(scope="module")
def ids(module_client: Client) -> dict[str, str]:
    """The users of BODIES by userName, plus the id of a group holding only Alice: once per
    database, for all the module's tests (which only read)."""
    made = {}
    for body in BODIES:
        response = module_client.post("/scim/v2/Users", json=body)
        assert response.status_code == 201, response.text
        made[body["userName"]] = response.json()["id"]
    group = module_client.post(
        "/scim/v2/Groups", json={"displayName": "Alice's", "members": [{"value": made[ALICE]}]}
    )
    assert group.status_code == 201, group.text
    made["group"] = group.json()["id"]
    return made


CASES = [
    ('name.givenName eq "ALICE"', {ALICE}),
    ('name.familyName sw "ängs"', {ALICE}),
    ("name.familyName pr", {ALICE}),
    ("name.givenName pr", {ALICE, BOB}),
    ("not (name.givenName pr)", {CAROL}),
    (f'{CORE_USER}:name.givenName eq "bob"', {BOB}),
    ('displayName co "ä"', {ALICE}),
    ('title co "100%"', {BOB}),
    ('title co "_"', set()),
    ('title ne "vp sales"', {BOB, CAROL}),
    ('title gt "f"', {ALICE}),
    ('emails co "home.example"', {ALICE}),
    ('emails.value ew "@WORK.example"', {ALICE, BOB}),
    ('emails.value gt "b"', {BOB}),
    ("emails pr", {ALICE, BOB}),
    ("not (emails pr)", {CAROL}),
    ("emails.primary eq true", {ALICE}),
    ('emails[type eq "work" and primary eq true]', {ALICE}),
    ('emails[type eq "home" or value sw "bob"]', {ALICE, BOB}),
    ('emails[not (type eq "work")]', {ALICE}),
    ('phoneNumbers[type eq "mobile"]', {ALICE}),
    ('addresses.locality eq "BERLIN"', {BOB}),
    ("addresses[primary eq true]", {BOB}),
    (f'{ENTERPRISE}:department eq "r&d"', {ALICE}),
    (f"{ENTERPRISE}:department pr", {ALICE, BOB}),
    (f'{ENTERPRISE}:manager.value eq "m-1"', {ALICE}),
    ('emails[type eq "work"] and title sw "vp"', {ALICE}),
    ('userName sw "a" or name.givenName eq "bob"', {ALICE, BOB}),
]


@pytest.mark.parametrize(("filter_text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_on_document_attributes_selects_exactly_the_matching_users(
    module_client: Client,
    ids: dict[str, str],
    filter_text: str,
    expected: set[str],
) -> None:
    response = module_client.get("/scim/v2/Users", params={"filter": filter_text})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {r["userName"] for r in body["Resources"]} == expected
    assert body["totalResults"] == len(expected)


def test_filter_on_groups_selects_the_members(
    module_client: Client,
    ids: dict[str, str],
) -> None:
    for text in (
        f'groups eq "{ids["group"]}"',
        f'groups[value eq "{ids["group"].upper()}"]',
        "groups pr",
    ):
        response = module_client.get("/scim/v2/Users", params={"filter": text})
        assert [r["userName"] for r in response.json()["Resources"]] == [ALICE], text


@pytest.mark.parametrize(
    "filter_text",
    [
        'name[givenName eq "x"]',
        'title.sub eq "x"',
        'emails.nope eq "x"',
        'emails.primary eq "true"',
        'name eq "x"',
        f'{ENTERPRISE}:nope eq "x"',
        'urn:example:ext:User:department eq "x"',
    ],
)
def test_filters_on_attributes_that_do_not_exist_or_do_not_fit_answer_400(
    module_client: Client,
    filter_text: str,
) -> None:
    response = module_client.get("/scim/v2/Users", params={"filter": filter_text})
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"
