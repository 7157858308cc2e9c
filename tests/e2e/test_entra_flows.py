"""Microsoft Entra ID's provisioning requests, replayed over HTTP through the real app.

The request bodies follow Microsoft's "Tutorial: Develop and plan provisioning for a SCIM
endpoint in Microsoft Entra ID" and its "Known issues and resolutions with SCIM 2.0 protocol
compliance" page: capitalised ops ("Replace", "Add", "Remove"), booleans as strings
("False"), the enterprise manager as a bare id string, members removed by a value list, and
the membership check by `id eq ... and members[value eq ...]`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.scim import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    ERROR,
    LIST_RESPONSE,
    PATCH_OP,
    Client,
)

BASE = "http://scim.test/scim/v2"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
NOT_FOUND = {"schemas": [ERROR], "status": "404", "detail": "Resource not found"}

USER_NAME = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"
EMAIL = "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"

# Entra ID's "Create User" request, with the enterprise extension its default mapping fills.
ENTRA_CREATE_USER: dict[str, Any] = {
    "schemas": [CORE_USER, ENTERPRISE_USER],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": USER_NAME,
    "active": True,
    "emails": [{"primary": True, "type": "work", "value": EMAIL}],
    "meta": {"resourceType": "User"},
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName",
    },
    "roles": [],
    ENTERPRISE_USER: {"employeeNumber": "701984", "department": "Tour Operations"},
}

# What the server keeps of it: `meta` is read-only and `roles` is not an attribute it knows.
STORED_USER: dict[str, Any] = {
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": USER_NAME,
    "emails": [{"primary": True, "type": "work", "value": EMAIL}],
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName",
    },
    ENTERPRISE_USER: {"employeeNumber": "701984", "department": "Tour Operations"},
}

# Entra ID's "Create Group" request.
ENTRA_CREATE_GROUP: dict[str, Any] = {
    "schemas": [CORE_GROUP, MS_GROUP],
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "displayName",
    "meta": {"resourceType": "Group"},
}


def create_user(
    client: Client,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = client.post("/scim/v2/Users", json=body or ENTRA_CREATE_USER)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def create_group(client: Client) -> dict[str, Any]:
    response = client.post("/scim/v2/Groups", json=ENTRA_CREATE_GROUP)
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()
    return group


def patch(
    client: Client,
    resource: dict[str, Any],
    *operations: dict[str, Any],
) -> Any:
    return client.patch(
        resource["meta"]["location"].removeprefix("http://scim.test"),
        json={"schemas": [PATCH_OP], "Operations": list(operations)},
    )


def expected_user(
    user: dict[str, Any],
    version: int,
    attributes: dict[str, Any],
    *,
    active: bool = True,
    last_modified: str | None = None,
) -> dict[str, Any]:
    return {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": user["id"],
        **attributes,
        "active": active,
        "meta": {
            "resourceType": "User",
            "created": user["meta"]["created"],
            "lastModified": last_modified or user["meta"]["lastModified"],
            "location": f"{BASE}/Users/{user['id']}",
            "version": f'W/"{version}"',
        },
    }


def expected_group(
    group: dict[str, Any],
    version: int,
    members: list[dict[str, Any]],
    *,
    display_name: str = "displayName",
    last_modified: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [CORE_GROUP],
        "id": group["id"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": display_name,
    }
    if members:
        resource["members"] = [
            {
                "value": user["id"],
                "$ref": f"{BASE}/Users/{user['id']}",
                "display": user.get("displayName") or user["userName"],
                "type": "User",
            }
            for user in members
        ]
    resource["meta"] = {
        "resourceType": "Group",
        "created": group["meta"]["created"],
        "lastModified": last_modified or group["meta"]["lastModified"],
        "location": f"{BASE}/Groups/{group['id']}",
        "version": f'W/"{version}"',
    }
    return resource


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }


def membership_check(
    client: Client,
    group: dict[str, Any],
    user: dict[str, Any],
) -> Any:
    return client.get(
        "/scim/v2/Groups",
        params={
            "filter": f'id eq "{group["id"]}" and members[value eq "{user["id"]}"]',
            "excludedAttributes": "members",
        },
    )


@pytest.fixture
def user(client: Client) -> dict[str, Any]:
    return create_user(client)


@pytest.fixture
def group(client: Client) -> dict[str, Any]:
    return create_group(client)


# Users


def test_create_user_with_the_enterprise_extension_answers_the_user(
    client: Client,
) -> None:
    response = client.post("/scim/v2/Users", json=ENTRA_CREATE_USER)

    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == body["meta"]["location"]
    assert body == expected_user(body, 1, STORED_USER)


def test_get_user_by_user_name_filter_answers_a_list_of_one(
    client: Client,
    user: dict[str, Any],
) -> None:
    response = client.get("/scim/v2/Users", params={"filter": f'userName eq "{USER_NAME}"'})

    assert response.status_code == 200
    assert response.json() == list_response([user])


def test_get_user_by_user_name_filter_of_no_user_answers_an_empty_list(
    client: Client,
    user: dict[str, Any],
) -> None:
    response = client.get("/scim/v2/Users", params={"filter": 'userName eq "non-existent user"'})

    assert response.status_code == 200
    assert response.json() == list_response([])


def test_replace_active_with_the_string_false_disables_the_user(
    client: Client,
    user: dict[str, Any],
) -> None:
    response = patch(client, user, {"op": "Replace", "path": "active", "value": "False"})

    assert response.status_code == 200
    body = response.json()
    assert body == expected_user(
        user, 2, STORED_USER, active=False, last_modified=body["meta"]["lastModified"]
    )
    assert client.get(f"/scim/v2/Users/{user['id']}").json() == body


def test_replace_active_with_the_boolean_false_disables_the_user(
    client: Client,
    user: dict[str, Any],
) -> None:
    response = patch(client, user, {"op": "Replace", "path": "active", "value": False})

    assert response.status_code == 200
    assert response.json()["active"] is False
    assert response.json()["meta"]["version"] == 'W/"2"'


def test_replace_active_with_the_string_true_reactivates_the_user(
    client: Client,
) -> None:
    user = create_user(client, {**ENTRA_CREATE_USER, "active": False})

    response = patch(client, user, {"op": "Replace", "path": "active", "value": "True"})

    assert response.status_code == 200
    body = response.json()
    assert body == expected_user(
        user, 2, STORED_USER, active=True, last_modified=body["meta"]["lastModified"]
    )


def test_add_display_name_sets_it(
    client: Client,
    user: dict[str, Any],
) -> None:
    response = patch(client, user, {"op": "Add", "path": "displayName", "value": "Babs Jensen"})

    assert response.status_code == 200
    body = response.json()
    assert body == expected_user(
        user,
        2,
        {**STORED_USER, "displayName": "Babs Jensen"},
        last_modified=body["meta"]["lastModified"],
    )


def test_replace_work_email_value_and_family_name(
    client: Client,
    user: dict[str, Any],
) -> None:
    response = patch(
        client,
        user,
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": "updatedEmail@microsoft.com",
        },
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_user(
        user,
        2,
        {
            **STORED_USER,
            "emails": [{"primary": True, "type": "work", "value": "updatedEmail@microsoft.com"}],
            "name": {
                "formatted": "givenName familyName",
                "familyName": "updatedFamilyName",
                "givenName": "givenName",
            },
        },
        last_modified=body["meta"]["lastModified"],
    )


def test_replace_given_name(
    client: Client,
    user: dict[str, Any],
) -> None:
    response = patch(client, user, {"op": "Replace", "path": "name.givenName", "value": "Babs"})

    assert response.status_code == 200
    assert response.json()["name"] == {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "Babs",
    }
    assert response.json()["meta"]["version"] == 'W/"2"'


def test_replace_user_name(
    client: Client,
    user: dict[str, Any],
) -> None:
    new_name = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"

    response = patch(client, user, {"op": "Replace", "path": "userName", "value": new_name})

    assert response.status_code == 200
    body = response.json()
    assert body == expected_user(
        user,
        2,
        {**STORED_USER, "userName": new_name},
        last_modified=body["meta"]["lastModified"],
    )


def test_add_manager_as_a_bare_id_sets_the_manager(
    client: Client,
    user: dict[str, Any],
) -> None:
    boss = create_user(client, {"schemas": [CORE_USER], "userName": "boss@testuser.com"})

    response = patch(
        client,
        user,
        {"op": "Add", "path": f"{ENTERPRISE_USER}:manager", "value": boss["id"]},
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_user(
        user,
        2,
        {
            **STORED_USER,
            ENTERPRISE_USER: {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": boss["id"]},
            },
        },
        last_modified=body["meta"]["lastModified"],
    )


def test_delete_user_answers_204_and_then_404(
    client: Client,
    user: dict[str, Any],
) -> None:
    response = client.delete(f"/scim/v2/Users/{user['id']}")

    assert response.status_code == 204
    assert client.get(f"/scim/v2/Users/{user['id']}").json() == NOT_FOUND
    assert client.get(
        "/scim/v2/Users", params={"filter": f'userName eq "{USER_NAME}"'}
    ).json() == list_response([])


# Groups


def test_create_group_answers_the_group(client: Client) -> None:
    response = client.post("/scim/v2/Groups", json=ENTRA_CREATE_GROUP)

    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == body["meta"]["location"]
    assert body == expected_group(body, 1, [])


def test_get_group_by_display_name_excluding_members(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    patch(client, group, {"op": "Add", "path": "members", "value": [{"value": user["id"]}]})

    response = client.get(
        "/scim/v2/Groups",
        params={"excludedAttributes": "members", "filter": 'displayName eq "displayName"'},
    )

    assert response.status_code == 200
    body = response.json()
    [found] = body["Resources"]
    assert body == list_response(
        [expected_group(group, 2, [], last_modified=found["meta"]["lastModified"])]
    )


def test_get_group_excluding_members(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    patch(client, group, {"op": "Add", "path": "members", "value": [{"value": user["id"]}]})

    response = client.get(
        f"/scim/v2/Groups/{group['id']}", params={"excludedAttributes": "members"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(group, 2, [], last_modified=body["meta"]["lastModified"])


def test_replace_group_display_name(
    client: Client,
    group: dict[str, Any],
) -> None:
    new_name = "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"

    response = patch(client, group, {"op": "Replace", "path": "displayName", "value": new_name})

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(
        group, 2, [], display_name=new_name, last_modified=body["meta"]["lastModified"]
    )


def test_add_member(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    response = patch(
        client,
        group,
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user["id"]}]},
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(group, 2, [user], last_modified=body["meta"]["lastModified"])
    assert client.get(f"/scim/v2/Groups/{group['id']}").json() == body


def test_remove_member_by_value_list(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    patch(client, group, {"op": "Add", "path": "members", "value": [{"value": user["id"]}]})

    response = patch(
        client,
        group,
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": user["id"]}]},
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(group, 3, [], last_modified=body["meta"]["lastModified"])
    assert client.get(f"/scim/v2/Groups/{group['id']}").json() == body


def test_remove_member_by_value_list_keeps_the_other_members(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    other = create_user(client, {"schemas": [CORE_USER], "userName": "other@testuser.com"})
    patch(
        client,
        group,
        {"op": "Add", "path": "members", "value": [{"value": user["id"]}, {"value": other["id"]}]},
    )

    response = patch(
        client, group, {"op": "Remove", "path": "members", "value": [{"value": user["id"]}]}
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_group(group, 3, [other], last_modified=body["meta"]["lastModified"])


def test_membership_check_finds_the_group_of_a_member(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    added = patch(
        client, group, {"op": "Add", "path": "members", "value": [{"value": user["id"]}]}
    ).json()

    response = membership_check(client, group, user)

    assert response.status_code == 200
    assert response.json() == list_response(
        [expected_group(group, 2, [], last_modified=added["meta"]["lastModified"])]
    )


def test_membership_check_of_a_non_member_finds_nothing(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    response = membership_check(client, group, user)

    assert response.status_code == 200
    assert response.json() == list_response([])


def test_membership_check_after_removal_finds_nothing(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    patch(client, group, {"op": "Add", "path": "members", "value": [{"value": user["id"]}]})
    patch(client, group, {"op": "Remove", "path": "members", "value": [{"value": user["id"]}]})

    response = membership_check(client, group, user)

    assert response.status_code == 200
    assert response.json() == list_response([])


def test_deleted_user_leaves_its_groups(
    client: Client,
    user: dict[str, Any],
    group: dict[str, Any],
) -> None:
    patch(client, group, {"op": "Add", "path": "members", "value": [{"value": user["id"]}]})

    assert client.delete(f"/scim/v2/Users/{user['id']}").status_code == 204

    assert membership_check(client, group, user).json() == list_response([])
    assert "members" not in client.get(f"/scim/v2/Groups/{group['id']}").json()


def test_delete_group_answers_204_and_then_404(
    client: Client,
    group: dict[str, Any],
) -> None:
    response = client.delete(f"/scim/v2/Groups/{group['id']}")

    assert response.status_code == 204
    assert client.get(f"/scim/v2/Groups/{group['id']}").json() == NOT_FOUND


# The whole sequence, in the order Entra ID's provisioning cycle sends it


def test_entra_provisioning_cycle_end_to_end(
    client: Client,
) -> None:
    # Entra looks the user up first, finds nobody, and creates it.
    lookup = {"filter": f'userName eq "{USER_NAME}"'}
    assert client.get("/scim/v2/Users", params=lookup).json() == list_response([])
    user = create_user(client)
    assert client.get("/scim/v2/Users", params=lookup).json() == list_response([user])

    # Profile updates and the manager.
    boss = create_user(client, {"schemas": [CORE_USER], "userName": "boss@testuser.com"})
    updated = patch(
        client,
        user,
        {"op": "Add", "path": "displayName", "value": "Babs Jensen"},
        {"op": "Replace", "path": "name.givenName", "value": "Babs"},
        {"op": "Add", "path": f"{ENTERPRISE_USER}:manager", "value": boss["id"]},
    ).json()
    assert updated["meta"]["version"] == 'W/"2"'

    # The group: looked up, created, the user added, checked.
    group_lookup = {"excludedAttributes": "members", "filter": 'displayName eq "displayName"'}
    assert client.get("/scim/v2/Groups", params=group_lookup).json() == list_response([])
    group = create_group(client)
    added = patch(client, group, {"op": "Add", "path": "members", "value": [{"value": user["id"]}]})
    assert added.json() == expected_group(
        group, 2, [updated], last_modified=added.json()["meta"]["lastModified"]
    )
    check = membership_check(client, group, user).json()
    assert [found["id"] for found in check["Resources"]] == [group["id"]]

    # Unassigned: disabled, then removed from the group, then deleted.
    disabled = patch(client, user, {"op": "Replace", "path": "active", "value": "False"}).json()
    assert disabled["active"] is False
    assert disabled["meta"]["version"] == 'W/"3"'
    removed = patch(
        client, group, {"op": "Remove", "path": "members", "value": [{"value": user["id"]}]}
    ).json()
    assert removed == expected_group(group, 3, [], last_modified=removed["meta"]["lastModified"])
    assert client.delete(f"/scim/v2/Users/{user['id']}").status_code == 204
    assert client.get("/scim/v2/Users", params=lookup).json() == list_response([])
