"""The reviewers' HTTP API: /admin/v1, for tokens with the audit:read scope only."""

from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

import pytest
from freezegun import freeze_time

from scimledger.http.services import Services
from scimledger.ledger.context import Actor, RequestInfo
from tests.scim import PATCH_OP, Client


def audit_token(services: Services, org: str = "acme") -> str:
    issued = services.ledger.issue_token(
        org=org,
        name="Reviewer",
        expires_at=None,
        actor=Actor(kind="operator", id="tests", name="tester"),
        request=RequestInfo(request_id="t"),
        scopes=("audit:read",),
    )
    return issued.token


def as_reviewer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def reviewer(services: Services) -> dict[str, str]:
    return as_reviewer(audit_token(services))


def create(client: Client, user_name: str) -> str:
    response = client.post("/scim/v2/Users", json={"userName": user_name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def deactivate(client: Client, user_id: str) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    assert client.patch(f"/scim/v2/Users/{user_id}", json=body).status_code == 200


def test_an_audit_token_reads_its_organizations_trail(
    client: Client,
    reviewer: dict[str, str],
) -> None:
    user_id = create(client, "bjensen@example.com")
    response = client.get("/admin/v1/audit", headers=reviewer)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["next"] is None
    assert [(e["action"], e["subject_name"]) for e in body["entries"]] == [
        ("organization.created", "acme"),
        ("token.issued", "Okta"),
        ("token.issued", "Reviewer"),
        ("user.created", "bjensen@example.com"),
    ]
    assert body["entries"][3]["subject_id"] == user_id


def test_a_scim_token_cannot_read_the_trail(client: Client) -> None:
    response = client.get("/admin/v1/audit")
    assert response.status_code == 403
    assert response.json() == {
        "status": 403,
        "error": "forbidden",
        "detail": "This token may not read the audit trail",
    }


@pytest.mark.parametrize(("method", "path"), [("GET", "/Users"), ("POST", "/Users")])
def test_an_audit_token_cannot_provision(
    client: Client,
    reviewer: dict[str, str],
    method: str,
    path: str,
) -> None:
    response = client.request(method, f"/scim/v2{path}", headers=reviewer, json={"userName": "x"})
    assert response.status_code == 403
    assert response.json()["detail"] == "This token may not provision users"


def test_no_token_answers_401_in_the_admin_shape(
    client: Client,
) -> None:
    response = client.get("/admin/v1/audit", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json() == {
        "status": 401,
        "error": "unauthorized",
        "detail": "Missing or invalid bearer token",
    }
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_organizations_reviewer_sees_none_of_it(
    client: Client,
    services: Services,
) -> None:
    user_id = create(client, "bjensen@example.com")
    other = as_reviewer(audit_token(services, org="globex"))
    entries = client.get("/admin/v1/audit", headers=other).json()["entries"]
    assert [(e["action"], e["subject_name"]) for e in entries] == [
        ("organization.created", "globex"),
        ("token.issued", "Reviewer"),
    ]
    assert client.get(f"/admin/v1/users/{user_id}/history", headers=other).status_code == 404
    at = client.get(f"/admin/v1/users/{user_id}", params={"at": "2100-01-01"}, headers=other)
    assert at.status_code == 404


def test_the_cursor_pages_through_every_entry_once(
    client: Client,
    reviewer: dict[str, str],
) -> None:
    for n in range(5):
        create(client, f"user{n}@example.com")
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        body = client.get("/admin/v1/audit", params=params, headers=reviewer).json()
        seen += [e["position"] for e in body["entries"]]
        if body["next"] is None:
            break
        params["after"] = body["next"]
    assert len(seen) == 8  # organization, two tokens, five users
    assert seen == sorted(set(seen))


def test_filters_by_action_subject_and_time(
    client: Client,
    reviewer: dict[str, str],
) -> None:
    with freeze_time("2026-01-10T12:00:00Z"):
        first = create(client, "first@example.com")
        deactivate(client, first)
    with freeze_time("2026-03-10T12:00:00Z"):
        second = create(client, "second@example.com")
        deactivate(client, second)
    body = client.get(
        "/admin/v1/audit",
        params={"action": "user.deactivated", "since": "2026-02-01", "until": "2026-04-01"},
        headers=reviewer,
    ).json()
    assert [(e["subject_id"], e["occurred_at"]) for e in body["entries"]] == [
        (second, "2026-03-10T12:00:00.000Z")
    ]
    by_name = client.get(
        "/admin/v1/audit", params={"subject": "FIRST@example.com"}, headers=reviewer
    ).json()
    assert [e["action"] for e in by_name["entries"]] == ["user.created", "user.deactivated"]


def test_csv_streams_every_matching_entry(
    client: Client,
    reviewer: dict[str, str],
) -> None:
    user_id = create(client, "bjensen@example.com")
    response = client.get(
        "/admin/v1/audit", params={"format": "csv", "subject": user_id}, headers=reviewer
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["action"], r["subject_id"], r["actor_name"]) for r in rows] == [
        ("user.created", user_id, "Okta")
    ]


def test_history_and_state_at_a_time(
    client: Client,
    reviewer: dict[str, str],
) -> None:
    with freeze_time("2026-01-10T12:00:00Z"):
        user_id = create(client, "bjensen@example.com")
    with freeze_time("2026-03-10T12:00:00Z"):
        deactivate(client, user_id)
    history = client.get(f"/admin/v1/users/{user_id}/history", headers=reviewer).json()
    assert [(e["action"], e["occurred_at"]) for e in history["entries"]] == [
        ("user.created", "2026-01-10T12:00:00.000Z"),
        ("user.deactivated", "2026-03-10T12:00:00.000Z"),
    ]
    in_february = client.get(
        f"/admin/v1/users/{user_id}", params={"at": "2026-02-01T00:00:00Z"}, headers=reviewer
    ).json()
    assert (in_february["active"], in_february["meta"]["version"]) == (True, 'W/"1"')
    in_april = client.get(
        f"/admin/v1/users/{user_id}", params={"at": "2026-04-01"}, headers=reviewer
    ).json()
    assert (in_april["active"], in_april["meta"]["version"]) == (False, 'W/"2"')
    before = client.get(f"/admin/v1/users/{user_id}", params={"at": "2025-12-01"}, headers=reviewer)
    assert before.status_code == 404


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "many"}, {"since": "yesterday"}, {"after": "-1"}]
)
def test_bad_parameters_answer_400(
    client: Client,
    reviewer: dict[str, str],
    params: dict[str, str],
) -> None:
    response = client.get("/admin/v1/audit", params=params, headers=reviewer)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_the_revoked_token_users_report_is_served(
    client: Client,
    services: Services,
    reviewer: dict[str, str],
) -> None:
    user_id = create(client, "kept@example.com")
    okta = client.headers["Authorization"].removeprefix("Bearer ")
    token_id = okta.split("_")[1]
    services.ledger.revoke_token(
        UUID(hex=token_id), Actor(kind="operator", id="tests", name="t"), RequestInfo("r")
    )
    body = client.get("/admin/v1/reports/revoked-token-users", headers=reviewer).json()
    assert [(u["user_id"], u["user_name"], u["token_name"]) for u in body["users"]] == [
        (user_id, "kept@example.com", "Okta")
    ]
