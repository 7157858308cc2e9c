"""/scim/v2/Groups over HTTP through the real app: create, read, list, patch, replace, delete."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import pytest
from freezegun import freeze_time

from scimledger.http.services import Services
from scimledger.ledger.groups import Group
from tests.conftest import issue
from tests.scim import CORE_GROUP, CORE_USER, ERROR, LIST_RESPONSE, PATCH_OP, Client

# CI time: on SQLite only. The groups' read model runs on PostgreSQL in the concurrent-update,
# crash, Entra, feed and webhook tests; these check the API's answers, whatever the database.
pytestmark = pytest.mark.sqlite_only

BASE = "http://scim.test/scim/v2"
SCIM_JSON = "application/scim+json"
SCIM_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
NOT_FOUND = {"schemas": [ERROR], "status": "404", "detail": "Resource not found"}
UNKNOWN_ID = "2819c223-7f76-453a-919d-413861904646"
UNKNOWN_MEMBERS = (
    "Unknown member ids (members must be users of this organization; nested groups are not"
    " supported): "
)


def new_user(
    client: Client,
    user_name: str,
    display_name: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [CORE_USER], "userName": user_name}
    if display_name is not None:
        body["displayName"] = display_name
    response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def new_group(
    client: Client,
    display_name: str,
    *members: dict[str, Any],
    external_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [CORE_GROUP], "displayName": display_name}
    if external_id is not None:
        body["externalId"] = external_id
    if members:
        body["members"] = [{"value": user["id"]} for user in members]
    response = client.post("/scim/v2/Groups", json=body)
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()
    return group


def member(user: dict[str, Any]) -> dict[str, Any]:
    """A user as a group lists it."""
    return {
        "value": user["id"],
        "$ref": f"{BASE}/Users/{user['id']}",
        "display": user.get("displayName") or user["userName"],
        "type": "User",
    }


def expected_group(
    group: dict[str, Any],
    version: int,
    display_name: str,
    members: list[dict[str, Any]],
    *,
    last_modified: str | None = None,
    external_id: str | None = None,
) -> dict[str, Any]:
    """`group` (as created) at `version`, with the given name and members."""
    resource: dict[str, Any] = {"schemas": [CORE_GROUP], "id": group["id"]}
    if external_id is not None:
        resource["externalId"] = external_id
    resource["displayName"] = display_name
    if members:
        resource["members"] = [member(user) for user in members]
    resource["meta"] = {
        "resourceType": "Group",
        "created": group["meta"]["created"],
        "lastModified": last_modified or group["meta"]["lastModified"],
        "location": f"{BASE}/Groups/{group['id']}",
        "version": f'W/"{version}"',
    }
    return resource


def patch(
    client: Client,
    group: dict[str, Any],
    *operations: dict[str, Any],
) -> Any:
    return client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={"schemas": [PATCH_OP], "Operations": list(operations)},
    )


def fetch(client: Client, group: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"/scim/v2/Groups/{group['id']}")
    assert response.status_code == 200, response.text
    resource: dict[str, Any] = response.json()
    return resource


def list_groups(client: Client, **params: Any) -> dict[str, Any]:
    response = client.get("/scim/v2/Groups", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def list_response(resources: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources) if total is None else total,
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }


def invalid_member(*ids: str) -> dict[str, Any]:
    return {
        "schemas": [ERROR],
        "status": "400",
        "scimType": "invalidValue",
        "detail": UNKNOWN_MEMBERS + ", ".join(ids),
    }


def head(services: Services) -> int:
    return services.ledger.recorder.max_notification_id() or 0


def stored(services: Services, after: int = 0) -> list[Any]:
    """Every event recorded after log position `after`, decoded."""
    ledger = services.ledger
    notifications = ledger.recorder.select_notifications(start=after + 1, limit=10_000)
    return [ledger.mapper.to_domain_event(n) for n in notifications]


def group_events(services: Services, group: dict[str, Any], after: int = 0) -> list[Any]:
    return [e for e in stored(services, after) if e.originator_id == UUID(group["id"])]


@pytest.fixture
def globex(services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue(services.ledger, org='globex').token}"}


# Create


def test_create_answers_201_with_the_group_and_its_members(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com", "Babs Jensen")
    mandy = new_user(client, "mpepper@example.com", "Mandy Pepper")

    response = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [CORE_GROUP],
            "displayName": "Tour Guides",
            "externalId": "00g1emaKYZTWRYYRRTSK",
            "members": [{"value": babs["id"]}, {"value": mandy["id"]}],
        },
    )

    assert response.status_code == 201
    assert response.headers["Content-Type"] == SCIM_JSON
    body = response.json()
    meta = body["meta"]
    assert SCIM_TIME.match(meta["created"])
    assert SCIM_TIME.match(meta["lastModified"])
    assert body == {
        "schemas": [CORE_GROUP],
        "id": body["id"],
        "externalId": "00g1emaKYZTWRYYRRTSK",
        "displayName": "Tour Guides",
        "members": [
            {
                "value": babs["id"],
                "$ref": f"{BASE}/Users/{babs['id']}",
                "display": "Babs Jensen",
                "type": "User",
            },
            {
                "value": mandy["id"],
                "$ref": f"{BASE}/Users/{mandy['id']}",
                "display": "Mandy Pepper",
                "type": "User",
            },
        ],
        "meta": {
            "resourceType": "Group",
            "created": meta["created"],
            "lastModified": meta["lastModified"],
            "location": f"{BASE}/Groups/{body['id']}",
            "version": 'W/"2"',
        },
    }


def test_create_answers_with_location_and_etag_of_the_meta(
    client: Client,
) -> None:
    response = client.post("/scim/v2/Groups", json={"schemas": [CORE_GROUP], "displayName": "HR"})

    meta = response.json()["meta"]
    assert response.headers["Location"] == meta["location"]
    assert response.headers["ETag"] == meta["version"] == 'W/"1"'


def test_create_without_members_answers_a_group_without_members(
    client: Client,
) -> None:
    response = client.post("/scim/v2/Groups", json={"schemas": [CORE_GROUP], "displayName": "HR"})

    body = response.json()
    assert body == expected_group(body, 1, "HR", [])


def test_member_display_is_the_display_name_or_else_the_user_name(
    client: Client,
) -> None:
    named = new_user(client, "bjensen@example.com", "Babs Jensen")
    unnamed = new_user(client, "jsmith@example.com")

    group = new_group(client, "Tour Guides", named, unnamed)

    assert [(m["value"], m["display"]) for m in group["members"]] == [
        (named["id"], "Babs Jensen"),
        (unnamed["id"], "jsmith@example.com"),
    ]


def test_members_are_listed_in_user_creation_order(
    client: Client,
) -> None:
    first, second, third = (new_user(client, f"user{n}@example.com") for n in (1, 2, 3))

    group = new_group(client, "Tour Guides", third, first, second)

    assert [m["value"] for m in group["members"]] == [first["id"], second["id"], third["id"]]


def test_group_created_with_members_was_never_modified(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    # Every clock reading is a second later than the one before: the group's two creation
    # events (GroupCreated, MembersAdded) get different timestamps.
    with freeze_time("2026-03-01T12:00:00Z", auto_tick_seconds=1):
        group = new_group(client, "Tour Guides", babs)

    # RFC 7643 section 3.1: never modified since its creation, so lastModified is created.
    assert group["meta"]["lastModified"] == group["meta"]["created"]


def test_member_display_follows_the_users_display_name(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com", "Babs Jensen")
    group = new_group(client, "Tour Guides", babs)

    client.patch(
        f"/scim/v2/Users/{babs['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Barbara Jensen"}],
        },
    )

    assert fetch(client, group)["members"] == [{**member(babs), "display": "Barbara Jensen"}]


def test_create_records_one_group_created_and_one_members_added(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    before = head(services)

    group = new_group(client, "Tour Guides", babs, mandy)

    events = group_events(services, group, before)
    assert [type(e) for e in events] == [Group.GroupCreated, Group.MembersAdded]
    assert sorted(events[1].user_ids) == sorted([UUID(babs["id"]), UUID(mandy["id"])])


# Read


def test_get_answers_the_exact_group_with_its_etag(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com", "Babs Jensen")
    group = new_group(client, "Tour Guides", babs, external_id="00g1")

    response = client.get(f"/scim/v2/Groups/{group['id']}")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.headers["ETag"] == 'W/"2"'
    assert response.json() == expected_group(group, 2, "Tour Guides", [babs], external_id="00g1")


def test_get_unknown_group_answers_404(client: Client) -> None:
    response = client.get(f"/scim/v2/Groups/{UNKNOWN_ID}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_get_non_uuid_group_id_answers_404(client: Client) -> None:
    response = client.get("/scim/v2/Groups/not-a-group")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_get_a_user_id_as_a_group_answers_404(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")

    response = client.get(f"/scim/v2/Groups/{babs['id']}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# List and filters


def test_list_of_no_groups_is_an_empty_list_response(
    client: Client,
) -> None:
    assert list_groups(client) == list_response([])


def test_filter_display_name_eq_ignores_case(
    client: Client,
) -> None:
    new_group(client, "Sales")
    guides = new_group(client, "Tour Guides")

    body = list_groups(client, filter='displayName eq "tour GUIDES"')

    assert body == list_response([guides])


def test_filter_display_name_eq_of_an_unknown_name_finds_nothing(
    client: Client,
) -> None:
    new_group(client, "Sales")

    body = list_groups(client, filter='displayName eq "Marketing"')

    assert body == list_response([])


def test_filter_external_id_eq_finds_the_group(
    client: Client,
) -> None:
    new_group(client, "Sales", external_id="00g-sales")
    guides = new_group(client, "Tour Guides", external_id="00g-guides")

    body = list_groups(client, filter='externalId eq "00g-guides"')

    assert body == list_response([guides])


def test_filter_id_eq_finds_the_group(client: Client) -> None:
    sales = new_group(client, "Sales")
    new_group(client, "Tour Guides")

    body = list_groups(client, filter=f'id eq "{sales["id"]}"')

    assert body == list_response([sales])


def test_filter_members_value_eq_finds_the_groups_of_a_user(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    sales = new_group(client, "Sales", babs)
    new_group(client, "Marketing", mandy)
    guides = new_group(client, "Tour Guides", mandy, babs)

    body = list_groups(client, filter=f'members[value eq "{babs["id"]}"]')

    assert body == list_response([sales, guides])


def test_filter_members_eq_finds_the_groups_of_a_user(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    sales = new_group(client, "Sales", babs)
    new_group(client, "Marketing", mandy)
    guides = new_group(client, "Tour Guides", mandy, babs)

    body = list_groups(client, filter=f'members eq "{babs["id"]}"')

    assert body == list_response([sales, guides])


def test_filter_members_value_eq_ignores_the_case_of_the_id(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    sales = new_group(client, "Sales", babs)

    body = list_groups(client, filter=f'members[value eq "{babs["id"].upper()}"]')

    # members.value is caseExact=false in the server's own schema, as `id eq` shows.
    assert body == list_response([sales])


def test_list_pages_through_groups_in_creation_order(
    client: Client,
) -> None:
    ids = [new_group(client, f"Group {n}")["id"] for n in range(1, 6)]

    pages = [list_groups(client, startIndex=start, count=2) for start in (1, 3, 5)]

    assert [[group["id"] for group in page["Resources"]] for page in pages] == [
        ids[0:2],
        ids[2:4],
        ids[4:5],
    ]
    assert [page["totalResults"] for page in pages] == [5, 5, 5]
    assert [page["itemsPerPage"] for page in pages] == [2, 2, 1]
    assert [page["startIndex"] for page in pages] == [1, 3, 5]


def test_excluded_attributes_members_omits_the_members(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Tour Guides", babs)

    response = client.get(
        f"/scim/v2/Groups/{group['id']}", params={"excludedAttributes": "members"}
    )

    assert response.status_code == 200
    assert response.json() == expected_group(group, 2, "Tour Guides", [])


def test_list_with_excluded_attributes_members_omits_the_members(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Tour Guides", babs)

    body = list_groups(client, excludedAttributes="members")

    assert body == list_response([expected_group(group, 2, "Tour Guides", [])])


def test_attributes_display_name_returns_only_schemas_id_and_display_name(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Tour Guides", babs, external_id="00g1")

    body = list_groups(client, attributes="displayName")

    assert body == list_response(
        [{"schemas": [CORE_GROUP], "id": group["id"], "displayName": "Tour Guides"}]
    )


# displayName uniqueness


def test_duplicate_display_name_answers_409_uniqueness_and_creates_nothing(
    client: Client,
) -> None:
    sales = new_group(client, "Sales")

    response = client.post(
        "/scim/v2/Groups", json={"schemas": [CORE_GROUP], "displayName": "Sales"}
    )

    assert response.status_code == 409
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json() == {
        "schemas": [ERROR],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "displayName 'Sales' is already taken in this organization",
    }
    assert list_groups(client) == list_response([sales])


def test_display_name_differing_only_in_case_answers_409_uniqueness(
    client: Client,
) -> None:
    sales = new_group(client, "Sales")

    response = client.post(
        "/scim/v2/Groups", json={"schemas": [CORE_GROUP], "displayName": "SALES"}
    )

    assert response.status_code == 409
    assert response.json() == {
        "schemas": [ERROR],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "displayName 'SALES' is already taken in this organization",
    }
    assert list_groups(client) == list_response([sales])


def test_patch_rename_to_a_taken_display_name_answers_409_and_changes_nothing(
    client: Client,
) -> None:
    new_group(client, "Sales")
    guides = new_group(client, "Tour Guides")

    response = patch(client, guides, {"op": "replace", "path": "displayName", "value": "sales"})

    assert response.status_code == 409
    assert response.json() == {
        "schemas": [ERROR],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "displayName 'sales' is already taken in this organization",
    }
    assert fetch(client, guides) == guides


def test_put_rename_to_a_taken_display_name_answers_409_and_changes_nothing(
    client: Client,
) -> None:
    new_group(client, "Sales")
    guides = new_group(client, "Tour Guides")

    response = client.put(
        f"/scim/v2/Groups/{guides['id']}", json={"schemas": [CORE_GROUP], "displayName": "Sales"}
    )

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"
    assert fetch(client, guides) == guides


def test_rename_changing_only_the_case_keeps_the_group_its_name(
    client: Client,
) -> None:
    sales = new_group(client, "Sales")

    response = patch(client, sales, {"op": "replace", "path": "displayName", "value": "SALES"})

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(sales, 2, "SALES", [], last_modified=body["meta"]["lastModified"])


def test_display_name_of_a_deleted_group_can_be_created_again(
    client: Client,
) -> None:
    first = new_group(client, "Sales")
    assert client.delete(f"/scim/v2/Groups/{first['id']}").status_code == 204

    response = client.post(
        "/scim/v2/Groups", json={"schemas": [CORE_GROUP], "displayName": "sales"}
    )

    assert response.status_code == 201
    assert response.json()["id"] != first["id"]
    assert list_groups(client) == list_response([response.json()])


def test_display_name_given_up_by_a_rename_can_be_created_again(
    client: Client,
) -> None:
    sales = new_group(client, "Sales")
    patch(client, sales, {"op": "replace", "path": "displayName", "value": "Revenue"})

    response = client.post(
        "/scim/v2/Groups", json={"schemas": [CORE_GROUP], "displayName": "Sales"}
    )

    assert response.status_code == 201
    assert response.json()["displayName"] == "Sales"


# Members that are not users of the organization


def test_create_with_an_unknown_member_answers_400_and_creates_nothing(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    before = head(services)

    response = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [CORE_GROUP],
            "displayName": "Sales",
            "members": [{"value": babs["id"]}, {"value": UNKNOWN_ID}],
        },
    )

    assert response.status_code == 400
    assert response.json() == invalid_member(UNKNOWN_ID)
    assert head(services) == before
    assert list_groups(client) == list_response([])


def test_create_with_a_non_uuid_member_answers_400_and_creates_nothing(
    client: Client,
    services: Services,
) -> None:
    before = head(services)

    response = client.post(
        "/scim/v2/Groups",
        json={"schemas": [CORE_GROUP], "displayName": "Sales", "members": [{"value": "babs"}]},
    )

    assert response.status_code == 400
    assert response.json() == invalid_member("babs")
    assert head(services) == before
    assert list_groups(client) == list_response([])


def test_create_with_a_group_as_member_answers_400_and_creates_nothing(
    client: Client,
    services: Services,
) -> None:
    sales = new_group(client, "Sales")
    before = head(services)

    response = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [CORE_GROUP],
            "displayName": "Everyone",
            "members": [{"value": sales["id"]}],
        },
    )

    assert response.status_code == 400
    assert response.json() == invalid_member(sales["id"])
    assert head(services) == before
    assert list_groups(client) == list_response([sales])


def test_create_with_a_user_of_another_organization_answers_400_and_creates_nothing(
    client: Client,
    services: Services,
    globex: dict[str, str],
) -> None:
    response = client.post(
        "/scim/v2/Users",
        json={"schemas": [CORE_USER], "userName": "outsider@globex.example"},
        headers=globex,
    )
    outsider = response.json()
    before = head(services)

    response = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [CORE_GROUP],
            "displayName": "Sales",
            "members": [{"value": outsider["id"]}],
        },
    )

    assert response.status_code == 400
    assert response.json() == invalid_member(outsider["id"])
    assert head(services) == before
    assert list_groups(client) == list_response([])


def test_patch_adding_an_unknown_member_answers_400_and_changes_nothing(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    group = new_group(client, "Sales", babs)
    before = head(services)

    response = patch(
        client,
        group,
        {"op": "replace", "path": "displayName", "value": "Revenue"},
        {"op": "add", "path": "members", "value": [{"value": mandy["id"]}, {"value": UNKNOWN_ID}]},
    )

    assert response.status_code == 400
    assert response.json() == invalid_member(UNKNOWN_ID)
    assert head(services) == before
    assert fetch(client, group) == group


def test_put_with_a_group_as_member_answers_400_and_changes_nothing(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    sales = new_group(client, "Sales")
    group = new_group(client, "Tour Guides", babs)
    before = head(services)

    response = client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [CORE_GROUP],
            "displayName": "Tour Guides",
            "members": [{"value": babs["id"]}, {"value": sales["id"]}],
        },
    )

    assert response.status_code == 400
    assert response.json() == invalid_member(sales["id"])
    assert head(services) == before
    assert fetch(client, group) == group


def test_patch_adding_a_deleted_user_answers_400_and_changes_nothing(
    client: Client,
    services: Services,
) -> None:
    gone = new_user(client, "gone@example.com")
    client.delete(f"/scim/v2/Users/{gone['id']}")
    group = new_group(client, "Sales")
    before = head(services)

    response = patch(
        client, group, {"op": "add", "path": "members", "value": [{"value": gone["id"]}]}
    )

    assert response.status_code == 400
    assert response.json() == invalid_member(gone["id"])
    assert head(services) == before
    assert fetch(client, group) == group


def test_patch_adding_a_non_uuid_member_answers_400_and_changes_nothing(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Sales")
    before = head(services)

    response = patch(
        client,
        group,
        {"op": "add", "path": "members", "value": [{"value": babs["id"]}, {"value": "babs"}]},
    )

    assert response.status_code == 400
    assert response.json() == invalid_member("babs")
    assert head(services) == before
    assert fetch(client, group) == group


def test_put_with_a_non_uuid_member_answers_400_and_changes_nothing(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Sales")
    before = head(services)

    response = client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [CORE_GROUP],
            "displayName": "Sales",
            "members": [{"value": babs["id"]}, {"value": "babs"}],
        },
    )

    assert response.status_code == 400
    assert response.json() == invalid_member("babs")
    assert head(services) == before
    assert fetch(client, group) == group


# Okta's OIN-template flows


def test_okta_rename_by_replace_without_path_and_with_the_id(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Tour Guides", babs)

    response = patch(
        client,
        group,
        {"op": "replace", "value": {"id": group["id"], "displayName": "Tour Leaders"}},
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"3"'
    body = response.json()
    assert SCIM_TIME.match(body["meta"]["lastModified"])
    assert body == expected_group(
        group, 3, "Tour Leaders", [babs], last_modified=body["meta"]["lastModified"]
    )
    assert fetch(client, group) == body


def test_okta_remove_member_by_value_filter(client: Client) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    group = new_group(client, "Tour Guides", babs, mandy)

    response = patch(client, group, {"op": "remove", "path": f'members[value eq "{babs["id"]}"]'})

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(
        group, 3, "Tour Guides", [mandy], last_modified=body["meta"]["lastModified"]
    )
    assert fetch(client, group) == body


def test_okta_remove_of_a_non_member_answers_200_and_changes_nothing(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    group = new_group(client, "Tour Guides", babs)
    before = head(services)

    response = patch(client, group, {"op": "remove", "path": f'members[value eq "{mandy["id"]}"]'})

    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'
    assert response.json() == group
    assert head(services) == before


def test_okta_add_members_with_path_members(client: Client) -> None:
    babs = new_user(client, "bjensen@example.com", "Babs Jensen")
    mandy = new_user(client, "mpepper@example.com", "Mandy Pepper")
    kim = new_user(client, "kim@example.com")
    group = new_group(client, "Tour Guides", babs)

    response = patch(
        client,
        group,
        {
            "op": "add",
            "path": "members",
            "value": [
                {"value": mandy["id"], "display": "mpepper@example.com"},
                {"value": kim["id"], "display": "kim@example.com"},
            ],
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(
        group, 3, "Tour Guides", [babs, mandy, kim], last_modified=body["meta"]["lastModified"]
    )
    assert fetch(client, group) == body


def test_okta_replace_members_sets_exactly_the_given_members(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    kim = new_user(client, "kim@example.com")
    group = new_group(client, "Tour Guides", babs, mandy)

    response = patch(
        client,
        group,
        {
            "op": "replace",
            "path": "members",
            "value": [{"value": mandy["id"]}, {"value": kim["id"]}],
        },
    )

    assert response.status_code == 200
    body = response.json()
    # One event removes babs, one adds kim.
    assert body == expected_group(
        group, 4, "Tour Guides", [mandy, kim], last_modified=body["meta"]["lastModified"]
    )
    assert fetch(client, group) == body


def test_okta_wizard_put_with_every_member_id_and_null_display(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com", "Babs Jensen")
    mandy = new_user(client, "mpepper@example.com")
    group = new_group(client, "Tour Guides", babs)

    response = client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [CORE_GROUP],
            "id": group["id"],
            "displayName": "Tour Leaders",
            "members": [
                {"value": babs["id"], "display": None},
                {"value": mandy["id"], "display": None},
            ],
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert response.headers["ETag"] == body["meta"]["version"] == 'W/"4"'
    assert body == expected_group(
        group, 4, "Tour Leaders", [babs, mandy], last_modified=body["meta"]["lastModified"]
    )
    assert fetch(client, group) == body


def test_put_that_changes_nothing_keeps_the_version(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Tour Guides", babs, external_id="00g1")
    before = head(services)

    response = client.put(f"/scim/v2/Groups/{group['id']}", json=group)

    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'
    assert response.json() == group
    assert head(services) == before


def test_patch_adding_an_existing_member_keeps_the_version(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Tour Guides", babs)
    before = head(services)

    response = patch(
        client, group, {"op": "add", "path": "members", "value": [{"value": babs["id"]}]}
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'
    assert response.json() == group
    assert head(services) == before


def test_patch_renaming_to_the_same_name_keeps_the_version(
    client: Client,
    services: Services,
) -> None:
    group = new_group(client, "Tour Guides")
    before = head(services)

    response = patch(
        client, group, {"op": "replace", "value": {"id": group["id"], "displayName": "Tour Guides"}}
    )

    assert response.status_code == 200
    assert response.json() == group
    assert head(services) == before


def test_put_without_members_removes_every_member(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Tour Guides", babs)

    response = client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={"schemas": [CORE_GROUP], "displayName": "Tour Guides"},
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(
        group, 3, "Tour Guides", [], last_modified=body["meta"]["lastModified"]
    )


def test_put_to_an_unknown_group_answers_404_and_creates_nothing(
    client: Client,
    services: Services,
) -> None:
    before = head(services)

    response = client.put(
        f"/scim/v2/Groups/{UNKNOWN_ID}", json={"schemas": [CORE_GROUP], "displayName": "Sales"}
    )

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert head(services) == before


# Delete


def test_delete_answers_204_with_an_empty_body(
    client: Client,
) -> None:
    group = new_group(client, "Sales")

    response = client.delete(f"/scim/v2/Groups/{group['id']}")

    assert response.status_code == 204
    assert response.content == b""


def test_deleted_group_answers_404(client: Client) -> None:
    group = new_group(client, "Sales")
    client.delete(f"/scim/v2/Groups/{group['id']}")

    response = client.get(f"/scim/v2/Groups/{group['id']}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_deleted_group_disappears_from_the_list_and_its_users(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    kept = new_group(client, "Kept", babs)
    gone = new_group(client, "Gone", babs)
    client.delete(f"/scim/v2/Groups/{gone['id']}")

    assert list_groups(client) == list_response([kept])
    user = client.get(f"/scim/v2/Users/{babs['id']}").json()
    assert [group["value"] for group in user["groups"]] == [kept["id"]]


def test_deleting_a_group_twice_answers_404(client: Client) -> None:
    group = new_group(client, "Sales")
    client.delete(f"/scim/v2/Groups/{group['id']}")

    response = client.delete(f"/scim/v2/Groups/{group['id']}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# The user's read-only groups attribute


def test_user_lists_the_groups_it_is_a_member_of(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    sales = new_group(client, "Sales", babs)
    new_group(client, "Marketing")
    guides = new_group(client, "Tour Guides", babs)

    response = client.get(f"/scim/v2/Users/{babs['id']}")

    assert response.status_code == 200
    assert response.json()["groups"] == [
        {
            "value": sales["id"],
            "$ref": f"{BASE}/Groups/{sales['id']}",
            "display": "Sales",
            "type": "direct",
        },
        {
            "value": guides["id"],
            "$ref": f"{BASE}/Groups/{guides['id']}",
            "display": "Tour Guides",
            "type": "direct",
        },
    ]


def test_user_groups_follow_a_group_rename(client: Client) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Sales", babs)
    patch(client, group, {"op": "replace", "path": "displayName", "value": "Revenue"})

    response = client.get(f"/scim/v2/Users/{babs['id']}")

    assert [g["display"] for g in response.json()["groups"]] == ["Revenue"]


def test_deleting_a_user_removes_it_from_every_group(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    sales = new_group(client, "Sales", babs, mandy)
    guides = new_group(client, "Tour Guides", babs)

    assert client.delete(f"/scim/v2/Users/{babs['id']}").status_code == 204

    assert [m["value"] for m in fetch(client, sales)["members"]] == [mandy["id"]]
    assert "members" not in fetch(client, guides)
    assert list_groups(client, filter=f'members[value eq "{babs["id"]}"]') == list_response([])


def test_deactivated_user_stays_a_member(client: Client) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Sales", babs)

    response = client.patch(
        f"/scim/v2/Users/{babs['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )

    assert response.status_code == 200
    assert fetch(client, group) == group
    assert [g["value"] for g in response.json()["groups"]] == [group["id"]]


# Version accounting


def test_each_recorded_change_increments_the_version_by_one(
    client: Client,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    mandy = new_user(client, "mpepper@example.com")
    group = new_group(client, "Sales")

    versions = [
        patch(client, group, {"op": "add", "path": "members", "value": [{"value": babs["id"]}]}),
        patch(client, group, {"op": "replace", "path": "displayName", "value": "Revenue"}),
        patch(client, group, {"op": "add", "path": "members", "value": [{"value": mandy["id"]}]}),
        patch(client, group, {"op": "remove", "path": f'members[value eq "{babs["id"]}"]'}),
        patch(client, group, {"op": "replace", "path": "externalId", "value": "00g1"}),
    ]

    assert [r.headers["ETag"] for r in versions] == ['W/"2"', 'W/"3"', 'W/"4"', 'W/"5"', 'W/"6"']


def test_patch_adding_and_removing_members_records_one_event_of_each(
    client: Client,
    services: Services,
) -> None:
    babs, mandy, kim, lee = (
        new_user(client, f"{name}@example.com") for name in ("babs", "mandy", "kim", "lee")
    )
    group = new_group(client, "Sales", babs, mandy)
    before = head(services)

    response = patch(
        client,
        group,
        {"op": "add", "path": "members", "value": [{"value": kim["id"]}]},
        {"op": "remove", "path": f'members[value eq "{babs["id"]}"]'},
        {"op": "add", "path": "members", "value": [{"value": lee["id"]}]},
        {"op": "remove", "path": f'members[value eq "{mandy["id"]}"]'},
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"4"'
    events = group_events(services, group, before)
    assert [(type(e), sorted(e.user_ids)) for e in events] == [
        (Group.MembersRemoved, sorted([UUID(babs["id"]), UUID(mandy["id"])])),
        (Group.MembersAdded, sorted([UUID(kim["id"]), UUID(lee["id"])])),
    ]


def test_put_with_the_full_member_list_records_only_the_difference(
    client: Client,
    services: Services,
) -> None:
    babs, mandy, kim = (
        new_user(client, f"{name}@example.com") for name in ("babs", "mandy", "kim")
    )
    group = new_group(client, "Sales", babs, mandy)
    before = head(services)

    response = client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [CORE_GROUP],
            "displayName": "Sales",
            "members": [{"value": mandy["id"]}, {"value": kim["id"]}],
        },
    )

    assert response.status_code == 200
    events = group_events(services, group, before)
    assert [(type(e), e.user_ids) for e in events] == [
        (Group.MembersRemoved, [UUID(babs["id"])]),
        (Group.MembersAdded, [UUID(kim["id"])]),
    ]


def test_patch_removing_a_member_added_in_the_same_request_records_nothing(
    client: Client,
    services: Services,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Sales")
    before = head(services)

    response = patch(
        client,
        group,
        {"op": "add", "path": "members", "value": [{"value": babs["id"]}]},
        {"op": "remove", "path": f'members[value eq "{babs["id"]}"]'},
    )

    assert response.status_code == 200
    assert response.json() == group
    assert head(services) == before


# Another organization's groups


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", None),
        ("PUT", {"schemas": [CORE_GROUP], "displayName": "Taken Over"}),
        (
            "PATCH",
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Taken Over"}],
            },
        ),
        ("DELETE", None),
    ],
)
def test_another_organizations_group_answers_404_and_stays_unchanged(
    client: Client,
    globex: dict[str, str],
    method: str,
    body: dict[str, Any] | None,
) -> None:
    babs = new_user(client, "bjensen@example.com")
    group = new_group(client, "Sales", babs)

    response = client.request(method, f"/scim/v2/Groups/{group['id']}", json=body, headers=globex)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert fetch(client, group) == group


def test_another_organizations_groups_are_not_listed(
    client: Client,
    globex: dict[str, str],
) -> None:
    new_group(client, "Sales")

    response = client.get("/scim/v2/Groups", headers=globex)

    assert response.json() == list_response([])


def test_another_organization_may_use_the_same_display_name(
    client: Client,
    globex: dict[str, str],
) -> None:
    new_group(client, "Sales")

    response = client.post(
        "/scim/v2/Groups", json={"schemas": [CORE_GROUP], "displayName": "Sales"}, headers=globex
    )

    assert response.status_code == 201
    assert response.json()["displayName"] == "Sales"
