"""SCIM discovery endpoints (RFC 7644 section 4), and 404/405 answers, over HTTP."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.scim import CORE_GROUP, CORE_USER, ENTERPRISE_USER, ERROR, LIST_RESPONSE, Client

# Answered before any storage is read or written: the same on both databases. The tests
# share one client (tests/conftest.py), but the one that changes its client's headers.
pytestmark = pytest.mark.sqlite_only

BASE = "http://scim.test/scim/v2"
SCIM_JSON = "application/scim+json"
USER_ATTRIBUTES = [
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "addresses",
    "ims",
    "photos",
    "entitlements",
    "roles",
    "x509Certificates",
    "groups",
]
ENTERPRISE_ATTRIBUTES = [
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
]
USER_RESOURCE_TYPE = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
    "id": "User",
    "name": "User",
    "endpoint": "/Users",
    "description": "User Account",
    "schema": CORE_USER,
    "schemaExtensions": [{"schema": ENTERPRISE_USER, "required": False}],
    "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"},
}
GROUP_RESOURCE_TYPE = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
    "id": "Group",
    "name": "Group",
    "endpoint": "/Groups",
    "description": "Group",
    "schema": CORE_GROUP,
    "schemaExtensions": [],
    "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/Group"},
}


def get_scim(client: Client, path: str) -> dict[str, Any]:
    response = client.get(f"/scim/v2{path}")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == SCIM_JSON
    body: dict[str, Any] = response.json()
    return body


def by_name(attributes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {attribute["name"]: attribute for attribute in attributes}


# ServiceProviderConfig


def test_service_provider_config_states_what_is_supported(
    module_client: Client,
) -> None:
    config = get_scim(module_client, "/ServiceProviderConfig")

    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["patch"] == {"supported": True}
    assert config["bulk"] == {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["sort"] == {"supported": True}
    assert config["etag"] == {"supported": True}
    assert config["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE}/ServiceProviderConfig",
    }


def test_service_provider_config_names_bearer_token_authentication(
    module_client: Client,
) -> None:
    config = get_scim(module_client, "/ServiceProviderConfig")

    schemes = config["authenticationSchemes"]
    assert [(scheme["type"], scheme["primary"]) for scheme in schemes] == [
        ("oauthbearertoken", True)
    ]


def test_service_provider_config_needs_no_token(
    client: Client,
) -> None:
    del client.headers["Authorization"]  # a client of its own: it changes the headers

    assert get_scim(client, "/ServiceProviderConfig")["patch"] == {"supported": True}


# ResourceTypes


def test_resource_types_list_users_and_groups(module_client: Client) -> None:
    assert get_scim(module_client, "/ResourceTypes") == {
        "schemas": [LIST_RESPONSE],
        "totalResults": 2,
        "itemsPerPage": 2,
        "startIndex": 1,
        "Resources": [USER_RESOURCE_TYPE, GROUP_RESOURCE_TYPE],
    }


def test_group_resource_type_is_served_by_name(module_client: Client) -> None:
    assert get_scim(module_client, "/ResourceTypes/Group") == GROUP_RESOURCE_TYPE


def test_user_resource_type_is_served_by_name(module_client: Client) -> None:
    assert get_scim(module_client, "/ResourceTypes/User") == USER_RESOURCE_TYPE


def test_unknown_resource_type_answers_404(module_client: Client) -> None:
    response = module_client.get("/scim/v2/ResourceTypes/Device")

    assert response.status_code == 404
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json() == {
        "schemas": [ERROR],
        "status": "404",
        "detail": "Resource type Device not found",
    }


# Schemas


def test_schemas_list_the_user_group_and_enterprise_schemas(
    module_client: Client,
) -> None:
    listed = get_scim(module_client, "/Schemas")

    assert listed["schemas"] == [LIST_RESPONSE]
    assert (listed["totalResults"], listed["itemsPerPage"], listed["startIndex"]) == (3, 3, 1)
    assert [schema["id"] for schema in listed["Resources"]] == [
        CORE_USER,
        CORE_GROUP,
        ENTERPRISE_USER,
    ]


def test_listed_schemas_equal_the_schemas_served_by_id(
    module_client: Client,
) -> None:
    listed = get_scim(module_client, "/Schemas")["Resources"]

    assert listed == [
        get_scim(module_client, f"/Schemas/{CORE_USER}"),
        get_scim(module_client, f"/Schemas/{CORE_GROUP}"),
        get_scim(module_client, f"/Schemas/{ENTERPRISE_USER}"),
    ]


def test_user_schema_lists_exactly_its_attributes(
    module_client: Client,
) -> None:
    schema = get_scim(module_client, f"/Schemas/{CORE_USER}")

    assert schema["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
    assert schema["id"] == CORE_USER
    assert schema["name"] == "User"
    assert schema["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{CORE_USER}"}
    assert [attribute["name"] for attribute in schema["attributes"]] == USER_ATTRIBUTES


def test_user_schema_password_is_write_only_and_never_returned(
    module_client: Client,
) -> None:
    schema = get_scim(module_client, f"/Schemas/{CORE_USER}")

    password = by_name(schema["attributes"])["password"]
    assert (password["mutability"], password["returned"]) == ("writeOnly", "never")


def test_user_schema_user_name_is_required_and_unique(
    module_client: Client,
) -> None:
    schema = get_scim(module_client, f"/Schemas/{CORE_USER}")

    user_name = by_name(schema["attributes"])["userName"]
    assert (user_name["required"], user_name["uniqueness"], user_name["caseExact"]) == (
        True,
        "server",
        False,
    )


def test_user_schema_groups_are_read_only(module_client: Client) -> None:
    schema = get_scim(module_client, f"/Schemas/{CORE_USER}")

    groups = by_name(schema["attributes"])["groups"]
    assert (groups["mutability"], groups["multiValued"]) == ("readOnly", True)


def test_enterprise_schema_lists_its_attributes(
    module_client: Client,
) -> None:
    schema = get_scim(module_client, f"/Schemas/{ENTERPRISE_USER}")

    assert schema["id"] == ENTERPRISE_USER
    assert schema["name"] == "EnterpriseUser"
    assert schema["meta"] == {
        "resourceType": "Schema",
        "location": f"{BASE}/Schemas/{ENTERPRISE_USER}",
    }
    assert [attribute["name"] for attribute in schema["attributes"]] == ENTERPRISE_ATTRIBUTES


def test_unknown_schema_answers_404(module_client: Client) -> None:
    response = module_client.get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Device")

    assert response.status_code == 404
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json() == {
        "schemas": [ERROR],
        "status": "404",
        "detail": "Schema urn:ietf:params:scim:schemas:core:2.0:Device not found",
    }


# Unknown paths and methods


def test_unknown_path_answers_404_scim_error(module_client: Client) -> None:
    response = module_client.get("/scim/v2/Nope")

    assert response.status_code == 404
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json() == {"schemas": [ERROR], "status": "404", "detail": "Resource not found"}


def test_wrong_method_answers_405_scim_error(module_client: Client) -> None:
    response = module_client.delete("/scim/v2/Users")

    assert response.status_code == 405
    assert response.headers["Content-Type"] == SCIM_JSON
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "GET", "POST"}
    assert response.json() == {
        "schemas": [ERROR],
        "status": "405",
        "detail": "Method not allowed on this resource",
    }


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"])
def test_discovery_endpoints_answer_405_to_writes(
    module_client: Client,
    method: str,
    path: str,
) -> None:
    response = module_client.request(method, f"/scim/v2{path}", json={})
    assert response.status_code == 405
    assert response.headers["Content-Type"] == SCIM_JSON
    assert response.json() == {
        "schemas": [ERROR],
        "status": "405",
        "detail": "Method not allowed on this resource",
    }


def _scim_operations(app: Any) -> set[tuple[str, str]]:
    """(path below /scim/v2 with {id} for any parameter, method) of every SCIM route."""
    found = set()
    for route in app.routes:
        if not route.path.startswith("/scim/v2/"):
            continue
        path = re.sub(r"\{[^}]+\}", "{id}", route.path.removeprefix("/scim/v2"))
        for method in getattr(route, "methods", ()):
            if method not in ("HEAD", "OPTIONS"):
                found.add((path, method.lower()))
    return found


def test_the_openapi_document_is_served_and_describes_every_scim_route(
    module_client: Client,
) -> None:
    response = module_client.get(f"{BASE}/openapi.json", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.0.3"
    described = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert described == _scim_operations(module_client.app) - {("/openapi.json", "get")}


def test_the_openapi_document_shows_no_password(
    module_client: Client,
) -> None:
    """It is served to anyone: its examples leave the write-only password out."""
    document = module_client.get(f"{BASE}/openapi.json", headers={"Authorization": ""}).json()

    def passwords(value: Any) -> list[Any]:
        if isinstance(value, dict):
            found = [value["password"]] if isinstance(value.get("password"), str) else []
            return found + [p for item in value.values() for p in passwords(item)]
        if isinstance(value, list):
            return [p for item in value for p in passwords(item)]
        return []

    assert passwords(document["paths"]) == []
