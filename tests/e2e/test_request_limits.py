"""Requests the server refuses before touching the ledger."""

from __future__ import annotations

from litestar.testing import TestClient

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def test_body_over_one_mebibyte_answers_413_and_creates_nothing(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    body = b'{"userName": "big@example.com", "title": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(
        "/scim/v2/Users", content=body, headers={"Content-Type": "application/scim+json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "schemas": [ERROR],
        "status": "413",
        "detail": "Request body too large",
    }
    assert client.get("/scim/v2/Users").json()["totalResults"] == 0


def test_patch_body_that_is_not_a_patch_op_answers_400_and_changes_nothing(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    created = client.post("/scim/v2/Users", json={"userName": "p@example.com"}).json()
    response = client.patch(
        f"/scim/v2/Users/{created['id']}", json={"Operations": [{"op": "replace"}]}
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"
    assert client.get(f"/scim/v2/Users/{created['id']}").json() == created


def test_patch_with_one_invalid_operation_applies_none(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    created = client.post("/scim/v2/Users", json={"userName": "q@example.com"}).json()
    response = client.patch(
        f"/scim/v2/Users/{created['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "title", "value": "CEO"},
                {"op": "replace", "path": "nickName", "value": 7},
            ],
        },
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert client.get(f"/scim/v2/Users/{created['id']}").json() == created
