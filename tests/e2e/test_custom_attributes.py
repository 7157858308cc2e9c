"""Custom attributes (issue 22): an organization's declared extension schemas, provisioned
as Okta and Entra ID send them, filtered, sorted, selected, discovered and rebuilt, over
HTTP through the real app, on both databases."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

import pytest

from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken, NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.errors import InvalidSchema, SchemaInUse, ValueTaken
from scimledger.projections import scim
from scimledger.projections.audit import stored_changes
from scimledger.projections.rebuild import rebuild
from scimledger.projections.scim import extension_holders, extension_values_counter
from scimledger.projections.sql import SQL
from tests.conftest import issue
from tests.scim import CORE_USER, ENTERPRISE_USER, ERROR, PATCH_OP, Client

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
OPERATOR = Actor.operator("tests")
LOCAL = RequestInfo.local()
SCHEMA: dict[str, Any] = {
    "id": ACME,
    "name": "AcmeUser",
    "attributes": [
        {"name": "costCenter"},
        {"name": "seats", "type": "integer"},
        {"name": "ratio", "type": "decimal"},
        {"name": "remote", "type": "boolean"},
        {"name": "hired", "type": "dateTime"},
        {"name": "badge", "caseExact": True},
        {"name": "role", "canonicalValues": ["admin", "member"]},
        {"name": "skills", "multiValued": True},
        {
            "name": "desk",
            "type": "complex",
            "subAttributes": [{"name": "floor", "type": "integer"}],
        },
        {"name": "notes", "returned": "request"},
    ],
}


def declare(services: Services, schema: dict[str, Any] = SCHEMA, org: str = "acme") -> None:
    services.ledger.declare_schema(org, schema, OPERATOR, LOCAL, extension_holders(services.sql))


def created(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 201, response.text
    resource: dict[str, Any] = response.json()
    return resource


def fetched(client: Client, user_id: str, **params: str) -> dict[str, Any]:
    response = client.get(f"/scim/v2/Users/{user_id}", params=params)
    assert response.status_code == 200, response.text
    resource: dict[str, Any] = response.json()
    return resource


def patched(client: Client, user_id: str, *operations: dict[str, Any]) -> dict[str, Any]:
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    response = client.patch(f"/scim/v2/Users/{user_id}", json=body)
    assert response.status_code == 200, response.text
    resource: dict[str, Any] = response.json()
    return resource


def test_okta_creates_replaces_and_patches_the_declared_attributes(
    services: Services, client: Client
) -> None:
    declare(services)
    okta = {
        "schemas": [CORE_USER, ACME],
        "userName": "ada@acme.example",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        ACME: {"costCenter": "42", "seats": 3, "skills": ["go", "sql"], "desk": {"floor": 2}},
    }

    user = created(client, okta)
    assert user["schemas"] == [CORE_USER, ACME]
    assert user[ACME] == okta[ACME]
    assert fetched(client, user["id"])[ACME] == okta[ACME]

    replaced = {**okta, ACME: {"costCenter": "43", "role": "Admin"}}
    response = client.put(f"/scim/v2/Users/{user['id']}", json=replaced)
    assert response.status_code == 200, response.text
    assert response.json()[ACME] == {"costCenter": "43", "role": "admin"}

    after = patched(client, user["id"], {"op": "replace", "value": {ACME: {"seats": 5}}})
    assert after[ACME] == {"costCenter": "43", "role": "admin", "seats": 5}
    assert after["meta"]["version"] == 'W/"3"'


def test_entra_sends_each_attribute_with_the_urn_in_its_path(
    services: Services, client: Client
) -> None:
    declare(services)
    user = created(
        client,
        {
            "schemas": [CORE_USER, ENTERPRISE_USER, ACME],
            "userName": "grace@acme.example",
            f"{ACME}:costCenter": "7",
            f"{ACME}:remote": "True",
            ENTERPRISE_USER: {"department": "Navy"},
        },
    )
    assert user["schemas"] == [CORE_USER, ENTERPRISE_USER, ACME]
    assert user[ACME] == {"costCenter": "7", "remote": True}

    after = patched(
        client,
        user["id"],
        {"op": "Replace", "path": f"{ACME}:costCenter", "value": "8"},
        {"op": "Add", "path": f"{ACME}:hired", "value": "2026-03-01T09:00:00+01:00"},
        {"op": "Remove", "path": f"{ACME}:remote"},
    )
    assert after[ACME] == {"costCenter": "8", "hired": "2026-03-01T08:00:00.000Z"}
    assert after[ENTERPRISE_USER] == {"department": "Navy"}


def test_an_extension_not_declared_is_refused_and_nothing_is_written(
    services: Services, client: Client
) -> None:
    body = {"schemas": [CORE_USER, ACME], "userName": "ada@acme.example", ACME: {"x": "1"}}

    response = client.post("/scim/v2/Users", json=body)

    assert response.status_code == 400
    assert response.json() == {
        "schemas": [ERROR],
        "status": "400",
        "scimType": "invalidValue",
        "detail": f"{ACME} is not an extension schema this organization has declared, so its"
        " values cannot be kept: an admin declares it with `scimledger schemas add` (GET"
        " /Schemas lists those declared)",
    }
    assert client.get("/scim/v2/Users").json()["totalResults"] == 0

    user = created(client, {"userName": "ada@acme.example"})
    refused = client.patch(
        f"/scim/v2/Users/{user['id']}",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": f"{ACME}:x"}]},
    )
    assert refused.status_code == 400
    assert fetched(client, user["id"])["meta"]["version"] == 'W/"1"'


def test_a_value_that_does_not_fit_is_refused_naming_it(services: Services, client: Client) -> None:
    declare(services)

    response = client.post(
        "/scim/v2/Users", json={"userName": "ada@acme.example", ACME: {"seats": "three"}}
    )

    assert response.status_code == 400
    assert response.json()["detail"] == f"{ACME}:seats must be a number (integer)"
    assert client.get("/scim/v2/Users").json()["totalResults"] == 0


PEOPLE = [
    ("ada", {"costCenter": "CC-1", "seats": 3, "ratio": 0.5, "remote": True, "badge": "AbC"}),
    ("bob", {"costCenter": "cc-1", "seats": 10, "ratio": 1.25, "remote": False, "badge": "abc"}),
    ("cy", {"seats": 7, "hired": "2026-01-02T00:00:00Z", "skills": ["go", "Rust"]}),
    ("di", {"desk": {"floor": 3}, "hired": "2025-06-01T12:00:00Z", "skills": ["sql"]}),
]


def names(client: Client, query: str) -> list[str] | str:
    response = client.get(f"/scim/v2/Users?{query}&attributes=userName")
    body = response.json()
    if response.status_code != 200:
        return str(body["detail"])
    return [resource["userName"] for resource in body["Resources"]]


def where(text: str) -> str:
    return "filter=" + quote(text)


def test_filters_and_sorting_on_declared_attributes(services: Services, client: Client) -> None:
    declare(services)
    for name, values in PEOPLE:
        created(client, {"userName": name, ACME: values})

    assert names(client, where(f'{ACME}:costCenter eq "CC-1"')) == ["ada", "bob"]
    assert names(client, where(f'{ACME}:badge eq "abc"')) == ["bob"]  # caseExact
    assert names(client, where(f"{ACME}:seats gt 5")) == ["bob", "cy"]
    assert names(client, where(f"{ACME}:seats le 3")) == ["ada"]
    assert names(client, where(f"{ACME}:ratio ge 1")) == ["bob"]
    assert names(client, where(f"{ACME}:remote eq true")) == ["ada"]
    assert names(client, where(f'{ACME}:hired ge "2026-01-01T00:00:00Z"')) == ["cy"]
    assert names(client, where(f"{ACME}:desk.floor eq 3")) == ["di"]
    assert names(client, where(f'{ACME}:skills eq "rust"')) == ["cy"]
    assert names(client, where(f"{ACME}:skills pr")) == ["cy", "di"]
    assert names(client, where(f'{ACME}:seats gt 2 and {ACME}:costCenter sw "cc"')) == [
        "ada",
        "bob",
    ]
    # Without the attribute: last ascending, first descending.
    assert names(client, f"sortBy={quote(f'{ACME}:seats')}&sortOrder=descending") == [
        "di",
        "bob",
        "cy",
        "ada",
    ]
    assert names(client, f"sortBy={quote(f'{ACME}:hired')}") == ["di", "cy", "ada", "bob"]
    assert names(client, where(f'{ACME}:seats eq "3"')) == (
        f"Invalid filter: {ACME}:seats is a number: compare it with a number"
    )
    assert names(client, where('urn:other:2.0:User:seats eq "3"')) == (
        "Invalid filter: unknown schema in urn:other:2.0:User:seats"
    )


def test_attributes_returned_on_request_and_selected_by_urn(
    services: Services, client: Client
) -> None:
    declare(services)
    user = created(client, {"userName": "ada", ACME: {"costCenter": "1", "notes": "n"}})

    assert user[ACME] == {"costCenter": "1"}
    assert fetched(client, user["id"])[ACME] == {"costCenter": "1"}
    assert fetched(client, user["id"], attributes=f"{ACME}:notes") == {
        "schemas": [CORE_USER, ACME],
        "id": user["id"],
        ACME: {"notes": "n"},
    }
    assert fetched(client, user["id"], attributes=ACME)[ACME] == {"costCenter": "1", "notes": "n"}
    assert ACME not in fetched(client, user["id"], excludedAttributes=ACME)


def test_a_declaration_changed_or_removed_hides_values_it_no_longer_has_without_losing_them(
    services: Services, client: Client
) -> None:
    declare(services)
    user = created(client, {"userName": "ada", ACME: {"costCenter": "42", "seats": 3}})
    narrower = {"id": ACME, "attributes": [{"name": "costCenter"}, {"name": "role"}]}
    declare(services, narrower)

    assert fetched(client, user["id"])[ACME] == {"costCenter": "42"}
    # A PATCH of what is declared keeps what is not: declared again, it shows again.
    patched(client, user["id"], {"op": "add", "path": f"{ACME}:role", "value": "x"})
    declare(services)
    assert fetched(client, user["id"])[ACME] == {"costCenter": "42", "seats": 3, "role": "x"}

    count = extension_values_counter(services.sql)
    org_id = services.ledger.organization_id("acme")
    assert org_id is not None
    assert count(org_id, ACME) == 1
    services.ledger.remove_schema("acme", ACME, count, OPERATOR, LOCAL, force=True)
    resource = fetched(client, user["id"])
    assert ACME not in resource
    assert resource["schemas"] == [CORE_USER]
    refused = client.post("/scim/v2/Users", json={"userName": "bob", ACME: {"costCenter": "1"}})
    assert refused.status_code == 400


def test_two_organizations_declare_the_same_urn_each_their_own_way(
    services: Services, client: Client, token: IssuedToken
) -> None:
    declare(services)  # acme: seats is an integer
    other_token = issue(services.ledger, org="globex")
    declare(services, {"id": ACME, "attributes": [{"name": "seats"}]}, org="globex")
    created(client, {"userName": "ada", ACME: {"seats": 3}})

    client.headers["Authorization"] = f"Bearer {other_token.token}"
    assert client.post("/scim/v2/Users", json={"userName": "bo", ACME: {"seats": 3}}).json()[
        "detail"
    ] == (f"{ACME}:seats must be a string")
    created(client, {"userName": "bo", ACME: {"seats": "three"}})
    globex = client.get(f"/scim/v2/Schemas/{ACME}").json()
    assert [a["name"] for a in globex["attributes"]] == ["seats"]
    assert names(client, where(f'{ACME}:seats eq "three"')) == ["bo"]

    client.headers["Authorization"] = f"Bearer {token.token}"
    acme = client.get(f"/scim/v2/Schemas/{ACME}").json()
    assert [a["name"] for a in acme["attributes"]][:2] == ["costCenter", "seats"]
    assert names(client, f"{where(f'{ACME}:seats pr')}") == ["ada"]


def test_discovery_describes_the_organization_s_extensions_to_its_tokens_only(
    services: Services, client: Client
) -> None:
    holders = extension_holders(services.sql)
    services.ledger.declare_schema("acme", SCHEMA, OPERATOR, LOCAL, holders, required=True)

    user_type = client.get("/scim/v2/ResourceTypes/User").json()
    assert user_type["schemaExtensions"] == [
        {"schema": ENTERPRISE_USER, "required": False},
        {"schema": ACME, "required": True},
    ]
    listed = [schema["id"] for schema in client.get("/scim/v2/Schemas").json()["Resources"]]
    assert listed[-1] == ACME
    described = client.get(f"/scim/v2/Schemas/{ACME}").json()
    assert described["name"] == "AcmeUser"
    assert described["meta"]["location"] == f"http://scim.test/scim/v2/Schemas/{ACME}"

    del client.headers["Authorization"]  # public discovery: the built-in schemas only
    assert client.get(f"/scim/v2/Schemas/{ACME}").status_code == 404
    assert client.get("/scim/v2/ResourceTypes/User").json()["schemaExtensions"] == [
        {"schema": ENTERPRISE_USER, "required": False}
    ]
    client.headers["Authorization"] = "Bearer scl_not-a-token"
    assert client.get("/scim/v2/Schemas").status_code == 401


def test_a_rebuild_gives_the_same_resources(services: Services, client: Client) -> None:
    declare(services)
    ids = [created(client, {"userName": name, ACME: values})["id"] for name, values in PEOPLE]
    patched(client, ids[0], {"op": "replace", "path": f"{ACME}:seats", "value": 4})
    before = [fetched(client, user_id) for user_id in ids]
    filtered = names(client, where(f"{ACME}:seats gt 3"))

    rebuild(services.ledger, scim.NAME)

    assert [fetched(client, user_id) for user_id in ids] == before
    assert names(client, where(f"{ACME}:seats gt 3")) == filtered == ["ada", "bob", "cy"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_audit_trail_shows_the_values_before_and_after(
    services: Services, client: Client
) -> None:
    declare(services)
    user = created(client, {"userName": "ada", ACME: {"costCenter": "42"}})
    patched(client, user["id"], {"op": "replace", "path": f"{ACME}:costCenter", "value": "43"})
    services.audit.catch_up()

    with SQL(services.ledger).read() as cursor:
        cursor.execute(
            "SELECT action, subject_name, changes, data FROM audit_entries ORDER BY position"
        )
        rows = [
            (
                row["action"],
                row["subject_name"],
                json.loads(stored_changes(row["changes"], row["data"])),
            )
            for row in cursor.fetchall()
        ]
    declared = [row for row in rows if row[0] == "schema.declared"]
    updated = [row for row in rows if row[0] == "user.updated"]
    assert [(action, name) for action, name, _ in declared] == [("schema.declared", ACME)]
    assert declared[0][2]["attributes"]["after"][:2] == ["costCenter", "seats"]
    assert updated == [
        (
            "user.updated",
            "ada",
            {ACME: {"before": {"costCenter": "42"}, "after": {"costCenter": "43"}}},
        )
    ]


# Groups

GROUP_EXTENSION = "urn:ietf:params:scim:schemas:extension:acme:2.0:Group"
GROUP_SCHEMA: dict[str, Any] = {
    "id": GROUP_EXTENSION,
    "attributes": [
        {"name": "site"},
        {"name": "budget", "type": "integer"},
        {"name": "kind", "canonicalValues": ["team", "role"]},
    ],
}


def created_group(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/scim/v2/Groups", json=body)
    assert response.status_code == 201, response.text
    resource: dict[str, Any] = response.json()
    return resource


def test_groups_carry_their_declared_extension_through_create_put_patch_and_filters(
    services: Services, client: Client
) -> None:
    declare(services, GROUP_SCHEMA)
    member = created(client, {"userName": "ada"})["id"]
    group = created_group(
        client,
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", GROUP_EXTENSION],
            "displayName": "Platform",
            "members": [{"value": member}],
            GROUP_EXTENSION: {"site": "Zürich", "budget": 10, "kind": "Team"},
        },
    )
    assert group["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Group", GROUP_EXTENSION]
    assert group[GROUP_EXTENSION] == {"site": "Zürich", "budget": 10, "kind": "team"}
    assert group["meta"]["created"] == group["meta"]["lastModified"]
    created_group(client, {"displayName": "Sales", f"{GROUP_EXTENSION}:budget": 3})
    path = f"/scim/v2/Groups/{group['id']}"

    body: dict[str, Any] = {"schemas": [PATCH_OP]}
    body["Operations"] = [
        {"op": "Replace", "path": f"{GROUP_EXTENSION}:budget", "value": 12},
        {"op": "add", "value": {GROUP_EXTENSION: {"site": "Basel"}}},
    ]
    response = client.patch(path, json=body)
    assert response.status_code == 200, response.text
    assert response.json()[GROUP_EXTENSION] == {"site": "Basel", "budget": 12, "kind": "team"}
    assert [m["value"] for m in response.json()["members"]] == [member]

    refused = client.patch(
        path,
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": f"{GROUP_EXTENSION}:kind", "value": "x"}],
        },
    )
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        f"{GROUP_EXTENSION}:kind must be one of its canonical values: team, role"
    )
    assert client.get(path).json()["meta"]["version"] == response.json()["meta"]["version"]

    put = client.put(path, json={"displayName": "Platform", GROUP_EXTENSION: {"budget": 1}})
    assert put.status_code == 200, put.text
    assert put.json()[GROUP_EXTENSION] == {"budget": 1}

    def group_names(text: str) -> list[str]:
        found = client.get(f"/scim/v2/Groups?filter={quote(text)}&attributes=displayName")
        assert found.status_code == 200, found.text
        return [resource["displayName"] for resource in found.json()["Resources"]]

    assert group_names(f"{GROUP_EXTENSION}:budget ge 1") == ["Platform", "Sales"]
    assert group_names(f"{GROUP_EXTENSION}:budget gt 2") == ["Sales"]
    assert group_names(f"{GROUP_EXTENSION}:site pr") == []
    undeclared = client.post(
        "/scim/v2/Groups", json={"displayName": "X", "urn:other:Group": {"a": "1"}}
    )
    assert undeclared.status_code == 400
    assert undeclared.json()["detail"].startswith("urn:other:Group is not an extension schema")

    group_type = client.get("/scim/v2/ResourceTypes/Group").json()
    assert group_type["schemaExtensions"] == [{"schema": GROUP_EXTENSION, "required": False}]

    before = client.get("/scim/v2/Groups").json()
    rebuild(services.ledger, scim.NAME)
    assert client.get("/scim/v2/Groups").json() == before


# Uniqueness within the organization (`uniqueness: server`)

UNIQUE_SCHEMA: dict[str, Any] = {
    "id": ACME,
    "attributes": [
        {"name": "employeeId", "uniqueness": "server"},
        {"name": "badge", "uniqueness": "server", "caseExact": True},
        {"name": "desk", "type": "integer", "uniqueness": "server"},
    ],
}


def conflict(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 409, response.text
    assert response.json()["scimType"] == "uniqueness"
    return str(response.json()["detail"])


def test_a_unique_value_is_held_by_one_user_at_a_time(services: Services, client: Client) -> None:
    declare(services, UNIQUE_SCHEMA)
    ada = created(client, {"userName": "ada", ACME: {"employeeId": "E-1", "badge": "AbC"}})

    assert conflict(client, {"userName": "bob", ACME: {"employeeId": "e-1"}}) == (
        f"{ACME}:employeeId: another resource of this organization has this value"
    )
    created(client, {"userName": "bob", ACME: {"badge": "abc", "desk": 7}})  # caseExact
    assert conflict(client, {"userName": "cy", ACME: {"desk": 7}}).startswith(f"{ACME}:desk")

    # A value left is free again: changed, then deleted.
    patched(client, ada["id"], {"op": "replace", "path": f"{ACME}:employeeId", "value": "E-2"})
    cy = created(client, {"userName": "cy", ACME: {"employeeId": "E-1"}})
    taken = client.patch(
        f"/scim/v2/Users/{cy['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": f"{ACME}:employeeId", "value": "E-2"}],
        },
    )
    assert (taken.status_code, taken.json()["scimType"]) == (409, "uniqueness")
    assert client.delete(f"/scim/v2/Users/{ada['id']}").status_code == 204
    patched(client, cy["id"], {"op": "replace", "path": f"{ACME}:employeeId", "value": "E-2"})
    created(client, {"userName": "di", ACME: {"employeeId": "E-1"}})


def test_uniqueness_declared_over_existing_values_claims_them_or_is_refused(
    services: Services, client: Client
) -> None:
    declare(services, {"id": ACME, "attributes": [{"name": "employeeId"}]})
    ada = created(client, {"userName": "ada", ACME: {"employeeId": "E-1"}})
    bob = created(client, {"userName": "bob", ACME: {"employeeId": "e-1"}})
    unique = {"id": ACME, "attributes": [{"name": "employeeId", "uniqueness": "server"}]}

    with pytest.raises(InvalidSchema) as refused:
        declare(services, unique)
    assert str(refused.value) == (
        f"{ACME}:employeeId cannot be unique: {ada['id']} and {bob['id']} share a value"
    )

    patched(client, bob["id"], {"op": "replace", "path": f"{ACME}:employeeId", "value": "E-2"})
    declare(services, unique)
    assert conflict(client, {"userName": "cy", ACME: {"employeeId": "E-1"}}).startswith(ACME)
    assert conflict(client, {"userName": "cy", ACME: {"employeeId": "E-2"}}).startswith(ACME)

    # Not unique any more: shared; unique again: refused until they differ, then kept.
    declare(services, {"id": ACME, "attributes": [{"name": "employeeId"}]})
    cy = created(client, {"userName": "cy", ACME: {"employeeId": "E-1"}})
    with pytest.raises(InvalidSchema):
        declare(services, unique)
    patched(client, cy["id"], {"op": "replace", "path": f"{ACME}:employeeId", "value": "E-3"})
    declare(services, unique)
    assert conflict(client, {"userName": "di", ACME: {"employeeId": "E-3"}}).startswith(ACME)


def test_a_unique_group_value(services: Services, client: Client) -> None:
    schema = {"id": GROUP_EXTENSION, "attributes": [{"name": "code", "uniqueness": "server"}]}
    declare(services, schema)
    first = created_group(client, {"displayName": "A", GROUP_EXTENSION: {"code": "X"}})

    second = client.post(
        "/scim/v2/Groups", json={"displayName": "B", GROUP_EXTENSION: {"code": "x"}}
    )

    assert (second.status_code, second.json()["scimType"]) == (409, "uniqueness")
    assert client.delete(f"/scim/v2/Groups/{first['id']}").status_code == 204
    created_group(client, {"displayName": "B", GROUP_EXTENSION: {"code": "x"}})


def test_two_users_taking_one_unique_value_at_once_only_one_gets_it(
    services: Services, client: Client
) -> None:
    declare(services, UNIQUE_SCHEMA)
    org_id = services.ledger.organization_id("acme")
    assert org_id is not None
    context = CommandContext(org_id, OPERATOR, LOCAL)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def take(number: int) -> None:
        barrier.wait()
        attributes = {"userName": f"u{number}", ACME: {"employeeId": "E-9"}}
        try:
            services.ledger.create_user(context, NewUser(attributes))
            outcomes.append("created")
        except ValueTaken:
            outcomes.append("taken")

    workers = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sorted(outcomes) == ["created"] + ["taken"] * 7


def test_an_attribute_returned_always_is_returned_whatever_is_selected(
    services: Services, client: Client
) -> None:
    schema = {
        "id": ACME,
        "attributes": [{"name": "tenant", "returned": "always"}, {"name": "costCenter"}],
    }
    declare(services, schema)
    user = created(client, {"userName": "ada", ACME: {"tenant": "t1", "costCenter": "42"}})

    only = fetched(client, user["id"], attributes="userName")
    excluded = fetched(client, user["id"], excludedAttributes=ACME)
    listed = client.get("/scim/v2/Users", params={"attributes": "userName"}).json()

    assert only[ACME] == {"tenant": "t1"}
    assert excluded[ACME] == {"tenant": "t1"}
    assert listed["Resources"][0][ACME] == {"tenant": "t1"}
    assert fetched(client, user["id"])[ACME] == {"tenant": "t1", "costCenter": "42"}


def test_a_group_extension_is_removed_only_by_force_while_groups_hold_values(
    services: Services, client: Client
) -> None:
    declare(services, GROUP_SCHEMA)
    created_group(client, {"displayName": "A", GROUP_EXTENSION: {"site": "Basel"}})
    count = extension_values_counter(services.sql)

    with pytest.raises(SchemaInUse) as refused:
        services.ledger.remove_schema("acme", GROUP_EXTENSION, count, OPERATOR, LOCAL)
    services.ledger.remove_schema("acme", GROUP_EXTENSION, count, OPERATOR, LOCAL, force=True)

    assert str(refused.value).startswith(f"1 resource(s) hold values of {GROUP_EXTENSION}")
    assert GROUP_EXTENSION not in client.get("/scim/v2/Groups").json()["Resources"][0]
