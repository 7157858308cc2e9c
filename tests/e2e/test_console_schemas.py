"""The console's Custom attributes pages over HTTP: an admin declares, changes and removes an
extension schema (a removal with values needs its confirmation); a refused document keeps
the form with the reason; a reviewer sees them and changes none; hostile text is shown as
text."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from httpx import Response

from scimledger.http.services import Services
from scimledger.ledger.organizations import Organization
from tests.e2e.console import ADA, ORIGIN, RITA, events_of, sign_in
from tests.scim import Client

pytestmark = pytest.mark.sqlite_only  # the pages' part; the commands run on both elsewhere

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
SCHEMA: dict[str, Any] = {
    "id": ACME,
    "name": "AcmeUser",
    "attributes": [
        {"name": "costCenter", "description": "<b>the</b> cost center"},
        {"name": "role", "canonicalValues": ["admin", "member"], "uniqueness": "server"},
    ],
}


def declare(console: Client, csrf: str, document: Any = SCHEMA, **more: str) -> Response:
    text = document if isinstance(document, str) else json.dumps(document)
    data = {"csrf": csrf, "document": text, **more}
    return console.post("/console/schemas", data=data, headers=ORIGIN, follow_redirects=False)


def test_an_admin_declares_changes_and_removes_an_extension(
    console: Client, services: Services, client: Client
) -> None:
    csrf = sign_in(console, services)
    assert "No extension declared." in console.get("/console/schemas").text
    assert ACME in console.get("/console/schemas/new").text  # the example to start from

    declared = declare(console, csrf, required="on")
    assert (declared.status_code, declared.headers["location"]) == (303, "/console/schemas")
    listed = console.get("/console/schemas").text
    assert f"<h2><code>{ACME}</code></h2>" in listed
    assert "extends <strong>Users</strong> · required on every User" in listed
    assert "&lt;b&gt;the&lt;/b&gt; cost center" in listed
    assert "unique · one of admin, member" in listed

    changing = console.get(f"/console/schemas/new?urn={quote(ACME)}").text
    assert "<h1>Change extension</h1>" in changing
    found = re.search(r'<textarea id="document"[^>]*>(.*?)</textarea>', changing, re.DOTALL)
    assert found is not None
    document = json.loads(html.unescape(found.group(1)))
    assert (document["id"], document["attributes"][1]["canonicalValues"]) == (
        ACME,
        ["admin", "member"],
    )
    wider = {**SCHEMA, "attributes": [*SCHEMA["attributes"], {"name": "seats", "type": "integer"}]}
    assert declare(console, csrf, wider).status_code == 303
    assert "<code>seats</code>" in console.get("/console/schemas").text

    user = client.post("/scim/v2/Users", json={"userName": "ada", ACME: {"costCenter": "1"}})
    assert user.status_code == 201, user.text
    confirm = console.get(f"/console/schemas/remove?urn={quote(ACME)}").text
    assert "1 user holds values of it." in confirm
    refused = console.post(
        "/console/schemas/remove", data={"csrf": csrf, "urn": ACME}, headers=ORIGIN
    )
    assert refused.status_code == 409
    removed = console.post(
        "/console/schemas/remove",
        data={"csrf": csrf, "urn": ACME, "force": "on"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert "No extension declared." in console.get("/console/schemas").text
    org_id = services.ledger.organization_id("acme")
    assert org_id is not None
    events = [
        event
        for event in services.ledger.events.get(org_id)
        if isinstance(event, Organization.SchemaDeclared | Organization.SchemaRemoved)
    ]
    actors = {(e.context.actor.kind, e.context.actor.name) for e in events}
    assert (len(events), actors) == (3, {("person", ADA)})


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("{not json", "The schema document is not JSON:"),
        ({**SCHEMA, "id": "urn:ietf:params:scim:schemas:core:2.0:User"}, "is a schema of SCIM"),
        ({**SCHEMA, "attributes": [{"name": "<script>"}]}, "attributes[0].name must be a"),
    ],
)
def test_a_refused_document_keeps_the_form_and_says_why(
    console: Client, services: Services, document: Any, problem: str
) -> None:
    csrf = sign_in(console, services)

    answered = declare(console, csrf, document)

    assert answered.status_code == 400
    assert html.escape(problem, quote=True) in answered.text
    assert "<script>" not in answered.text
    assert events_of(services, Organization.SchemaDeclared) == []


def test_a_reviewer_sees_the_extensions_and_changes_none(
    console: Client, services: Services
) -> None:
    declare(console, sign_in(console, services))
    console.cookies.clear()
    csrf = sign_in(console, services, RITA)

    listed = console.get("/console/schemas").text
    assert f"<h2><code>{ACME}</code></h2>" in listed
    assert "Declare an extension" not in listed
    assert "Remove</a>" not in listed
    assert console.get("/console/schemas/new").status_code == 403
    assert declare(console, csrf).status_code == 403
    sent = console.post(
        "/console/schemas/remove", data={"csrf": csrf, "urn": ACME, "force": "on"}, headers=ORIGIN
    )
    assert sent.status_code == 403
    assert len(events_of(services, Organization.SchemaDeclared)) == 1


def test_an_extension_not_declared_is_not_found(console: Client, services: Services) -> None:
    sign_in(console, services)

    for path in ("/console/schemas/new", "/console/schemas/remove"):
        page = console.get(f"{path}?urn={quote('urn:nothing:<b>:User')}")
        assert page.status_code == 404
        assert "no extension schema urn:nothing:&lt;b&gt;:User is declared" in page.text
