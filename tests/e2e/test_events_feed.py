"""The events feed, GET /admin/v1/events, for tokens with the events:read scope."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from freezegun import freeze_time

from scimledger.http.services import Services
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.projections import audit
from scimledger.projections.feed import TYPES
from scimledger.projections.rebuild import rebuild
from tests.conftest import app_for
from tests.scim import PATCH_OP, Client

OPERATOR = Actor(kind="operator", id="tests", name="tester")


def token_of(services: Services, org: str = "acme", scope: str = "events:read") -> str:
    issued = services.ledger.issue_token(
        org=org,
        name="Product",
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo(request_id="t"),
        scopes=(scope,),
    )
    return issued.token


@pytest.fixture
def product(services: Services) -> dict[str, str]:
    """The headers of the product that follows acme's changes."""
    return {"Authorization": f"Bearer {token_of(services)}"}


def events(client: Client, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    answer = client.get(f"/admin/v1/events{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    return body


def create(client: Client, user_name: str, **more: Any) -> str:
    answer = client.post("/scim/v2/Users", json={"userName": user_name, **more})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def patch(client: Client, path: str, *operations: dict[str, Any]) -> None:
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    answer = client.patch(path, json=body)
    assert answer.status_code in (200, 204), answer.text


def test_a_users_changes_in_log_order_each_with_the_resource_after_it(
    client: Client, product: dict[str, str]
) -> None:
    user_id = create(client, "bjensen@example.com", name={"givenName": "Barbara"})
    patch(client, f"/scim/v2/Users/{user_id}", {"op": "replace", "path": "title", "value": "CTO"})
    patch(client, f"/scim/v2/Users/{user_id}", {"op": "replace", "value": {"active": False}})
    assert client.delete(f"/scim/v2/Users/{user_id}").status_code == 204
    page = events(client, product)
    kinds = [(event["type"], event["subject"]) for event in page["data"]]
    subject = {"type": "User", "id": user_id}
    assert kinds == [
        ("user.created", subject),
        ("user.updated", subject),
        ("user.deactivated", subject),
        ("user.deleted", subject),
    ]
    created, updated, deactivated, deleted = page["data"]
    positions = [int(event["id"].removeprefix("evt_")) for event in page["data"]]
    assert positions == sorted(positions)
    assert page["next"] == deleted["id"]
    assert created["actor"] == {"kind": "token", "id": created["actor"]["id"], "name": "Okta"}
    assert created["data"]["userName"] == "bjensen@example.com"
    assert created["data"]["name"] == {"givenName": "Barbara"}
    assert created["data"]["active"] is True
    assert created["data"]["meta"]["version"] == 'W/"1"'
    assert created["data"]["meta"]["location"] == f"http://scim.test/scim/v2/Users/{user_id}"
    assert updated["changes"] == {"title": {"before": None, "after": "CTO"}}
    assert updated["data"]["title"] == "CTO"
    assert updated["data"]["meta"]["created"] == created["data"]["meta"]["created"]
    assert deactivated["changes"] == {"active": {"before": True, "after": False}}
    assert deactivated["data"]["active"] is False
    assert deactivated["data"]["title"] == "CTO"
    assert deleted["data"] is None  # a deleted subject carries no personal data
    assert deleted["changes"] == {}


def test_each_resource_was_last_modified_when_its_change_occurred(
    client: Client, product: dict[str, str]
) -> None:
    with freeze_time("2026-03-01T09:00:00.123Z"):
        user_id = create(client, "dates@example.com")
    with freeze_time("2026-03-02T10:30:00.456Z"):
        patch(client, f"/scim/v2/Users/{user_id}", {"op": "replace", "path": "title", "value": "X"})
    created, updated = events(client, product)["data"]
    assert [
        (e["occurred_at"], e["data"]["meta"]["created"], e["data"]["meta"]["lastModified"])
        for e in (created, updated)
    ] == [
        ("2026-03-01T09:00:00.123Z", "2026-03-01T09:00:00.123Z", "2026-03-01T09:00:00.123Z"),
        ("2026-03-02T10:30:00.456Z", "2026-03-01T09:00:00.123Z", "2026-03-02T10:30:00.456Z"),
    ]


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_password_is_never_in_the_feed(client: Client, product: dict[str, str]) -> None:
    user_id = create(client, "pw@example.com", password="Hunter2-secret!")
    patch(
        client, f"/scim/v2/Users/{user_id}", {"op": "replace", "path": "password", "value": "N3w!"}
    )
    answer = client.get("/admin/v1/events", headers=product)
    assert "Hunter2" not in answer.text
    assert "N3w!" not in answer.text
    kinds = [event["type"] for event in answer.json()["data"]]
    # A password given at creation is set by an event of its own, as any later one.
    assert kinds == ["user.created", "user.password_changed", "user.password_changed"]


def test_groups_come_without_their_members_which_change_in_events_of_their_own(
    client: Client, product: dict[str, str]
) -> None:
    user_id = create(client, "member@example.com")
    answer = client.post(
        "/scim/v2/Groups",
        json={"displayName": "Admins", "externalId": "g-1", "members": [{"value": user_id}]},
    )
    assert answer.status_code == 201, answer.text
    group_id = answer.json()["id"]
    patch(
        client,
        f"/scim/v2/Groups/{group_id}",
        {"op": "remove", "path": f'members[value eq "{user_id}"]'},
    )
    page = events(client, product, "?types=group.created,group.members_added,group.members_removed")
    [created, *membership] = page["data"]
    assert created["type"] == "group.created"
    assert created["data"]["displayName"] == "Admins"
    assert created["data"]["externalId"] == "g-1"
    assert "members" not in created["data"]
    assert [(e["type"], e["changes"]) for e in membership] == [
        ("group.members_added", {"members": {"added": [user_id]}}),
        ("group.members_removed", {"members": {"removed": [user_id]}}),
    ]
    assert membership[-1]["data"]["meta"]["version"] == 'W/"3"'


def test_pages_follow_each_other_by_cursor_without_a_skip_or_a_repeat_across_gaps(
    client: Client, services: Services, product: dict[str, str]
) -> None:
    other = TestOrg(services, "globex")
    for number in range(5):
        create(client, f"a{number}@example.com")
        other.create(f"b{number}@example.com")  # the log's positions between acme's
    whole = events(client, product)["data"]
    assert [e["data"]["userName"] for e in whole] == [f"a{n}@example.com" for n in range(5)]
    walked: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(10):
        page = events(client, product, f"?limit=2&after={cursor}")
        if not page["data"]:
            assert page["next"] == cursor
            break
        walked += page["data"]
        cursor = page["next"]
    assert walked == whole
    # A cursor at a position of another organization's event (a gap in this feed) works.
    first = int(whole[0]["id"].removeprefix("evt_"))
    second = int(whole[1]["id"].removeprefix("evt_"))
    assert second - first > 1
    between = events(client, product, f"?after=evt_{second - 1}")["data"]
    assert between == whole[1:]


def test_the_link_header_leads_to_the_next_page_with_the_same_choices(
    client: Client, product: dict[str, str]
) -> None:
    for number in range(3):
        gone = create(client, f"l{number}@example.com")
        patch(client, f"/scim/v2/Users/{gone}", {"op": "replace", "value": {"active": False}})
    address, walked = "/admin/v1/events?types=user.deactivated,user.deleted&limit=2", []
    for _ in range(3):
        answer = client.get(address, headers=product)
        body = answer.json()
        walked += [event["data"]["userName"] for event in body["data"]]
        found = re.fullmatch(r'<(/admin/v1/events\?[^>]+)>; rel="next"', answer.headers["link"])
        assert found is not None, answer.headers["link"]
        address = found.group(1)
        assert address == (
            f"/admin/v1/events?after={body['next']}&limit=2&types=user.deactivated,user.deleted"
        )
    assert walked == ["l0@example.com", "l1@example.com", "l2@example.com"]


class TestOrg:
    """Another organization, provisioning through the same app."""

    __test__ = False

    def __init__(self, services: Services, org: str) -> None:
        self.services = services
        self.headers = {"Authorization": f"Bearer {token_of(services, org, 'scim')}"}

    def create(self, user_name: str) -> None:
        from litestar.testing import TestClient

        with TestClient(app=app_for(self.services), base_url="http://scim.test") as client:
            answer = client.post(
                "/scim/v2/Users", json={"userName": user_name}, headers=self.headers
            )
            assert answer.status_code == 201, answer.text


def test_another_organizations_changes_are_never_seen(
    client: Client, services: Services, product: dict[str, str]
) -> None:
    TestOrg(services, "globex").create("theirs@example.com")
    assert events(client, product) == {"data": [], "next": "evt_0"}
    theirs = {"Authorization": f"Bearer {token_of(services, 'globex')}"}
    [event] = events(client, theirs)["data"]
    assert event["data"]["userName"] == "theirs@example.com"


def test_types_select_the_changes(client: Client, product: dict[str, str]) -> None:
    kept = create(client, "kept@example.com")
    gone = create(client, "gone@example.com")
    patch(client, f"/scim/v2/Users/{gone}", {"op": "replace", "value": {"active": False}})
    page = events(client, product, "?types=user.deactivated")
    assert [(e["type"], e["subject"]["id"]) for e in page["data"]] == [("user.deactivated", gone)]
    page = events(client, product, "?types=user.created,user.created")
    assert [e["subject"]["id"] for e in page["data"]] == [kept, gone]


@pytest.fixture(scope="module")
def module_product(module_services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_of(module_services)}"}


@pytest.mark.sqlite_only  # refused before any database is read
@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("?after=42", "after must be a cursor this feed gave (`next`), such as evt_42"),
        ("?after=evt_-1", "after must be a cursor this feed gave (`next`), such as evt_42"),
        ("?after=evt_99999999999999999999", "after must be a cursor"),
        ("?limit=0", "limit must be a whole number from 1 to 1000"),
        ("?limit=1001", "limit must be a whole number from 1 to 1000"),
        ("?limit=%C2%B2", "limit must be a whole number from 1 to 1000"),
        ("?wait=31", "wait must be a whole number from 0 to 30"),
        ("?types=user.created,token.issued", "types: unknown type 'token.issued'"),
        ("?types=%3Cscript%3E", "types: unknown type '<script>'"),
    ],
)
def test_bad_parameters_are_refused_saying_why(
    module_client: Client, module_product: dict[str, str], query: str, detail: str
) -> None:
    answer = module_client.get(f"/admin/v1/events{query}", headers=module_product)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"
    assert detail in answer.json()["detail"]


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_only_tokens_with_the_events_scope_read_it(
    client: Client, services: Services, product: dict[str, str]
) -> None:
    assert client.get("/admin/v1/events", headers={"Authorization": ""}).status_code == 401
    for scope in ("scim", "audit:read", "admin"):
        headers = {"Authorization": f"Bearer {token_of(services, scope=scope)}"}
        answer = client.get("/admin/v1/events", headers=headers)
        assert answer.status_code == 403
        assert answer.json()["detail"] == "This token may not read the events feed"
    # And the events token may not provision.
    assert client.get("/scim/v2/Users", headers=product).status_code == 403


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_long_poll_answers_as_soon_as_a_change_arrives(
    client: Client, services: Services, product: dict[str, str]
) -> None:
    start = events(client, product)["next"]
    answers: list[tuple[float, dict[str, Any]]] = []

    def poll() -> None:
        began = time.monotonic()
        body = events(client, product, f"?after={start}&wait=20")
        answers.append((time.monotonic() - began, body))

    waiting = threading.Thread(target=poll)
    waiting.start()
    time.sleep(0.5)
    assert not answers  # still waiting
    create(client, "arrived@example.com")
    waiting.join(timeout=10)
    [(seconds, body)] = answers
    assert seconds < 5
    assert [e["data"]["userName"] for e in body["data"]] == ["arrived@example.com"]


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_long_poll_with_nothing_new_answers_empty_after_the_wait(
    client: Client, product: dict[str, str]
) -> None:
    began = time.monotonic()
    body = events(client, product, "?wait=1")
    assert 1.0 <= time.monotonic() - began < 5
    assert body == {"data": [], "next": "evt_0"}


def test_a_rebuild_of_the_audit_trail_gives_the_same_feed(
    client: Client, services: Services, product: dict[str, str]
) -> None:
    user_id = create(client, "again@example.com")
    patch(client, f"/scim/v2/Users/{user_id}", {"op": "replace", "value": {"active": False}})
    before = events(client, product)
    rebuild(services.ledger, audit.NAME)
    services.audit.load_position()  # type: ignore[attr-defined]
    assert events(client, product) == before


def test_every_type_is_an_audit_action_on_users_or_groups() -> None:
    assert TYPES == (
        "user.created",
        "user.updated",
        "user.deactivated",
        "user.reactivated",
        "user.password_changed",
        "user.deleted",
        "user.erased",
        "group.created",
        "group.renamed",
        "group.external_id_changed",
        "group.updated",
        "group.members_added",
        "group.members_removed",
        "group.deleted",
    )
