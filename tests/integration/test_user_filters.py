"""Filtering and paging GET /scim/v2/Users against real SQLite and PostgreSQL databases.

Every test runs once per database (the `module_client` fixture is parametrized over both),
so one table of filters proves both dialects' SQL gives the same, exact answers. The tests only
read: those of one database share its client and its users (tests/conftest.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.scim import CORE_USER, ERROR, LIST_RESPONSE, PATCH_OP, Client
from tests.scim import ENTERPRISE_USER as ENTERPRISE

ALICE = "Alice@Example.com"
BOB = "bob@example.org"  # deactivated
CAROL = "carol_100%@example.com"  # LIKE metacharacters
CARL = "carolx100x@example.com"  # what CAROL's `_` and `%` would match as wildcards
ARGER = "Ärger@example.com"  # non-ASCII, no externalId
EVERYONE = {ALICE, BOB, CAROL, CARL, ARGER}

# In creation order; externalId None means the user has none.
USERS: list[tuple[str, str, str | None]] = [
    ("alice", ALICE, "ext-A"),
    ("bob", BOB, "EXT-b"),
    ("carol", CAROL, "ext\\C"),
    ("carl", CARL, "ext-C"),
    ("arger", ARGER, None),
]


@dataclass(frozen=True)
class Created:
    """What a filter may refer to of a created user: `{alice.id}`, `{bob.created}`..."""

    id: str
    created: str
    last_modified: str

    @property
    def created_in_microseconds(self) -> str:
        """Exactly the instant `created`, written with six fractional digits."""
        return self.created[:-1] + "000Z"

    @property
    def created_at_plus_two(self) -> str:
        """Exactly the instant `created`, written in the +02:00 time zone."""
        moment = datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        local = moment.astimezone(timezone(timedelta(hours=2)))
        return local.isoformat(timespec="milliseconds")


def create_user(
    client: Client,
    user_name: str,
    external_id: str | None,
) -> Created:
    body: dict[str, Any] = {
        "schemas": [CORE_USER],
        "userName": user_name,
        "name": {"givenName": user_name.partition("@")[0], "familyName": "Tester"},
        "emails": [{"value": user_name.lower(), "type": "work", "primary": True}],
        "active": True,
    }
    if external_id is not None:
        body["externalId"] = external_id
    response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 201, response.text
    return created(response.json())


def created(resource: dict[str, Any]) -> Created:
    meta = resource["meta"]
    return Created(id=resource["id"], created=meta["created"], last_modified=meta["lastModified"])


def _next_millisecond() -> None:
    # Timestamps have millisecond precision; time filters need each write in its own.
    time.sleep(0.003)


@pytest.fixture(scope="module")
def users(module_client: Client) -> dict[str, Created]:
    """The users of USERS, created in order, then bob deactivated (his last modification):
    once per database, for all the module's tests (which only read)."""
    made: dict[str, Created] = {}
    for key, user_name, external_id in USERS:
        made[key] = create_user(module_client, user_name, external_id)
        _next_millisecond()
    response = module_client.patch(
        f"/scim/v2/Users/{made['bob'].id}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert response.status_code == 200, response.text
    made["bob"] = created(response.json())
    return made


def list_users(
    client: Client,
    **params: Any,
) -> Any:
    response = client.get("/scim/v2/Users", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def case(filter_text: str, expected: set[str], *marks: pytest.MarkDecorator) -> Any:
    return pytest.param(filter_text, expected, marks=marks, id=filter_text)


# (filter, the userNames it selects). `{alice.id}` etc. are filled in from the created users.
FILTERS = [
    # Attributes of the document: every one is filterable, case-insensitively.
    case('name.familyName eq "TESTER"', EVERYONE),
    case('emails.value co "example.com"', EVERYONE - {BOB}),
    case('emails[type eq "work" and value co "@EXAMPLE.com"]', EVERYONE - {BOB}),
    case("title pr", set()),
    case(f'{ENTERPRISE}:department eq "R&D"', set()),
    # userName: case-insensitive, whatever the operator.
    case('userName eq "Alice@Example.com"', {ALICE}),
    case('userName eq "alice@EXAMPLE.COM"', {ALICE}),
    case('userName ne "ALICE@example.com"', EVERYONE - {ALICE}),
    case('userName co "EXAMPLE.ORG"', {BOB}),
    case('userName sw "CAROL"', {CAROL, CARL}),
    case('userName ew "@EXAMPLE.COM"', EVERYONE - {BOB}),
    case('userName gt "C"', {CAROL, CARL, ARGER}),
    case('userName ge "CAROL_100%@EXAMPLE.COM"', {CAROL, CARL, ARGER}),
    case('userName lt "B"', {ALICE}),
    case('userName le "BOB@EXAMPLE.ORG"', {ALICE, BOB}),
    case('userName eq "nobody@example.com"', set()),
    case('userName co ""', EVERYONE),
    case('userName sw ""', EVERYONE),
    case('userName ew ""', EVERYONE),
    # Attribute names and operators are case-insensitive; the core schema URN may be given.
    case('USERNAME EQ "alice@example.com"', {ALICE}),
    case(f'{CORE_USER}:userName eq "alice@example.com"', {ALICE}),
    # Non-ASCII letters fold case too, and composed and decomposed forms are the same name.
    case('userName eq "ärger@EXAMPLE.com"', {ARGER}),
    case('userName sw "ÄR"', {ARGER}),
    case(r'userName eq "\u00c4rger@example.com"', {ARGER}),
    case(r'userName eq "A\u0308rger@example.com"', {ARGER}),
    # A \u surrogate pair is one character (U+1F600), which no one's userName holds.
    case(r'userName co "\ud83d\ude00"', set()),
    # LIKE metacharacters in a value are matched literally.
    case('userName co "_"', {CAROL}),
    case('userName co "%"', {CAROL}),
    case('userName co "l_1"', {CAROL}),
    case('userName sw "carol_"', {CAROL}),
    case('userName ew "0%@example.com"', {CAROL}),
    case('userName co "100%@"', {CAROL}),
    case(r'externalId co "\\"', {CAROL}),
    case(r'externalId ew "\\C"', {CAROL}),
    case(r'externalId eq "ext\\C"', {CAROL}),
    # externalId is case-exact.
    case('externalId eq "ext-A"', {ALICE}),
    case('externalId eq "EXT-A"', set()),
    case('externalId co "xt-a"', set()),
    case('externalId sw "EXT"', {BOB}),
    case('externalId sw "ext"', {ALICE, CAROL, CARL}),
    case('externalId ew "b"', {BOB}),
    case('externalId ew "B"', set()),
    case('externalId gt "ext-A"', {CAROL, CARL}),
    case('externalId lt "ext"', {BOB}),
    case("externalId pr", EVERYONE - {ARGER}),
    case("not (externalId pr)", {ARGER}),
    case('not (externalId eq "ext-A")', EVERYONE - {ALICE}),
    # ne is the negation of eq: a user without the attribute is "not equal" too.
    case('externalId ne "ext-A"', EVERYONE - {ALICE}),
    # id
    case('id eq "{alice.id}"', {ALICE}),
    case('id ne "{alice.id}"', EVERYONE - {ALICE}),
    case('id eq "{alice.id}" or id eq "{arger.id}"', {ALICE, ARGER}),
    # active
    case("active eq true", EVERYONE - {BOB}),
    case("active eq false", {BOB}),
    case("active ne true", {BOB}),
    case("Active EQ false", {BOB}),
    case("active pr", EVERYONE),
    # meta.created and meta.lastModified
    case('meta.created ge "{alice.created}"', EVERYONE),
    case('meta.created gt "{alice.created}"', EVERYONE - {ALICE}),
    case('meta.created eq "{carol.created}"', {CAROL}),
    case('meta.created lt "{carol.created}"', {ALICE, BOB}),
    case('meta.created le "{carol.created}"', {ALICE, BOB, CAROL}),
    case('meta.lastModified gt "{arger.created}"', {BOB}),
    case('Meta.LastModified le "{arger.created}"', EVERYONE - {BOB}),
    case('meta.created eq "{carol.created_in_microseconds}"', {CAROL}),
    case('meta.created ge "{carol.created_at_plus_two}"', {CAROL, CARL, ARGER}),
    # and / or / not, with not > and > or
    case('active eq true and userName sw "carol"', {CAROL, CARL}),
    case('userName sw "alice" or userName sw "bob"', {ALICE, BOB}),
    case('userName sw "alice" or userName sw "carol" and active eq false', {ALICE}),
    case('(userName sw "alice" or userName sw "bob") and active eq false', {BOB}),
    case('not (active eq true) or userName eq "alice@example.com"', {ALICE, BOB}),
    case('not (userName co "carol")', {ALICE, BOB, ARGER}),
    case('not (userName sw "alice" or userName sw "bob")', {CAROL, CARL, ARGER}),
    case('not (not (userName sw "alice"))', {ALICE}),
    case('userName sw "carol" and not (externalId pr) or active eq false', {BOB}),
]


@pytest.mark.parametrize(("filter_text", "expected"), FILTERS)
def test_filter_selects_exactly_the_matching_users(
    module_client: Client,
    users: dict[str, Created],
    filter_text: str,
    expected: set[str],
) -> None:
    body = list_users(module_client, filter=filter_text.format(**users))
    assert {resource["userName"] for resource in body["Resources"]} == expected
    assert body["totalResults"] == len(expected)
    assert body["itemsPerPage"] == len(expected)


def error(scim_type: str, detail: str) -> dict[str, Any]:
    return {"schemas": [ERROR], "status": "400", "scimType": scim_type, "detail": detail}


INVALID_FILTERS = [
    # Valid syntax, but schemas or attributes this server does not have.
    'urn:example:params:scim:schemas:core:2.0:User:userName eq "x"',
    'favouriteColour eq "green"',
    'name eq "x"',
    'password eq "secret"',
    # Operators or values that do not fit the attribute's type.
    "active gt true",
    'active eq "true"',
    "userName eq 5",
    "userName gt null",
    'meta.created co "2024"',
    "meta.lastModified gt 5",
    # Not a filter at all.
    "",
    "userName eq",
    "userName eq alice",
    '(userName eq "alice@example.com"',
    'userName eq "alice@example.com")',
    'userName like "alice"',
    pytest.param('userName eq "x"' + " and userName pr" * 300, id="over-long filter"),
    pytest.param(r'userName eq "\ud800"', id="lone surrogate"),
]


@pytest.mark.parametrize("filter_text", INVALID_FILTERS)
def test_unsupported_or_invalid_filter_answers_400_invalid_filter(
    module_client: Client,
    filter_text: str,
) -> None:
    response = module_client.get("/scim/v2/Users", params={"filter": filter_text})
    assert response.status_code == 400
    body = response.json()
    assert body == error("invalidFilter", body["detail"])
    assert body["detail"].startswith("Invalid filter: ")


# Paging a filtered list: `userName ew "@example.com"` selects four users, in creation order
# alice, carol, carl, arger.
ON_EXAMPLE_COM = 'userName ew "@example.com"'


def page(
    client: Client,
    **params: Any,
) -> tuple[list[str], dict[str, Any]]:
    """The ids on one page of the filtered list, and the rest of the list response."""
    body = list_users(client, filter=ON_EXAMPLE_COM, **params)
    ids = [resource["id"] for resource in body.pop("Resources")]
    return ids, body


def list_fields(total: int, items: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": items,
        "startIndex": start,
    }


def test_filtered_list_is_in_creation_order(
    module_client: Client,
    users: dict[str, Created],
) -> None:
    ids, fields = page(module_client)
    assert ids == [users[key].id for key in ("alice", "carol", "carl", "arger")]
    assert fields == list_fields(total=4, items=4, start=1)


def test_start_index_and_count_select_a_page_of_the_filtered_list(
    module_client: Client,
    users: dict[str, Created],
) -> None:
    ids, fields = page(module_client, startIndex=2, count=2)
    assert ids == [users["carol"].id, users["carl"].id]
    assert fields == list_fields(total=4, items=2, start=2)


def test_last_page_holds_what_is_left(
    module_client: Client,
    users: dict[str, Created],
) -> None:
    ids, fields = page(module_client, startIndex=4, count=2)
    assert ids == [users["arger"].id]
    assert fields == list_fields(total=4, items=1, start=4)


@pytest.mark.usefixtures("users")
def test_count_zero_gives_the_total_without_resources(
    module_client: Client,
) -> None:
    body = list_users(module_client, filter=ON_EXAMPLE_COM, count=0)
    assert body == {**list_fields(total=4, items=0, start=1), "Resources": []}


@pytest.mark.usefixtures("users")
def test_negative_count_is_taken_as_zero(
    module_client: Client,
) -> None:
    body = list_users(module_client, filter=ON_EXAMPLE_COM, count=-5)
    assert body == {**list_fields(total=4, items=0, start=1), "Resources": []}


@pytest.mark.usefixtures("users")
def test_start_index_beyond_the_end_gives_an_empty_page(
    module_client: Client,
) -> None:
    body = list_users(module_client, filter=ON_EXAMPLE_COM, startIndex=5, count=2)
    assert body == {**list_fields(total=4, items=0, start=5), "Resources": []}


def test_start_index_below_one_is_taken_as_one(
    module_client: Client,
    users: dict[str, Created],
) -> None:
    ids, fields = page(module_client, startIndex=0, count=1)
    assert ids == [users["alice"].id]
    assert fields == list_fields(total=4, items=1, start=1)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"count": "ten"}, "count must be an integer"),
        ({"count": "1.5"}, "count must be an integer"),
        ({"startIndex": "first"}, "startIndex must be an integer"),
    ],
)
def test_non_integer_paging_parameter_answers_400_invalid_value(
    module_client: Client,
    params: dict[str, str],
    detail: str,
) -> None:
    response = module_client.get("/scim/v2/Users", params={"filter": ON_EXAMPLE_COM, **params})
    assert response.status_code == 400
    assert response.json() == error("invalidValue", detail)
