"""Extension schemas through the admin API (/admin/v1/schemas): declared, changed, listed,
shown and removed by an admin token of the organization, and only of its own."""

from __future__ import annotations

from typing import Any

from scimledger.http.services import Services
from tests.e2e.test_admin_tokens import admin_token
from tests.scim import Client

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
SCHEMA: dict[str, Any] = {"id": ACME, "attributes": [{"name": "costCenter"}]}


def test_an_admin_declares_changes_lists_and_removes_an_extension(
    services: Services, client: Client
) -> None:
    admin = admin_token(services)

    declared = client.post("/admin/v1/schemas", json={"schema": SCHEMA}, headers=admin)
    again = client.post("/admin/v1/schemas", json={"schema": SCHEMA}, headers=admin)
    wider = {**SCHEMA, "attributes": [{"name": "costCenter"}, {"name": "seats"}]}
    changed = client.post(
        "/admin/v1/schemas", json={"schema": wider, "required": True}, headers=admin
    )

    assert declared.status_code == 201, declared.text
    assert (declared.json()["id"], declared.json()["changed"]) == (ACME, True)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    assert changed.status_code == 200
    assert (changed.json()["required"], changed.json()["changed"]) == (True, True)
    listed = client.get("/admin/v1/schemas", headers=admin).json()["schemas"]
    assert [(s["id"], s["resourceType"], s["required"]) for s in listed] == [(ACME, "User", True)]
    shown = client.get(f"/admin/v1/schemas/{ACME.lower()}", headers=admin).json()
    assert [a["name"] for a in shown["attributes"]] == ["costCenter", "seats"]

    created = client.post("/scim/v2/Users", json={"userName": "ada", ACME: {"seats": "2"}})
    assert created.status_code == 201, created.text
    in_use = client.delete(f"/admin/v1/schemas/{ACME}", headers=admin)
    assert in_use.status_code == 409
    assert in_use.json()["detail"].startswith(f"1 resource(s) hold values of {ACME}")
    assert client.delete(f"/admin/v1/schemas/{ACME}?force=true", headers=admin).status_code == 204
    assert client.get("/admin/v1/schemas", headers=admin).json() == {"schemas": []}
    gone = client.delete(f"/admin/v1/schemas/{ACME}", headers=admin)
    assert (gone.status_code, gone.json()["detail"]) == (
        404,
        f"no extension schema {ACME} is declared",
    )


def test_a_document_that_cannot_be_declared_answers_400_saying_why(
    services: Services, client: Client
) -> None:
    admin = admin_token(services)
    bad = {"id": "urn:ietf:params:scim:schemas:core:2.0:User", "attributes": [{"name": "x"}]}

    refused = client.post("/admin/v1/schemas", json={"schema": bad}, headers=admin)
    unknown = client.post("/admin/v1/schemas", json={"schema": SCHEMA, "x": 1}, headers=admin)
    kind = client.post(
        "/admin/v1/schemas", json={"schema": SCHEMA, "resourceType": "Device"}, headers=admin
    )

    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "urn:ietf:params:scim:schemas:core:2.0:User is a schema of SCIM itself: it cannot be"
        " declared"
    )
    assert unknown.status_code == 400
    assert kind.json()["detail"] == "resourceType must be one of User, Group"
    assert client.get("/admin/v1/schemas", headers=admin).json() == {"schemas": []}


def test_another_organization_s_admin_sees_and_changes_only_its_own(
    services: Services, client: Client
) -> None:
    ours, theirs = admin_token(services), admin_token(services, org="globex")
    client.post("/admin/v1/schemas", json={"schema": SCHEMA}, headers=ours)

    assert client.get("/admin/v1/schemas", headers=theirs).json() == {"schemas": []}
    hidden = client.get(f"/admin/v1/schemas/{ACME}", headers=theirs)
    assert (hidden.status_code, hidden.json()["detail"]) == (
        404,
        f"no extension schema {ACME} is declared",
    )
    assert client.delete(f"/admin/v1/schemas/{ACME}", headers=theirs).status_code == 404
    assert client.get("/admin/v1/schemas", headers=ours).json()["schemas"][0]["id"] == ACME


def test_a_scim_token_may_not_declare(client: Client) -> None:
    response = client.post("/admin/v1/schemas", json={"schema": SCHEMA})

    assert response.status_code == 403
