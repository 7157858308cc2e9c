"""Bearer-token authentication and organization isolation over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from freezegun import freeze_time

from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from tests.conftest import issue
from tests.scim import CORE_USER, ERROR, LIST_RESPONSE, PATCH_OP, Client

OPERATOR = Actor(kind="operator", id="tests", name="t")
UNAUTHORIZED = {
    "schemas": [ERROR],
    "status": "401",
    "detail": "Missing or invalid bearer token",
}
NOT_FOUND = {"schemas": [ERROR], "status": "404", "detail": "Resource not found"}
BARBARA = {"schemas": [CORE_USER], "userName": "bjensen@example.com", "displayName": "Babs"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/scim+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == UNAUTHORIZED


def with_wrong_secret(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


# Rejected tokens


def test_request_without_authorization_header_answers_401(
    client: Client,
) -> None:
    del client.headers["Authorization"]

    assert_unauthorized(client.get("/scim/v2/Users"))


@pytest.mark.parametrize(
    "header",
    ["Bearer definitely-wrong", "non-token", "Bearer ", "Basic dXNlcjpwYXNz"],
)
def test_malformed_authorization_header_answers_401(
    client: Client,
    header: str,
) -> None:
    assert_unauthorized(client.get("/scim/v2/Users", headers={"Authorization": header}))


def test_token_with_a_wrong_secret_answers_401(
    client: Client,
    token: IssuedToken,
) -> None:
    response = client.get("/scim/v2/Users", headers=bearer(with_wrong_secret(token.token)))

    assert_unauthorized(response)


def test_revoked_token_answers_401(
    client: Client,
    services: Services,
    token: IssuedToken,
) -> None:
    assert client.get("/scim/v2/Users").status_code == 200
    services.ledger.revoke_token(UUID(str(token.id)), OPERATOR, RequestInfo(request_id="t"))

    assert_unauthorized(client.get("/scim/v2/Users"))


def test_expired_token_answers_401(
    client: Client,
    services: Services,
) -> None:
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    old = services.ledger.issue_token(
        org="acme",
        name="old",
        expires_at=expires_at,
        actor=OPERATOR,
        request=RequestInfo(request_id="t"),
    )
    assert client.get("/scim/v2/Users", headers=bearer(old.token)).status_code == 200

    with freeze_time(expires_at + timedelta(seconds=1)):
        response = client.get("/scim/v2/Users", headers=bearer(old.token))

    assert_unauthorized(response)


def test_rejected_request_creates_nothing(
    client: Client,
) -> None:
    response = client.post(
        "/scim/v2/Users", json=BARBARA, headers={"Authorization": "Bearer definitely-wrong"}
    )

    assert_unauthorized(response)
    assert client.get("/scim/v2/Users").json()["totalResults"] == 0


# Accepted tokens


def test_token_pasted_with_its_own_bearer_prefix_is_accepted(
    client: Client,
    token: IssuedToken,
) -> None:
    response = client.get(
        "/scim/v2/Users", headers={"Authorization": f"Bearer Bearer {token.token}"}
    )

    assert response.status_code == 200
    assert response.json()["schemas"] == [LIST_RESPONSE]


# Organization isolation


@pytest.fixture
def globex(services: Services) -> dict[str, str]:
    return bearer(issue(services.ledger, org="globex").token)


@pytest.fixture
def acme_user(client: Client) -> dict[str, Any]:
    response = client.post("/scim/v2/Users", json=BARBARA)
    assert response.status_code == 201
    user: dict[str, Any] = response.json()
    return user


def test_other_organization_cannot_get_a_user(
    client: Client,
    globex: dict[str, str],
    acme_user: dict[str, Any],
) -> None:
    response = client.get(f"/scim/v2/Users/{acme_user['id']}", headers=globex)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_other_organization_cannot_replace_a_user(
    client: Client,
    globex: dict[str, str],
    acme_user: dict[str, Any],
) -> None:
    response = client.put(
        f"/scim/v2/Users/{acme_user['id']}",
        json={**BARBARA, "displayName": "Hijacked"},
        headers=globex,
    )

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert client.get(f"/scim/v2/Users/{acme_user['id']}").json() == acme_user


def test_other_organization_cannot_patch_a_user(
    client: Client,
    globex: dict[str, str],
    acme_user: dict[str, Any],
) -> None:
    response = client.patch(
        f"/scim/v2/Users/{acme_user['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
        headers=globex,
    )

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert client.get(f"/scim/v2/Users/{acme_user['id']}").json() == acme_user


def test_other_organization_cannot_delete_a_user(
    client: Client,
    globex: dict[str, str],
    acme_user: dict[str, Any],
) -> None:
    response = client.delete(f"/scim/v2/Users/{acme_user['id']}", headers=globex)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert client.get(f"/scim/v2/Users/{acme_user['id']}").json() == acme_user


def test_other_organization_lists_no_users(
    client: Client,
    globex: dict[str, str],
    acme_user: dict[str, Any],
) -> None:
    response = client.get("/scim/v2/Users", headers=globex)

    assert response.json() == {
        "schemas": [LIST_RESPONSE],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }


def test_user_name_is_unique_per_organization_only(
    client: Client,
    globex: dict[str, str],
    acme_user: dict[str, Any],
) -> None:
    response = client.post("/scim/v2/Users", json=BARBARA, headers=globex)

    assert response.status_code == 201
    created = response.json()
    assert created["userName"] == "bjensen@example.com"
    assert created["id"] != acme_user["id"]
    assert client.get("/scim/v2/Users").json()["Resources"] == [acme_user]
    assert client.get("/scim/v2/Users", headers=globex).json()["Resources"] == [created]
