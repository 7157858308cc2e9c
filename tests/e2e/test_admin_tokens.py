"""The admin API for tokens and admins: /admin/v1/tokens and /admin/v1/admins (admin scope)."""

from __future__ import annotations

import pytest

from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.tokens import Scope, parse_token
from tests.scim import Client


def admin_token(
    services: Services, org: str = "acme", scopes: tuple[Scope, ...] = ("admin",)
) -> dict[str, str]:
    issued = services.ledger.issue_token(
        org=org,
        name="Console",
        expires_at=None,
        actor=Actor(kind="operator", id="tests", name="tester"),
        request=RequestInfo(request_id="t"),
        scopes=scopes,
    )
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.fixture
def admin(services: Services) -> dict[str, str]:
    return admin_token(services)


def scim_status(client: Client, token: str) -> int:
    response = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_an_admin_token_lists_its_organizations_tokens_without_secrets(
    client: Client,
    admin: dict[str, str],
    token: IssuedToken,
) -> None:
    response = client.get("/admin/v1/tokens", headers=admin)
    assert response.status_code == 200
    listed = response.json()["tokens"]
    assert [(t["name"], t["scopes"], t["status"]) for t in listed] == [
        ("Okta", ["scim"], "active"),
        ("Console", ["admin"], "active"),
    ]
    assert parse_token(token.token).secret not in response.text


def test_issue_revoke_through_the_api(
    client: Client,
    admin: dict[str, str],
) -> None:
    issued = client.post(
        "/admin/v1/tokens", json={"name": "Entra", "expires": "30d"}, headers=admin
    )
    assert issued.status_code == 201
    body = issued.json()
    assert sorted(body) == ["expires_at", "id", "name", "org", "token"]
    assert (body["name"], body["org"]) == ("Entra", "acme")
    assert scim_status(client, body["token"]) == 200
    revoked = client.post(f"/admin/v1/tokens/{body['id']}/revoke", headers=admin)
    assert revoked.json() == {"id": body["id"], "status": "revoked"}
    assert scim_status(client, body["token"]) == 401


def test_rotate_through_the_api(
    client: Client,
    admin: dict[str, str],
    token: IssuedToken,
) -> None:
    rotated = client.post(f"/admin/v1/tokens/{token.id}/rotate", json={"grace": "0"}, headers=admin)
    assert rotated.status_code == 201
    successor = rotated.json()
    assert successor["name"] == "Okta"
    assert scim_status(client, successor["token"]) == 200
    assert scim_status(client, token.token) == 401  # no grace at all


def test_admins_are_added_listed_and_removed(
    client: Client,
    admin: dict[str, str],
) -> None:
    added = client.post("/admin/v1/admins", json={"email": "Alice@Example.com"}, headers=admin)
    assert (added.status_code, added.json()) == (
        201,
        {"admins": ["alice@example.com"], "reviewers": []},
    )
    issued = client.post(
        "/admin/v1/tokens",
        json={"name": "For Alice", "by": "alice@example.com", "scopes": ["scim", "audit:read"]},
        headers=admin,
    )
    assert issued.status_code == 201
    assert client.delete("/admin/v1/admins/alice@example.com", headers=admin).status_code == 204
    assert client.get("/admin/v1/admins", headers=admin).json() == {"admins": [], "reviewers": []}
    statuses = {
        t["name"]: t["status"]
        for t in client.get("/admin/v1/tokens", headers=admin).json()["tokens"]
    }
    assert statuses["For Alice"] == "issuer departed"
    gone = client.delete("/admin/v1/admins/alice@example.com", headers=admin)
    assert gone.status_code == 404


def test_another_organizations_token_is_not_found(
    client: Client,
    services: Services,
    token: IssuedToken,
) -> None:
    other = admin_token(services, org="globex")
    for action in ("revoke", "rotate"):
        response = client.post(f"/admin/v1/tokens/{token.id}/{action}", headers=other)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert scim_status(client, token.token) == 200


def test_scopes_keep_each_token_to_its_job(
    client: Client,
    admin: dict[str, str],
) -> None:
    assert client.get("/admin/v1/tokens").status_code == 403  # the client's SCIM token
    assert client.get("/scim/v2/Users", headers=admin).status_code == 403
    assert client.get("/admin/v1/audit", headers=admin).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "expires": "soon"},
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "by": "nobody@example.com"},
        {"expires": "never"},
        {"name": 5},
    ],
)
def test_bad_token_requests_answer_400(
    client: Client,
    admin: dict[str, str],
    body: dict[str, object],
) -> None:
    response = client.post("/admin/v1/tokens", json=body, headers=admin)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_the_admin_api_is_described_by_an_openapi_document(
    client: Client,
) -> None:
    response = client.get("/admin/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "scimledger admin API"
    assert sorted(document["paths"]) == [
        "/admin/v1/admins",
        "/admin/v1/admins/{email}",
        "/admin/v1/audit",
        "/admin/v1/events",
        "/admin/v1/reports/revoked-token-users",
        "/admin/v1/schemas",
        "/admin/v1/schemas/{urn}",
        "/admin/v1/settings",
        "/admin/v1/tokens",
        "/admin/v1/tokens/{token_id}/revoke",
        "/admin/v1/tokens/{token_id}/rotate",
        "/admin/v1/users/{user_id}",
        "/admin/v1/users/{user_id}/erase",
        "/admin/v1/users/{user_id}/history",
        "/admin/v1/webhooks",
        "/admin/v1/webhooks/{webhook_id}",
        "/admin/v1/webhooks/{webhook_id}/deliveries",
        "/admin/v1/webhooks/{webhook_id}/disable",
        "/admin/v1/webhooks/{webhook_id}/enable",
        "/admin/v1/webhooks/{webhook_id}/replay",
        "/admin/v1/webhooks/{webhook_id}/rotate-secret",
    ]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    issue = document["paths"]["/admin/v1/tokens"]["post"]
    assert issue["description"].startswith("Issue a token")
    body = issue["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    token_request = document["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert sorted(token_request["properties"]) == ["by", "expires", "name", "scopes"]
    assert token_request["required"] == ["name"]


def test_a_reviewer_is_added_through_the_api_and_cannot_be_issued_tokens(
    client: Client,
    admin: dict[str, str],
) -> None:
    added = client.post(
        "/admin/v1/admins", json={"email": "rita@example.com", "role": "reviewer"}, headers=admin
    )
    assert added.json() == {"admins": [], "reviewers": ["rita@example.com"]}
    refused = client.post(
        "/admin/v1/tokens", json={"name": "For Rita", "by": "rita@example.com"}, headers=admin
    )
    assert refused.status_code == 400
    assert "rita@example.com is not an admin of acme" in refused.json()["detail"]
    bad = client.post(
        "/admin/v1/admins", json={"email": "x@example.com", "role": "owner"}, headers=admin
    )
    assert bad.status_code == 400
    assert client.get("/admin/v1/admins", headers=admin).json() == {
        "admins": [],
        "reviewers": ["rita@example.com"],
    }
