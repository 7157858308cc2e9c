"""ETags, If-Match and If-None-Match (RFC 7644 section 3.14) on users and groups."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scim import ERROR, PATCH_OP, Client


def create_user(client: Client) -> dict[str, Any]:
    response = client.post("/scim/v2/Users", json={"userName": "etag@example.com"})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def retitle(title: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": title}],
    }


def test_get_answers_the_version_as_etag(client: Client) -> None:
    user = create_user(client)
    response = client.get(f"/scim/v2/Users/{user['id']}")
    assert response.headers["ETag"] == 'W/"1"' == response.json()["meta"]["version"]


def test_if_none_match_with_the_current_version_answers_304(
    client: Client,
) -> None:
    user = create_user(client)
    response = client.get(f"/scim/v2/Users/{user['id']}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == 'W/"1"'


def test_if_none_match_with_an_old_version_answers_200(
    client: Client,
) -> None:
    user = create_user(client)
    client.patch(f"/scim/v2/Users/{user['id']}", json=retitle("CEO"))
    response = client.get(f"/scim/v2/Users/{user['id']}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 200
    assert response.json()["title"] == "CEO"


@pytest.mark.parametrize("if_match", ['W/"1"', '"1"', "*", 'W/"7", W/"1"'])
def test_patch_with_a_matching_if_match_applies(
    client: Client,
    if_match: str,
) -> None:
    user = create_user(client)
    response = client.patch(
        f"/scim/v2/Users/{user['id']}", json=retitle("CEO"), headers={"If-Match": if_match}
    )
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"'


def test_patch_with_a_stale_if_match_answers_412_and_records_nothing(
    client: Client,
) -> None:
    user = create_user(client)
    client.patch(f"/scim/v2/Users/{user['id']}", json=retitle("CEO"))
    response = client.patch(
        f"/scim/v2/Users/{user['id']}", json=retitle("CTO"), headers={"If-Match": 'W/"1"'}
    )
    assert response.status_code == 412
    assert response.json() == {
        "schemas": [ERROR],
        "status": "412",
        "detail": 'If-Match W/"1" does not match the current version W/"2"',
    }
    after = client.get(f"/scim/v2/Users/{user['id']}").json()
    assert (after["title"], after["meta"]["version"]) == ("CEO", 'W/"2"')


def test_put_with_a_stale_if_match_answers_412(client: Client) -> None:
    user = create_user(client)
    client.patch(f"/scim/v2/Users/{user['id']}", json=retitle("CEO"))
    response = client.put(
        f"/scim/v2/Users/{user['id']}",
        json={"userName": "etag@example.com"},
        headers={"If-Match": 'W/"1"'},
    )
    assert response.status_code == 412
    assert client.get(f"/scim/v2/Users/{user['id']}").json()["title"] == "CEO"


def test_delete_with_a_stale_if_match_answers_412_and_keeps_the_user(
    client: Client,
) -> None:
    user = create_user(client)
    client.patch(f"/scim/v2/Users/{user['id']}", json=retitle("CEO"))
    response = client.delete(f"/scim/v2/Users/{user['id']}", headers={"If-Match": 'W/"1"'})
    assert response.status_code == 412
    assert client.get(f"/scim/v2/Users/{user['id']}").status_code == 200
    deleted = client.delete(f"/scim/v2/Users/{user['id']}", headers={"If-Match": 'W/"2"'})
    assert deleted.status_code == 204


def test_group_patch_with_a_stale_if_match_answers_412(
    client: Client,
) -> None:
    group = client.post("/scim/v2/Groups", json={"displayName": "Etag group"}).json()
    operation = {"op": "replace", "path": "displayName", "value": "Renamed"}
    rename = {"schemas": [PATCH_OP], "Operations": [operation]}
    assert client.patch(f"/scim/v2/Groups/{group['id']}", json=rename).status_code == 200
    stale = client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={**rename, "Operations": [{**operation, "value": "Again"}]},
        headers={"If-Match": 'W/"1"'},
    )
    assert stale.status_code == 412
    assert client.get(f"/scim/v2/Groups/{group['id']}").json()["displayName"] == "Renamed"
    gone = client.delete(f"/scim/v2/Groups/{group['id']}", headers={"If-Match": 'W/"1"'})
    assert gone.status_code == 412
