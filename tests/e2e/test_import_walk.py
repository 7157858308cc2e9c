"""Okta's import walk (GET /Users?startIndex=..&count=..): each page after the first seeks
from where the previous one ended (projections.scim.PageMarks) and the total comes from the
organization's count; the pages are exactly what reading by offset gives."""

from __future__ import annotations

from typing import Any

import pytest

from scimledger.http.services import Services
from scimledger.projections.sql import Cursor
from tests.scim import CORE_USER, Client


def create(client: Client, name: str) -> str:
    response = client.post("/scim/v2/Users", json={"schemas": [CORE_USER], "userName": name})
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


def page(client: Client, start: int, count: int) -> dict[str, Any]:
    response = client.get("/scim/v2/Users", params={"startIndex": start, "count": count})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def walk(client: Client, count: int) -> list[str]:
    seen: list[str] = []
    start = 1
    while True:
        body = page(client, start, count)
        ids = [resource["id"] for resource in body["Resources"]]
        assert body["itemsPerPage"] == len(ids)
        assert body["startIndex"] == start
        seen += ids
        start += len(ids)
        if not ids or start > body["totalResults"]:
            return seen


class Seeks:
    """Counts the page reads that seek from a mark (`seq > ?`) and those by offset."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seeks = 0
        self.offsets = 0
        original = Cursor.execute

        def execute(cursor: Cursor, statement: str, params: Any = ()) -> None:
            if "FROM scim_users WHERE org_id = ?" in statement and "LIMIT ? OFFSET ?" in statement:
                if "AND seq > ?" in statement:
                    self.seeks += 1
                else:
                    self.offsets += 1
            original(cursor, statement, params)

        monkeypatch.setattr(Cursor, "execute", execute)


def test_a_walk_seeks_after_its_first_page_and_sees_every_user_once(
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [create(client, f"walker{n}@example.com") for n in range(23)]
    seeks = Seeks(monkeypatch)
    assert walk(client, 5) == ids  # creation order
    assert (seeks.offsets, seeks.seeks) == (1, 4)
    assert page(client, 1, 5)["totalResults"] == 23
    # Another walk, or the same pages again: the same answers.
    assert walk(client, 5) == ids
    assert [r["id"] for r in page(client, 11, 5)["Resources"]] == ids[10:15]
    # A page nobody reached by walking is read by offset.
    assert [r["id"] for r in page(client, 4, 7)["Resources"]] == ids[3:10]
    assert page(client, 24, 5)["Resources"] == []
    assert page(client, 24, 5)["totalResults"] == 23
    assert page(client, 1, 0) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 23,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }


def test_a_user_created_during_a_walk_is_listed_at_its_end(
    client: Client,
) -> None:
    ids = [create(client, f"early{n}@example.com") for n in range(8)]
    first = page(client, 1, 5)
    late = create(client, "late@example.com")
    second = page(client, 6, 5)
    assert [r["id"] for r in first["Resources"] + second["Resources"]] == [*ids, late]
    assert second["totalResults"] == 9


def test_a_deletion_during_a_walk_falls_back_to_offsets(
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [create(client, f"leaver{n}@example.com") for n in range(12)]
    assert [r["id"] for r in page(client, 1, 4)["Resources"]] == ids[:4]
    assert client.delete(f"/scim/v2/Users/{ids[1]}").status_code == 204
    seeks = Seeks(monkeypatch)
    second = page(client, 5, 4)
    # By offset over what is there now, as a read without marks would give.
    assert [r["id"] for r in second["Resources"]] == [ids[0], *ids[2:12]][4:8]
    assert second["totalResults"] == 11
    assert (seeks.offsets, seeks.seeks) == (1, 0)
    assert walk(client, 4) == [ids[0], *ids[2:12]]


def test_the_counts_follow_creates_and_deletes(
    client: Client,
    services: Services,
) -> None:
    ids = [create(client, f"counted{n}@example.com") for n in range(5)]
    for user_id in ids[:2]:
        assert client.delete(f"/scim/v2/Users/{user_id}").status_code == 204
    with services.sql.read() as cursor:
        cursor.execute("SELECT users, deleted FROM scim_user_counts")
        assert [dict(row) for row in cursor.fetchall()] == [{"users": 3, "deleted": 2}]
    assert page(client, 1, 100)["totalResults"] == 3
    assert client.get("/scim/v2/Users").json()["totalResults"] == 3
