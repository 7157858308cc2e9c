"""sortBy/sortOrder (RFC 7644 3.4.2.3) and POST .search (3.4.3), on both databases.

The tests only read: those of one database share its client and its users (tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.scim import LIST_RESPONSE as LIST
from tests.scim import SEARCH_REQUEST as SEARCH
from tests.scim import Client

USERS: list[dict[str, Any]] = [
    {"userName": "carol@example.com", "name": {"familyName": "Zeta"}, "title": "b"},
    {"userName": "Alice@example.com", "name": {"familyName": "alpha"}},
    {"userName": "bob@example.com", "title": "A", "emails": [{"value": "z@x.example"}]},
]


@pytest.fixture(scope="module")
def created(module_client: Client) -> list[str]:
    """The users of USERS and one group: once per database, for all the module's tests
    (which only read; a POST .search is a query)."""
    names = []
    for body in USERS:
        response = module_client.post("/scim/v2/Users", json=body)
        assert response.status_code == 201, response.text
        names.append(response.json()["userName"])
    group = module_client.post("/scim/v2/Groups", json={"displayName": "Admins"})
    assert group.status_code == 201
    return names


def user_names(client: Client, **params: Any) -> list[str]:
    response = client.get("/scim/v2/Users", params=params)
    assert response.status_code == 200, response.text
    return [r["userName"] for r in response.json()["Resources"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["carol@example.com", "Alice@example.com", "bob@example.com"]),
        ({"sortBy": "userName"}, ["Alice@example.com", "bob@example.com", "carol@example.com"]),
        (
            {"sortBy": "userName", "sortOrder": "descending"},
            ["carol@example.com", "bob@example.com", "Alice@example.com"],
        ),
        (
            {"sortBy": "name.familyName"},
            ["Alice@example.com", "carol@example.com", "bob@example.com"],
        ),
        (
            {"sortBy": "title", "sortOrder": "DESCENDING"},
            ["Alice@example.com", "carol@example.com", "bob@example.com"],
        ),
        (
            {"sortBy": "emails", "count": 1},
            ["bob@example.com"],
        ),
        (
            {"sortBy": "meta.created", "sortOrder": "descending", "startIndex": 2},
            ["Alice@example.com", "carol@example.com"],
        ),
    ],
)
def test_sort_by_orders_users_missing_values_last_when_ascending(
    module_client: Client,
    created: list[str],
    params: dict[str, Any],
    expected: list[str],
) -> None:
    assert user_names(module_client, **params) == expected


@pytest.mark.parametrize(
    ("params", "scim_type"),
    [
        ({"sortBy": "name"}, "invalidValue"),
        ({"sortBy": "groups"}, "invalidValue"),
        ({"sortBy": "nope"}, "invalidValue"),
        ({"sortBy": "userName", "sortOrder": "sideways"}, "invalidValue"),
    ],
)
def test_unusable_sort_answers_400(
    module_client: Client,
    params: dict[str, Any],
    scim_type: str,
) -> None:
    response = module_client.get("/scim/v2/Users", params=params)
    assert response.status_code == 400
    assert response.json()["scimType"] == scim_type


def test_post_users_search_filters_sorts_pages_and_selects(
    module_client: Client,
    created: list[str],
) -> None:
    response = module_client.post(
        "/scim/v2/Users/.search",
        json={
            "schemas": [SEARCH],
            "filter": 'userName ew "@example.com"',
            "sortBy": "userName",
            "startIndex": 2,
            "count": 1,
            "attributes": ["userName"],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["schemas"] == [LIST]
    assert (body["totalResults"], body["itemsPerPage"], body["startIndex"]) == (3, 1, 2)
    [resource] = body["Resources"]
    assert sorted(resource) == ["id", "schemas", "userName"]
    assert resource["userName"] == "bob@example.com"


def test_post_groups_search_excludes_attributes(
    module_client: Client,
    created: list[str],
) -> None:
    response = module_client.post(
        "/scim/v2/Groups/.search",
        json={"schemas": [SEARCH], "excludedAttributes": ["meta"]},
    )
    [group] = response.json()["Resources"]
    assert sorted(group) == ["displayName", "id", "schemas"]


def test_root_search_returns_users_then_groups(
    module_client: Client,
    created: list[str],
) -> None:
    response = module_client.post(
        "/scim/v2/.search", json={"schemas": [SEARCH], "startIndex": 3, "count": 2}
    )
    body = response.json()
    assert (body["totalResults"], body["itemsPerPage"]) == (4, 2)
    assert [r.get("userName", r.get("displayName")) for r in body["Resources"]] == [
        "bob@example.com",
        "Admins",
    ]


def test_root_search_with_a_user_only_filter_finds_only_users(
    module_client: Client,
    created: list[str],
) -> None:
    response = module_client.post(
        "/scim/v2/.search", json={"schemas": [SEARCH], "filter": 'userName sw "a"'}
    )
    body = response.json()
    assert body["totalResults"] == 1
    assert body["Resources"][0]["userName"] == "Alice@example.com"


@pytest.mark.parametrize(
    "body",
    [
        {"filter": 'userName eq "x"'},
        {"schemas": [SEARCH], "filter": 5},
        {"schemas": [SEARCH], "attributes": "userName"},
        {"schemas": [SEARCH], "count": "many"},
        [],
    ],
)
def test_malformed_search_requests_answer_400(
    module_client: Client,
    body: Any,
) -> None:
    response = module_client.post("/scim/v2/Users/.search", json=body)
    assert response.status_code == 400
    assert response.json()["scimType"] in ("invalidSyntax", "invalidValue")


def test_root_search_with_a_filter_no_type_understands_answers_400(
    module_client: Client,
) -> None:
    response = module_client.post(
        "/scim/v2/.search", json={"schemas": [SEARCH], "filter": "nope pr"}
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"
