"""Erasure through the admin API (POST /admin/v1/users/{id}/erase), and what every reader
sees of the person afterwards: SCIM 404, the point-in-time view 410, their history and the
events feed with their entries kept and their values `[erased]`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken
from tests.e2e.test_admin_tokens import admin_token
from tests.scim import Client

ZOE = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "zoe.erase@example.com",
    "name": {"givenName": "Zoë", "familyName": "Quennell"},
    "emails": [{"value": "zoe.private@example.org", "type": "home"}],
    "phoneNumbers": [{"value": "+44 20 7946 0958"}],
    "title": '=HYPERLINK("http://x")',
    "active": True,
}
PERSONAL = ("zoe.erase", "Zoë", "Zo\\u00eb", "Quennell", "zoe.private", "7946", "HYPERLINK")


def tokens_of(services: Services, org: str = "acme") -> dict[str, str]:
    return admin_token(services, org, scopes=("admin", "audit:read", "events:read"))


@pytest.fixture
def admin(services: Services) -> dict[str, str]:
    return tokens_of(services)


def created(client: Client, **changes: Any) -> str:
    response = client.post("/scim/v2/Users", json={**ZOE, **changes})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def erase(client: Client, admin: dict[str, str], user_id: str, **body: Any) -> Any:
    return client.post(
        f"/admin/v1/users/{user_id}/erase", json={"reason": "DSR-7", **body}, headers=admin
    )


def test_an_erased_user_is_gone_from_scim_and_their_history_and_feed_keep_no_value(
    client: Client, admin: dict[str, str], services: Services
) -> None:
    user_id = created(client)
    created_at = client.get(f"/scim/v2/Users/{user_id}").json()["meta"]["created"]
    assert client.delete(f"/scim/v2/Users/{user_id}").status_code == 204

    erased = erase(client, admin, user_id)

    assert erased.status_code == 200, erased.text
    assert erased.json() == {"id": user_id, "erased": True, "changed": True}
    assert client.get(f"/scim/v2/Users/{user_id}").status_code == 404
    at = client.get(f"/admin/v1/users/{user_id}", params={"at": created_at}, headers=admin)
    assert at.status_code == 410
    assert at.json()["error"] == "gone"
    assert at.json()["detail"].startswith(f"User {user_id} was erased at ")
    history = client.get(f"/admin/v1/users/{user_id}/history", headers=admin)
    assert history.status_code == 200
    entries = history.json()["entries"]
    assert [e["action"] for e in entries] == ["user.created", "user.deleted", "user.erased"]
    assert {e["subject_name"] for e in entries} == {"[erased]"}
    assert entries[0]["changes"]["name"] == {"before": None, "after": "[erased]"}
    assert entries[0]["changes"]["active"] == {"before": None, "after": True}
    assert entries[2]["changes"] == {"reason": "DSR-7"}
    feed = client.get("/admin/v1/events", params={"types": "user.erased"}, headers=admin)
    assert [(e["type"], e["subject"]["id"]) for e in feed.json()["data"]] == [
        ("user.erased", user_id)
    ]
    everything = client.get("/admin/v1/events", headers=admin).text
    assert everything.count(user_id) >= 3
    for value in PERSONAL:
        assert value not in history.text
        assert value not in everything
    again = erase(client, admin, user_id)
    assert again.json() == {"id": user_id, "erased": True, "changed": False}
    # The userName is free for someone else.
    assert created(client) != user_id


def test_an_active_user_is_refused_unless_forced(
    client: Client, admin: dict[str, str], services: Services
) -> None:
    user_id = created(client)
    refused = erase(client, admin, user_id)
    assert refused.status_code == 409
    assert "is active: deactivate or delete them first" in refused.json()["detail"]
    assert client.get(f"/scim/v2/Users/{user_id}").status_code == 200
    forced = erase(client, admin, user_id, force=True)
    assert forced.status_code == 200
    assert client.get(f"/scim/v2/Users/{user_id}").status_code == 404


def test_a_deactivated_user_is_erased_without_force(client: Client, admin: dict[str, str]) -> None:
    user_id = created(client, active=False)
    assert erase(client, admin, user_id).status_code == 200
    assert client.get(f"/scim/v2/Users/{user_id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"reason": ""}, 400, "give the erasure's reason"),
        ({"reason": "a\x1b[2Jb"}, 400, "without control characters"),
        ({"reason": "x" * 501}, 400, "at most 500 characters"),
        ({"reason": "DSR", "who": "zoe"}, 400, "who"),
        ({}, 400, "reason"),
    ],
)
def test_a_bad_request_is_refused_and_changes_nothing(
    client: Client, admin: dict[str, str], body: dict[str, Any], status: int, detail: str
) -> None:
    user_id = created(client, active=False)
    response = client.post(f"/admin/v1/users/{user_id}/erase", json=body, headers=admin)
    assert response.status_code == status
    assert detail in response.json()["detail"]
    history = client.get(f"/admin/v1/users/{user_id}/history", headers=admin).json()
    assert [e["action"] for e in history["entries"]] == ["user.created"]


def test_another_organizations_user_and_a_token_without_admin_scope_are_refused(
    client: Client, services: Services, token: IssuedToken
) -> None:
    user_id = created(client, active=False)
    globex = tokens_of(services, "globex")
    assert erase(client, globex, user_id).status_code == 404
    assert erase(client, globex, "not-a-uuid").status_code == 404
    scim_only = {"Authorization": f"Bearer {token.token}"}
    assert erase(client, scim_only, user_id).status_code == 403
    assert client.get(f"/scim/v2/Users/{user_id}").status_code == 200


def test_the_feed_shows_the_erasure_to_consumers(client: Client, admin: dict[str, str]) -> None:
    user_id = created(client, active=False)
    erase(client, admin, user_id)
    events = client.get("/admin/v1/events", headers=admin).json()["data"]
    mine = [e for e in events if e["subject"]["id"] == user_id]
    assert [e["type"] for e in mine] == ["user.created", "user.deleted", "user.erased"]
    assert [e["data"] for e in mine] == [None, None, None]
    assert json.dumps(mine).count("[erased]") >= 4


def test_the_retention_period_is_set_through_the_admin_api(
    client: Client, admin: dict[str, str]
) -> None:
    changed = client.patch(
        "/admin/v1/settings", json={"erase_deleted_after_seconds": 2592000}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["erase_deleted_after_seconds"] == 2592000
    bad = client.patch(
        "/admin/v1/settings", json={"erase_deleted_after_seconds": -5}, headers=admin
    )
    assert bad.status_code == 400
    off = client.patch(
        "/admin/v1/settings", json={"erase_deleted_after_seconds": None}, headers=admin
    )
    assert off.json()["erase_deleted_after_seconds"] is None
