"""The audit trail: one exact entry per event, rebuildable, and how reviewers read it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from freezegun import freeze_time

from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.tokens import parse_token
from scimledger.projections import audit
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from tests.conftest import issue
from tests.e2e.conftest import cli_in_process
from tests.scim import PATCH_OP, Client


def trail(services: Services, **query: Any) -> list[dict[str, Any]]:
    Runner(services.ledger, audit.AuditProjection()).run_once()
    sql = SQL(services.ledger)
    return list(audit.stream(lambda: sql.transaction(commit=False), audit.AuditQuery(**query)))


def provision(client: Client) -> str:
    """Okta's create, profile update and deactivation of one user; returns its id."""
    headers = {"User-Agent": "Okta SCIM Client 1.0.0", "X-Request-Id": "req-create"}
    created = client.post(
        "/scim/v2/Users",
        json={"userName": "bjensen@example.com", "title": "Tour Guide", "password": "s3cret!"},
        headers=headers,
    ).json()
    client.patch(
        f"/scim/v2/Users/{created['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"title": "CEO", "nickName": "Babs"}}],
        },
        headers={**headers, "X-Request-Id": "req-update"},
    )
    client.patch(
        f"/scim/v2/Users/{created['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
        headers={**headers, "X-Request-Id": "req-deactivate"},
    )
    return str(created["id"])


def test_each_user_event_gets_one_exact_entry(
    client: Client,
    services: Services,
    token: IssuedToken,
) -> None:
    user_id = provision(client)
    entries = trail(services, subject=user_id)
    org_id = str(services.ledger.organization_id("acme"))
    common = {
        "org_id": org_id,
        "actor_kind": "token",
        "actor_id": str(token.id),
        "actor_name": "Okta",
        "actor_issuer": "operator:tester",
        "subject_type": "User",
        "subject_id": user_id,
        "subject_name": "bjensen@example.com",
        "client_address": "testclient",
        "user_agent": "Okta SCIM Client 1.0.0",
    }
    assert [{k: e[k] for k in common} for e in entries] == [common] * 4
    assert [(e["action"], e["request_id"], e["changes"]) for e in entries] == [
        (
            "user.created",
            "req-create",
            {
                "userName": {"before": None, "after": "bjensen@example.com"},
                "title": {"before": None, "after": "Tour Guide"},
                "active": {"before": None, "after": True},
            },
        ),
        ("user.password_changed", "req-create", {"password": "changed"}),
        (
            "user.updated",
            "req-update",
            {
                "title": {"before": "Tour Guide", "after": "CEO"},
                "nickName": {"before": None, "after": "Babs"},
            },
        ),
        ("user.deactivated", "req-deactivate", {"active": {"before": True, "after": False}}),
    ]
    positions = [e["position"] for e in entries]
    assert positions == sorted(positions)
    assert all(e["occurred_at"].endswith("Z") for e in entries)


def test_the_trail_never_holds_the_password_or_the_token(
    client: Client,
    services: Services,
    token: IssuedToken,
) -> None:
    provision(client)
    dumped = json.dumps(trail(services))
    assert "s3cret!" not in dumped
    assert parse_token(token.token).secret not in dumped


def test_tokens_and_organizations_are_in_the_trail(services: Services, token: IssuedToken) -> None:
    entries = trail(services)
    assert [(e["action"], e["subject_name"], e["actor_kind"], e["actor_id"]) for e in entries] == [
        ("organization.created", "acme", "operator", "tests"),
        ("token.issued", "Okta", "operator", "tests"),
    ]
    assert entries[1]["changes"] == {
        "name": {"before": None, "after": "Okta"},
        "scopes": {"before": None, "after": ["scim"]},
        "expires_at": {"before": None, "after": None},
    }


def test_group_changes_record_members_and_names(
    client: Client,
    services: Services,
) -> None:
    user_id = provision(client)
    group = client.post(
        "/scim/v2/Groups", json={"displayName": "Admins", "members": [{"value": user_id}]}
    ).json()
    client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "value": {"id": group["id"], "displayName": "Owners"}},
                {"op": "remove", "path": f'members[value eq "{user_id}"]'},
            ],
        },
    )
    entries = trail(services, subject=group["id"])
    assert [(e["action"], e["subject_name"], e["changes"]) for e in entries] == [
        ("group.created", "Admins", {"displayName": {"before": None, "after": "Admins"}}),
        ("group.members_added", "Admins", {"members": {"added": [user_id]}}),
        ("group.renamed", "Owners", {"displayName": {"before": "Admins", "after": "Owners"}}),
        ("group.members_removed", "Owners", {"members": {"removed": [user_id]}}),
    ]


def test_a_later_batch_takes_before_values_from_each_subject_s_latest_entry(
    client: Client,
    services: Services,
) -> None:
    user_id = provision(client)
    group_id = client.post("/scim/v2/Groups", json={"displayName": "Admins"}).json()["id"]
    assert len(trail(services)) == 7  # a batch of its own: the organization to the group
    client.patch(
        f"/scim/v2/Users/{user_id}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"title": "CTO"}}]},
    )
    client.patch(
        f"/scim/v2/Groups/{group_id}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"displayName": "Owners"}}],
        },
    )
    user_update, group_rename = trail(services)[-2:]
    assert user_update["changes"] == {"title": {"before": "CEO", "after": "CTO"}}
    assert group_rename["changes"] == {"displayName": {"before": "Admins", "after": "Owners"}}
    with SQL(services.ledger).transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT data FROM audit_entries WHERE position = ?", (user_update["position"],)
        )
        row = cursor.fetchone()
    assert row is not None
    # The whole user, as the batch before left it, with the change.
    data = json.loads(row["data"])
    assert (data["attributes"], data["active"], data["version"]) == (
        {"userName": "bjensen@example.com", "title": "CTO", "nickName": "Babs"},
        False,
        5,
    )


def test_a_rebuilt_trail_is_identical(
    client: Client,
    services: Services,
) -> None:
    provision(client)
    before = trail(services)
    with SQL(services.ledger).transaction(commit=True) as cursor:
        cursor.execute("DELETE FROM projection_tracking WHERE name = ?", (audit.NAME,))
    assert trail(services) == before


def test_filters_select_by_subject_name_actor_action_and_time(
    client: Client,
    services: Services,
    token: IssuedToken,
) -> None:
    with freeze_time("2026-01-10T12:00:00Z"):
        provision(client)
    with freeze_time("2026-02-10T12:00:00Z"):
        client.post("/scim/v2/Users", json={"userName": "later@example.com"})
    assert len(trail(services, subject="BJENSEN@example.com")) == 4
    assert len(trail(services, actor="Okta")) == 5
    assert len(trail(services, actor=str(token.id))) == 5
    assert [e["subject_name"] for e in trail(services, actions=("user.created",))] == [
        "bjensen@example.com",
        "later@example.com",
    ]
    # The organization and token were made at the real time, after both frozen dates.
    february = trail(services, since="2026-02-01T00:00:00.000Z", until="2026-03-01T00:00:00.000Z")
    assert [(e["action"], e["subject_name"]) for e in february] == [
        ("user.created", "later@example.com")
    ]
    assert len(trail(services, until="2026-02-01T00:00:00.000Z")) == 4


def run(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    """The command in this process (`cli_in_process`): these tests are about what it prints."""
    return cli_in_process(*args, database=database)


def test_cli_lists_history_in_every_format(
    client: Client,
    services: Services,
) -> None:
    user_id = provision(client)
    url = services.ledger.database.url
    table = run("audit", "history", "bjensen@example.com", database=url)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("User bjensen@example.com") == 4
    assert "    title: Tour Guide -> CEO; nickName: null -> Babs\n" in table.stdout
    lines = run("audit", "list", "--format", "jsonl", "--subject", user_id, database=url)
    assert [json.loads(line)["action"] for line in lines.stdout.splitlines()] == [
        "user.created",
        "user.password_changed",
        "user.updated",
        "user.deactivated",
    ]
    exported = run("audit", "list", "--format", "csv", "--action", "user.deactivated", database=url)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["action"], r["subject_id"], r["request_id"]) for r in rows] == [
        ("user.deactivated", user_id, "req-deactivate")
    ]
    assert json.loads(rows[0]["changes"]) == {"active": {"before": True, "after": False}}


def test_show_rebuilds_the_user_as_it_was_at_a_time(
    client: Client,
    services: Services,
) -> None:
    with freeze_time("2026-01-10T12:00:00Z"):
        user_id = client.post(
            "/scim/v2/Users", json={"userName": "bjensen@example.com", "title": "Tour Guide"}
        ).json()["id"]
    with freeze_time("2026-03-10T12:00:00Z"):
        client.patch(
            f"/scim/v2/Users/{user_id}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "title", "value": "CEO"}],
            },
        )
    url = services.ledger.database.url
    shown = run("audit", "show", "bjensen@example.com", "--at", "2026-02-01", database=url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": user_id,
        "userName": "bjensen@example.com",
        "title": "Tour Guide",
        "active": True,
        "meta": {
            "resourceType": "User",
            "created": "2026-01-10T12:00:00.000Z",
            "lastModified": "2026-01-10T12:00:00.000Z",
            "location": f"/scim/v2/Users/{user_id}",
            "version": 'W/"1"',
        },
    }
    before = run("audit", "show", user_id, "--at", "2025-12-31", database=url)
    assert before.returncode == 2
    assert "no user" in before.stderr


def test_report_lists_users_of_revoked_tokens_still_active(
    client: Client,
    services: Services,
    token: IssuedToken,
) -> None:
    made = [create_named(client, f"u{n}@example.com") for n in range(3)]
    services.ledger.revoke_token(
        token.id, Actor(kind="operator", id="tests", name="tester"), RequestInfo("revoke")
    )
    other = {"Authorization": f"Bearer {issue(services.ledger, name='Okta 2').token}"}
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    assert client.patch(f"/scim/v2/Users/{made[1]}", json=body, headers=other).status_code == 200
    assert client.delete(f"/scim/v2/Users/{made[2]}", headers=other).status_code == 204
    create_named(client, "u3@example.com", headers=other)  # created by a valid token

    Runner(services.ledger, audit.AuditProjection()).run_once()
    with SQL(services.ledger).transaction(commit=False) as cursor:
        rows = audit.revoked_token_users(cursor, str(services.ledger.organization_id("acme")))
    assert [(r["user_id"], r["user_name"], r["token_id"], r["token_name"]) for r in rows] == [
        (made[0], "u0@example.com", str(token.id), "Okta")
    ]
    report = run(
        "audit",
        "report",
        "revoked-token-users",
        "--format",
        "csv",
        database=services.ledger.database.url,
    )
    assert [r["user_id"] for r in csv.DictReader(io.StringIO(report.stdout))] == [made[0]]


def create_named(
    client: Client,
    user_name: str,
    headers: dict[str, str] | None = None,
) -> str:
    response = client.post("/scim/v2/Users", json={"userName": user_name}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_subjects_history_pages_newest_first_by_its_id_alone(
    client: Client,
    services: Services,
) -> None:
    user_id = provision(client)
    # A user named with the first one's id: a subject search by name would find it too.
    client.post("/scim/v2/Users", json={"userName": user_id})
    mine = audit.AuditQuery(subject_id=user_id)
    entries = trail(services, subject_id=user_id)
    assert {entry["subject_id"] for entry in entries} == {user_id}
    assert len(entries) == 4
    with services.sql.transaction(commit=False) as cursor:
        newest = audit.page(cursor, mine, 3, newest_first=True)
        older = audit.page(
            cursor, replace(mine, before=newest[-1]["position"]), 3, newest_first=True
        )
    assert newest == entries[:0:-1]
    assert older == entries[:1]
    assert len(trail(services, subject=user_id)) == 5


def test_every_filter_gives_the_same_entries_whichever_index_leads(
    client: Client, services: Services, token: IssuedToken, monkeypatch: Any
) -> None:
    # Entries whose times run against the log's order: a time range lists them in the order
    # they occurred, ties in log order; pages of two join up whatever index reads them.
    for moment, name in (
        ("2026-03-01T00:00:00Z", "march@example.com"),
        ("2026-01-01T00:00:00Z", "january@example.com"),
        ("2026-02-01T00:00:00Z", "february@example.com"),
        ("2026-01-01T00:00:00Z", "january-too@example.com"),
    ):
        with freeze_time(moment):
            created = client.post("/scim/v2/Users", json={"userName": name})
            assert created.status_code == 201, created.text
            client.patch(
                f"/scim/v2/Users/{created.json()['id']}",
                json={
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "value": {"title": "x"}}],
                },
            )
    everything = trail(services)
    org_id = everything[-1]["org_id"]
    queries: list[dict[str, Any]] = [
        {},
        {"actions": ("user.created",)},
        {"actions": ("user.updated", "user.created")},
        {"subject": "JANUARY@example.com"},
        {"actor": "Okta"},
        {"actor": str(token.id), "actions": ("user.updated",)},
        {"since": "2026-01-01T00:00:00.000Z", "until": "2026-02-15T00:00:00.000Z"},
        {"since": "2026-02-01T00:00:00.000Z", "actions": ("user.created",)},
        {"until": "2026-02-01T00:00:00.000Z", "subject": "january-too@example.com"},
        {"since": "2030-01-01T00:00:00.000Z"},
    ]

    def expected(query: dict[str, Any]) -> list[int]:
        chosen = [
            e
            for e in everything
            if ("actions" not in query or e["action"] in query["actions"])
            and ("subject" not in query or e["subject_name"] == query["subject"].lower())
            and ("actor" not in query or query["actor"] in (e["actor_id"], e["actor_name"]))
            and e["occurred_at"] >= query.get("since", "")
            and e["occurred_at"] < query.get("until", "~")
        ]
        timed = "since" in query or "until" in query
        chosen.sort(key=lambda e: (e["occurred_at"], e["position"]) if timed else e["position"])
        return [e["position"] for e in chosen]

    sql = SQL(services.ledger)
    for probed in (0, 1, 1000):  # no filter rare enough to lead; some; all
        monkeypatch.setattr(audit, "PROBED", probed)
        for query in queries:
            found = audit.stream(
                lambda: sql.transaction(commit=False),
                audit.AuditQuery(org_id=org_id, **query),
                batch=2,
            )
            assert [e["position"] for e in found] == expected(query), (probed, query)
    in_time = expected({"since": "2026-01-01T00:00:00.000Z"})
    assert in_time != sorted(in_time)  # the times do run against the log


def test_on_sqlite_only_the_leading_filters_index_can_be_read() -> None:
    # SQLite reads no index for a `+column` term: the organization's index, which also
    # keeps the log order, must not lead a subject's history (it read a million entries).
    sqlite = SimpleNamespace(dialect="sqlite")
    query = audit.AuditQuery(org_id="o", subject_id="s", actions=("user.updated",), after=7)
    where = audit._where(query, sqlite, "subject")[0]  # type: ignore[arg-type]
    assert where == "+position > ? AND +org_id = ? AND subject_id = ? AND +action IN (?)"
    where = audit._where(query, sqlite, "order")[0]  # type: ignore[arg-type]
    assert where == "position > ? AND org_id = ? AND +subject_id = ? AND action IN (?)"
    postgresql = SimpleNamespace(dialect="postgresql")
    where = audit._where(query, postgresql, "subject")[0]  # type: ignore[arg-type]
    assert where == "position > ? AND org_id = ? AND subject_id = ? AND action IN (?)"
