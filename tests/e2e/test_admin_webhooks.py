"""The admin API for webhook endpoints, /admin/v1/webhooks (admin scope): the same steps as
`scimledger webhooks`, each an event of the endpoint, in the token's organization only."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import UUID

import pytest

from scimledger.http.services import Services
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.projections import audit
from scimledger.projections.runner import Runner
from tests.e2e.test_admin_tokens import admin_token
from tests.scim import Client

URL = "https://hooks.example.com/scim"


@pytest.fixture
def admin(services: Services) -> dict[str, str]:
    return admin_token(services)


def add(client: Client, admin: dict[str, str], **more: object) -> dict[str, object]:
    added = client.post("/admin/v1/webhooks", json={"url": URL, **more}, headers=admin)
    assert added.status_code == 201, added.text
    body: dict[str, object] = added.json()
    return body


def test_an_endpoint_is_added_with_its_secret_shown_once_and_listed_without_it(
    client: Client, admin: dict[str, str]
) -> None:
    added = add(client, admin, types=["user.deactivated", "user.deleted"])
    secret = str(added.pop("secret"))
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    webhook_id = str(added["id"])
    assert added == {
        "id": webhook_id,
        "org": "acme",
        "url": URL,
        "types": ["user.deactivated", "user.deleted"],
        "status": "enabled",
        "created": added["created"],
        "changed": added["created"],
        "reason": None,
    }
    listed = client.get("/admin/v1/webhooks", headers=admin)
    assert listed.json() == {"webhooks": [added]}
    nothing_yet = {
        "done_through": None,
        "failures": 0,
        "failing_since": None,
        "next_attempt_at": None,
    }
    one = client.get(f"/admin/v1/webhooks/{webhook_id}", headers=admin).json()
    assert one == {**added, "delivery": nothing_yet}
    for answer in (listed, client.get(f"/admin/v1/webhooks/{webhook_id}", headers=admin)):
        assert secret.removeprefix("whsec_") not in answer.text


def test_each_step_is_an_event_of_the_endpoint_by_the_token_that_asked(
    client: Client, services: Services, admin: dict[str, str]
) -> None:
    added = add(client, admin)
    webhook_id = str(added["id"])
    path = f"/admin/v1/webhooks/{webhook_id}"
    rotated = client.post(f"{path}/rotate-secret", json={"grace": "0"}, headers=admin)
    assert rotated.status_code == 201
    new_secret = rotated.json()["secret"]
    assert rotated.json() == {"id": webhook_id, "secret": new_secret}
    assert new_secret.startswith("whsec_")
    assert new_secret != added["secret"]
    assert client.post(f"{path}/disable", headers=admin).json()["status"] == "disabled"
    assert client.post(f"{path}/enable", headers=admin).json()["status"] == "enabled"
    replayed = client.post(f"{path}/replay", json={"from": "evt_0"}, headers=admin)
    assert replayed.status_code == 200
    assert client.delete(path, headers=admin).status_code == 204
    assert client.get("/admin/v1/webhooks", headers=admin).json() == {"webhooks": []}
    [removed] = client.get("/admin/v1/webhooks?removed=true", headers=admin).json()["webhooks"]
    assert removed["status"] == "removed"
    assert client.post(f"{path}/enable", headers=admin).status_code == 400  # removed for good
    ledger = services.ledger
    assert [type(event).__name__ for event in ledger.events.get(UUID(webhook_id))] == [
        "Added", "SecretRotated", "Disabled", "Enabled", "Replayed", "Removed",
    ]  # fmt: skip
    assert ledger.webhook_signing_secrets(ledger.webhook(UUID(webhook_id)), datetime.now(UTC)) == []
    Runner(ledger, audit.AuditProjection()).run_once()
    with services.sql.read() as cursor:
        entries = audit.page(cursor, audit.AuditQuery(subject_id=webhook_id), 10)
    assert [(entry["action"], entry["actor_name"]) for entry in entries] == [
        (f"webhook.{action}", "Console")
        for action in ("added", "secret_rotated", "disabled", "enabled", "replayed", "removed")
    ]
    stored = b"".join(
        ledger.mapper.compressor.decompress(item.state)  # type: ignore[union-attr]
        for item in ledger.recorder.select_notifications(start=1, limit=1000)
    )
    for secret in (str(added["secret"]), new_secret):
        assert secret.removeprefix("whsec_").encode() not in stored


@pytest.mark.sqlite_only  # what is tested is the API's, whatever the database
def test_another_organizations_endpoints_answer_404_and_are_not_touched(
    client: Client, services: Services, admin: dict[str, str]
) -> None:
    webhook_id = str(add(client, admin)["id"])
    other = admin_token(services, org="globex")
    assert client.get("/admin/v1/webhooks", headers=other).json() == {"webhooks": []}
    head = services.ledger.recorder.max_notification_id()
    for method, path, body in [
        ("GET", "", None),
        ("POST", "/disable", None),
        ("POST", "/enable", None),
        ("DELETE", "", None),
        ("POST", "/rotate-secret", {"grace": "0"}),
        ("POST", "/replay", {"from": "evt_0"}),
        ("GET", "/deliveries", None),
    ]:
        for who in (webhook_id, "00000000-0000-4000-8000-000000000000", "=cmd|calc"):
            answer = client.request(
                method, f"/admin/v1/webhooks/{who}{path}", json=body, headers=other
            )
            assert (answer.status_code, answer.json()["detail"]) == (404, "No such webhook")
    assert services.ledger.recorder.max_notification_id() == head
    assert client.get(f"/admin/v1/webhooks/{webhook_id}", headers=admin).status_code == 200


@pytest.mark.sqlite_only  # what is tested is the API's, whatever the database
def test_only_admin_tokens_reach_it(client: Client, services: Services) -> None:
    for scope in ("scim", "audit:read", "events:read"):
        answer = client.get("/admin/v1/webhooks", headers=scoped(services, scope))
        assert answer.status_code == 403, scope


def scoped(services: Services, scope: str) -> dict[str, str]:
    issued = services.ledger.issue_token(
        org="acme",
        name=scope,
        expires_at=None,
        actor=Actor.operator("tests"),
        request=RequestInfo.local(),
        scopes=(scope,),
    )
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.mark.sqlite_only  # what is tested is the API's, whatever the database
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"url": "http://hooks.example.com/scim"}, "https"),
        ({"url": '=HYPERLINK("x")'}, "https"),
        ({"url": URL, "types": ["token.issued"]}, "types: unknown type 'token.issued'"),
        ({"url": URL, "secret": "whsec_mine"}, "secret"),
        ({"url": 42}, "url"),
    ],
)
def test_a_bad_endpoint_is_refused_and_nothing_is_recorded(
    client: Client, services: Services, admin: dict[str, str], body: object, detail: str
) -> None:
    head = services.ledger.recorder.max_notification_id()
    answer = client.post("/admin/v1/webhooks", json=body, headers=admin)
    assert answer.status_code == 400, answer.text
    assert detail in answer.json()["detail"]
    assert services.ledger.recorder.max_notification_id() == head


@pytest.mark.sqlite_only  # what is tested is the API's, whatever the database
def test_http_is_accepted_for_development_when_asked(client: Client, admin: dict[str, str]) -> None:
    added = add(client, admin, url="http://127.0.0.1:9/hook", allow_insecure_url=True)
    assert added["url"] == "http://127.0.0.1:9/hook"


@pytest.mark.sqlite_only  # what is tested is the API's, whatever the database
def test_a_bad_replay_cursor_or_limit_is_refused(client: Client, admin: dict[str, str]) -> None:
    path = f"/admin/v1/webhooks/{add(client, admin)['id']}"
    for cursor in ("42", "evt_-1", "evt_99999999999999999999", "<script>"):
        answer = client.post(f"{path}/replay", json={"from": cursor}, headers=admin)
        assert answer.status_code == 400
        assert answer.json()["detail"] == (
            "from must be an event's id, such as evt_42 (evt_0: every change)"
        )
    for limit in ("0", "1001", "9" * 30, "%C2%B2"):
        answer = client.get(f"{path}/deliveries?limit={limit}", headers=admin)
        assert answer.status_code == 400
        assert answer.json()["detail"] == "limit must be a whole number from 1 to 1000"
    assert client.get(f"{path}/deliveries", headers=admin).json() == {"deliveries": []}
