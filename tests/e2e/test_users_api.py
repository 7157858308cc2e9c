"""/scim/v2/Users over HTTP through the real app: create, read, replace, patch, delete, list."""

from __future__ import annotations

import re
from typing import Any

from tests.scim import CORE_USER, ENTERPRISE_USER, ERROR, LIST_RESPONSE, PATCH_OP, Client

BASE = "http://scim.test/scim/v2"
SCIM_JSON = "application/scim+json"
SCIM_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
NOT_FOUND = {"schemas": [ERROR], "status": "404", "detail": "Resource not found"}

BARBARA = {
    "schemas": [CORE_USER],
    "userName": "bjensen@example.com",
    "externalId": "00u1a2b3c4",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
}

# Okta's create request, as its SCIM 2.0 connector sends it.
OKTA_CREATE = {
    "schemas": [CORE_USER],
    "userName": "isabella.moore@example.com",
    "name": {"givenName": "Isabella", "familyName": "Moore"},
    "emails": [{"primary": True, "value": "isabella.moore@example.com", "type": "work"}],
    "displayName": "Isabella Moore",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
}


def create(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 201, response.text
    resource: dict[str, Any] = response.json()
    return resource


def create_named(client: Client, user_name: str) -> dict[str, Any]:
    return create(client, {"schemas": [CORE_USER], "userName": user_name})


def total_users(client: Client) -> int:
    response = client.get("/scim/v2/Users")
    assert response.status_code == 200
    total: int = response.json()["totalResults"]
    return total


def expected_user(
    user_id: str,
    created: str,
    last_modified: str,
    version: int,
    attributes: dict[str, Any],
    *,
    active: bool = True,
) -> dict[str, Any]:
    return {
        "schemas": [CORE_USER],
        "id": user_id,
        **attributes,
        "active": active,
        "meta": {
            "resourceType": "User",
            "created": created,
            "lastModified": last_modified,
            "location": f"{BASE}/Users/{user_id}",
            "version": f'W/"{version}"',
        },
    }


def barbara_attributes() -> dict[str, Any]:
    return {key: value for key, value in BARBARA.items() if key != "schemas"}


# Create


def test_create_answers_201_with_the_resource(client: Client) -> None:
    response = client.post("/scim/v2/Users", json=BARBARA)

    assert response.status_code == 201
    body = response.json()
    meta = body["meta"]
    assert SCIM_TIME.match(meta["created"])
    assert meta["lastModified"] == meta["created"]
    assert body == expected_user(
        body["id"], meta["created"], meta["created"], 1, barbara_attributes()
    )


def test_create_answers_with_location_etag_and_scim_media_type(
    client: Client,
) -> None:
    response = client.post("/scim/v2/Users", json=BARBARA)

    meta = response.json()["meta"]
    assert response.headers["Location"] == meta["location"]
    assert response.headers["ETag"] == meta["version"] == 'W/"1"'
    assert response.headers["Content-Type"] == SCIM_JSON


def test_create_accepts_content_type_application_json(
    client: Client,
) -> None:
    response = client.post(
        "/scim/v2/Users",
        content=b'{"schemas": ["' + CORE_USER.encode() + b'"], "userName": "plain@example.com"}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 201
    assert response.json()["userName"] == "plain@example.com"


def test_create_accepts_content_type_application_scim_json(
    client: Client,
) -> None:
    response = client.post(
        "/scim/v2/Users",
        content=b'{"schemas": ["' + CORE_USER.encode() + b'"], "userName": "scim@example.com"}',
        headers={"Content-Type": SCIM_JSON},
    )

    assert response.status_code == 201
    assert response.json()["userName"] == "scim@example.com"


def test_okta_create_never_returns_password_or_groups(
    client: Client,
) -> None:
    response = client.post("/scim/v2/Users", json=OKTA_CREATE)

    assert response.status_code == 201
    body = response.json()
    assert "password" not in body
    assert "groups" not in body
    assert "1mz050nq" not in response.text
    fetched = client.get(f"/scim/v2/Users/{body['id']}")
    assert "password" not in fetched.json()
    assert "groups" not in fetched.json()
    assert "1mz050nq" not in fetched.text


def test_okta_create_answers_the_resource_without_password_and_groups(
    client: Client,
) -> None:
    response = client.post("/scim/v2/Users", json=OKTA_CREATE)

    body = response.json()
    meta = body["meta"]
    stored = {
        key: value
        for key, value in OKTA_CREATE.items()
        if key not in ("schemas", "groups", "password", "active")
    }
    # The password is recorded as a second event, so the user starts at version 2.
    assert body == expected_user(body["id"], meta["created"], meta["lastModified"], 2, stored)


def test_duplicate_user_name_answers_409_uniqueness(
    client: Client,
) -> None:
    create(client, BARBARA)

    response = client.post("/scim/v2/Users", json=BARBARA)

    assert response.status_code == 409
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json() == {
        "schemas": [ERROR],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "userName 'bjensen@example.com' is already taken in this organization",
    }
    assert total_users(client) == 1


def test_user_name_differing_only_in_case_answers_409_uniqueness(
    client: Client,
) -> None:
    create_named(client, "bjensen@example.com")

    response = client.post(
        "/scim/v2/Users", json={"schemas": [CORE_USER], "userName": "BJensen@Example.COM"}
    )

    assert response.status_code == 409
    assert response.json() == {
        "schemas": [ERROR],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "userName 'BJensen@Example.COM' is already taken in this organization",
    }
    assert total_users(client) == 1


def test_deactivated_user_keeps_its_user_name(
    client: Client,
) -> None:
    create(client, {**BARBARA, "active": False})

    response = client.post("/scim/v2/Users", json=BARBARA)

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"
    assert total_users(client) == 1


def test_deleted_user_name_can_be_created_again(
    client: Client,
) -> None:
    first = create(client, BARBARA)
    assert client.delete(f"/scim/v2/Users/{first['id']}").status_code == 204

    response = client.post("/scim/v2/Users", json=BARBARA)

    assert response.status_code == 201
    assert response.json()["id"] != first["id"]
    assert response.json()["userName"] == "bjensen@example.com"
    assert total_users(client) == 1


# Rejected requests


def test_malformed_json_answers_400_invalid_syntax_and_creates_nothing(
    client: Client,
) -> None:
    create_named(client, "existing@example.com")

    response = client.post(
        "/scim/v2/Users",
        content=b'{"userName": "broken@example.com",',
        headers={"Content-Type": SCIM_JSON},
    )

    assert response.status_code == 400
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "400"
    assert body["scimType"] == "invalidSyntax"
    assert body["detail"].startswith("The request body is not valid JSON")
    assert total_users(client) == 1


def test_empty_body_answers_400_invalid_syntax_and_creates_nothing(
    client: Client,
) -> None:
    create_named(client, "existing@example.com")

    response = client.post("/scim/v2/Users", content=b"", headers={"Content-Type": SCIM_JSON})

    assert response.status_code == 400
    assert response.json() == {
        "schemas": [ERROR],
        "status": "400",
        "scimType": "invalidSyntax",
        "detail": "The request body is empty",
    }
    assert total_users(client) == 1


def test_missing_user_name_answers_400_invalid_value_and_creates_nothing(
    client: Client,
) -> None:
    create_named(client, "existing@example.com")

    response = client.post("/scim/v2/Users", json={"schemas": [CORE_USER], "displayName": "Nobody"})

    assert response.status_code == 400
    assert response.json() == {
        "schemas": [ERROR],
        "status": "400",
        "scimType": "invalidValue",
        "detail": "userName is required",
    }
    assert total_users(client) == 1


def test_numeric_user_name_answers_400_invalid_value_and_creates_nothing(
    client: Client,
) -> None:
    create_named(client, "existing@example.com")

    response = client.post("/scim/v2/Users", json={"schemas": [CORE_USER], "userName": 12345})

    assert response.status_code == 400
    assert response.json() == {
        "schemas": [ERROR],
        "status": "400",
        "scimType": "invalidValue",
        "detail": "userName must be a string",
    }
    assert total_users(client) == 1


def test_invalid_put_body_answers_400_and_leaves_the_user_unchanged(
    client: Client,
) -> None:
    user = create(client, BARBARA)

    response = client.put(
        f"/scim/v2/Users/{user['id']}", json={"schemas": [CORE_USER], "userName": 12345}
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert client.get(f"/scim/v2/Users/{user['id']}").json() == user


# Read


def test_get_answers_the_exact_resource(client: Client) -> None:
    user = create(client, BARBARA)

    response = client.get(f"/scim/v2/Users/{user['id']}")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.headers["ETag"] == 'W/"1"'
    meta = user["meta"]
    assert response.json() == expected_user(
        user["id"], meta["created"], meta["lastModified"], 1, barbara_attributes()
    )


def test_get_unknown_id_answers_404(client: Client) -> None:
    response = client.get("/scim/v2/Users/2819c223-7f76-453a-919d-413861904646")

    assert response.status_code == 404
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json() == NOT_FOUND


def test_get_non_uuid_id_answers_404(client: Client) -> None:
    response = client.get("/scim/v2/Users/010101001010101011001010101011")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# Replace


def test_put_removes_attributes_absent_from_the_body(
    client: Client,
) -> None:
    user = create(client, BARBARA)

    response = client.put(
        f"/scim/v2/Users/{user['id']}",
        json={
            "schemas": [CORE_USER],
            "userName": "bjensen@example.com",
            "displayName": "Barbara Jensen",
        },
    )

    assert response.status_code == 200
    body = response.json()
    meta = body["meta"]
    assert meta["created"] == user["meta"]["created"]
    assert SCIM_TIME.match(meta["lastModified"])
    assert response.headers["ETag"] == 'W/"2"'
    assert body == expected_user(
        user["id"],
        user["meta"]["created"],
        meta["lastModified"],
        2,
        {"userName": "bjensen@example.com", "displayName": "Barbara Jensen"},
    )
    assert client.get(f"/scim/v2/Users/{user['id']}").json() == body


def test_put_ignores_id_meta_and_groups_in_the_body(
    client: Client,
) -> None:
    user = create(client, BARBARA)

    response = client.put(
        f"/scim/v2/Users/{user['id']}",
        json={
            **BARBARA,
            "id": "2819c223-7f76-453a-919d-413861904646",
            "meta": {"resourceType": "User", "version": 'W/"99"', "created": "2001-01-01"},
            "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour"}],
        },
    )

    assert response.status_code == 200
    assert response.json() == user


def test_put_to_unknown_id_answers_404_and_creates_nothing(
    client: Client,
) -> None:
    response = client.put("/scim/v2/Users/2819c223-7f76-453a-919d-413861904646", json=BARBARA)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert total_users(client) == 0


def test_put_active_false_deactivates(client: Client) -> None:
    user = create(client, BARBARA)

    response = client.put(f"/scim/v2/Users/{user['id']}", json={**BARBARA, "active": False})

    assert response.status_code == 200
    body = response.json()
    assert body["active"] is False
    assert body["meta"]["version"] == 'W/"2"'
    assert client.get(f"/scim/v2/Users/{user['id']}").json()["active"] is False


def test_put_active_true_reactivates(client: Client) -> None:
    user = create(client, {**BARBARA, "active": False})

    response = client.put(f"/scim/v2/Users/{user['id']}", json={**BARBARA, "active": True})

    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["meta"]["version"] == 'W/"2"'
    assert client.get(f"/scim/v2/Users/{user['id']}").json()["active"] is True


def test_version_increases_by_one_per_change(client: Client) -> None:
    user = create(client, BARBARA)
    path = f"/scim/v2/Users/{user['id']}"

    versions = [
        client.put(path, json={**BARBARA, "title": "Guide"}).headers["ETag"],
        client.put(path, json={**BARBARA, "title": "Guide", "active": False}).headers["ETag"],
        client.put(path, json={**BARBARA, "title": "Guide", "active": True}).headers["ETag"],
    ]

    assert versions == ['W/"2"', 'W/"3"', 'W/"4"']


def test_put_that_changes_nothing_keeps_the_version(
    client: Client,
) -> None:
    user = create(client, BARBARA)

    response = client.put(f"/scim/v2/Users/{user['id']}", json=user)

    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"1"'
    assert response.json() == user


def test_put_with_the_same_password_keeps_the_version(
    client: Client,
) -> None:
    user = create(client, OKTA_CREATE)

    response = client.put(f"/scim/v2/Users/{user['id']}", json=OKTA_CREATE)

    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'
    assert response.json() == user


# Patch


def test_okta_patch_replace_without_path_deactivates(
    client: Client,
) -> None:
    user = create(client, BARBARA)

    response = client.patch(
        f"/scim/v2/Users/{user['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.headers["ETag"] == 'W/"2"'
    body = response.json()
    assert body == expected_user(
        user["id"],
        user["meta"]["created"],
        body["meta"]["lastModified"],
        2,
        barbara_attributes(),
        active=False,
    )


def test_patch_replace_with_path_sets_the_sub_attribute(
    client: Client,
) -> None:
    user = create(client, BARBARA)

    response = client.patch(
        f"/scim/v2/Users/{user['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": "Babs"}],
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert body == expected_user(
        user["id"],
        user["meta"]["created"],
        body["meta"]["lastModified"],
        2,
        {**barbara_attributes(), "name": {"givenName": "Babs", "familyName": "Jensen"}},
    )


def test_patch_unknown_id_answers_404(client: Client) -> None:
    response = client.patch(
        "/scim/v2/Users/2819c223-7f76-453a-919d-413861904646",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# Delete


def test_delete_answers_204_with_an_empty_body(
    client: Client,
) -> None:
    user = create(client, BARBARA)

    response = client.delete(f"/scim/v2/Users/{user['id']}")

    assert response.status_code == 204
    assert response.content == b""


def test_deleted_user_answers_404(client: Client) -> None:
    user = create(client, BARBARA)
    client.delete(f"/scim/v2/Users/{user['id']}")

    response = client.get(f"/scim/v2/Users/{user['id']}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_deleted_user_disappears_from_the_list(
    client: Client,
) -> None:
    kept = create_named(client, "kept@example.com")
    gone = create_named(client, "gone@example.com")
    client.delete(f"/scim/v2/Users/{gone['id']}")

    response = client.get("/scim/v2/Users")

    assert response.json() == {
        "schemas": [LIST_RESPONSE],
        "totalResults": 1,
        "itemsPerPage": 1,
        "startIndex": 1,
        "Resources": [kept],
    }


def test_delete_unknown_id_answers_404(client: Client) -> None:
    response = client.delete("/scim/v2/Users/2819c223-7f76-453a-919d-413861904646")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_deleting_twice_answers_404(client: Client) -> None:
    user = create(client, BARBARA)
    client.delete(f"/scim/v2/Users/{user['id']}")

    response = client.delete(f"/scim/v2/Users/{user['id']}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# List


def test_list_of_an_empty_organization_is_an_empty_list_response(
    client: Client,
) -> None:
    response = client.get("/scim/v2/Users", params={"startIndex": 1, "count": 2})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json() == {
        "schemas": [LIST_RESPONSE],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }


def test_import_walk_pages_through_users_in_creation_order(
    client: Client,
) -> None:
    ids = [create_named(client, f"user{n}@example.com")["id"] for n in range(1, 6)]

    pages = [
        client.get("/scim/v2/Users", params={"startIndex": start, "count": 2}).json()
        for start in (1, 3, 5)
    ]

    assert [[user["id"] for user in page["Resources"]] for page in pages] == [
        ids[0:2],
        ids[2:4],
        ids[4:5],
    ]
    assert [page["totalResults"] for page in pages] == [5, 5, 5]
    assert [page["itemsPerPage"] for page in pages] == [2, 2, 1]
    assert [page["startIndex"] for page in pages] == [1, 3, 5]


def test_a_create_answers_exactly_what_a_read_then_returns(client: Client) -> None:
    """The 201 is rendered from the user as written, not read back: it must equal the read
    model's view, for a plain user, one with a password, one with the enterprise extension,
    an inactive one, and with `attributes` / `excludedAttributes` on the POST."""
    enterprise = {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "userName": "enterprise@example.com",
        ENTERPRISE_USER: {"employeeNumber": "701984", "department": "Tour Operations"},
        "active": False,
    }
    for body in (BARBARA, OKTA_CREATE, enterprise):
        created = create(client, body)
        read = client.get(f"/scim/v2/Users/{created['id']}")
        assert read.status_code == 200
        assert created == read.json()
        [listed] = client.get(
            "/scim/v2/Users", params={"filter": f'userName eq "{body["userName"]}"'}
        ).json()["Resources"]
        assert listed == created
    response = client.post(
        "/scim/v2/Users",
        params={"attributes": "userName,emails"},
        json={**BARBARA, "userName": "chosen@example.com"},
    )
    assert response.status_code == 201
    created = response.json()
    assert sorted(created) == ["emails", "id", "schemas", "userName"]
    read = client.get(f"/scim/v2/Users/{created['id']}", params={"attributes": "userName,emails"})
    assert read.json() == created
    assert response.headers["etag"] == read.headers["etag"] == 'W/"1"'
