"""Requests the server refuses before touching the ledger."""

from __future__ import annotations

import pytest

from scimledger.http.services import Services
from tests.scim import ERROR, PATCH_OP, Client

# Answered before any storage is read or written: the same on both databases.
pytestmark = pytest.mark.sqlite_only


def test_body_over_one_mebibyte_answers_413_and_creates_nothing(
    client: Client,
) -> None:
    body = b'{"userName": "big@example.com", "title": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(
        "/scim/v2/Users", content=body, headers={"Content-Type": "application/scim+json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "schemas": [ERROR],
        "status": "413",
        "detail": "Request body too large",
    }
    assert client.get("/scim/v2/Users").json()["totalResults"] == 0


def test_patch_body_that_is_not_a_patch_op_answers_400_and_changes_nothing(
    client: Client,
) -> None:
    created = client.post("/scim/v2/Users", json={"userName": "p@example.com"}).json()
    response = client.patch(
        f"/scim/v2/Users/{created['id']}", json={"Operations": [{"op": "replace"}]}
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"
    assert client.get(f"/scim/v2/Users/{created['id']}").json() == created


def test_patch_with_one_invalid_operation_applies_none(
    client: Client,
) -> None:
    created = client.post("/scim/v2/Users", json={"userName": "q@example.com"}).json()
    response = client.patch(
        f"/scim/v2/Users/{created['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "title", "value": "CEO"},
                {"op": "replace", "path": "nickName", "value": 7},
            ],
        },
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert client.get(f"/scim/v2/Users/{created['id']}").json() == created


SCIM_JSON = {"Content-Type": "application/scim+json"}


def _nested(depth: int) -> bytes:
    """A user holding a value `depth` arrays deep: the body nests depth + 1 levels."""
    return b'{"userName": "deep@example.com", "urn:x": ' + b"[" * depth + b"]" * depth + b"}"


# Each body, on each kind of write, answers exactly this error and writes nothing.
REFUSED: list[tuple[str, bytes, str, str]] = [
    (
        "nested 17 deep",
        _nested(16),
        "invalidSyntax",
        "The request body nests deeper than 16 levels",
    ),
    (
        "nested 400,000 deep",
        _nested(400_000),
        "invalidSyntax",
        "The request body nests deeper than 16 levels",
    ),
    (
        "a NUL in a value",
        b'{"userName": "nul\\u0000@example.com"}',
        "invalidValue",
        "A value holds a NUL character",
    ),
    (
        "a NUL in a member name",
        b'{"userName": "n@example.com", "ti\\u0000tle": "x"}',
        "invalidValue",
        "A value holds a NUL character",
    ),
    (
        "a value over 8192 characters",
        b'{"userName": "' + b"a" * 8193 + b'"}',
        "invalidValue",
        "A value is longer than 8192 characters",
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case[0])
def test_hostile_bodies_get_a_scim_error_and_change_nothing(
    client: Client,
    services: Services,
    case: tuple[str, bytes, str, str],
) -> None:
    _, body, scim_type, detail = case
    user = client.post("/scim/v2/Users", json={"userName": "kept@example.com"}).json()
    group = client.post("/scim/v2/Groups", json={"displayName": "Kept"}).json()
    position = services.ledger.recorder.max_notification_id()
    patch = (
        b'{"schemas": ["'
        + PATCH_OP.encode()
        + b'"], "Operations": [{"op": "add", "value": '
        + body
        + b"}]}"
    )
    writes = [
        ("POST", "/scim/v2/Users", body),
        ("PUT", f"/scim/v2/Users/{user['id']}", body),
        ("PATCH", f"/scim/v2/Users/{user['id']}", patch),
        ("POST", "/scim/v2/Groups", body),
        ("PUT", f"/scim/v2/Groups/{group['id']}", body),
        ("PATCH", f"/scim/v2/Groups/{group['id']}", patch),
        ("POST", "/scim/v2/Users/.search", body),
    ]
    for method, path, content in writes:
        response = client.request(method, path, content=content, headers=SCIM_JSON)
        assert (method, path, response.status_code, response.json()) == (
            method,
            path,
            400,
            {"schemas": [ERROR], "status": "400", "scimType": scim_type, "detail": detail},
        )
    assert services.ledger.recorder.max_notification_id() == position
    assert client.get(f"/scim/v2/Users/{user['id']}").json() == user


def test_sixteen_levels_pass_the_nesting_check(client: Client) -> None:
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "urn:x", "value": [[[[[[[[[[[[[]]]]]]]]]]]]]}],
    }  # 16 levels: body, Operations, operation, and the value's 13
    response = client.post("/scim/v2/Users", json={"userName": "depth@example.com"})
    answer = client.patch(f"/scim/v2/Users/{response.json()['id']}", json=patch)
    assert "nests deeper" not in answer.text


def test_a_value_of_8192_characters_is_accepted(client: Client) -> None:
    name = "a" * 8180 + "@example.com"
    assert len(name) == 8192
    created = client.post("/scim/v2/Users", json={"userName": name})
    assert created.status_code == 201
    assert created.json()["userName"] == name


@pytest.mark.parametrize(
    "query",
    ["filter=userName%20eq%20%22a%00%22", "attributes=user%00Name", "sortBy%00=userName"],
)
def test_a_nul_in_a_query_parameter_is_refused(
    client: Client,
    query: str,
) -> None:
    response = client.get(f"/scim/v2/Users?{query}")
    assert response.status_code == 400
    assert response.json() == {
        "schemas": [ERROR],
        "status": "400",
        "scimType": "invalidValue",
        "detail": "A query parameter holds a NUL character",
    }


def test_invalid_utf8_is_invalid_json(client: Client) -> None:
    response = client.post(
        "/scim/v2/Users", content=b'{"userName": "\xff\xfe@example.com"}', headers=SCIM_JSON
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"
    assert response.json()["detail"].startswith("The request body is not valid JSON")
    assert client.get("/scim/v2/Users").json()["totalResults"] == 0


@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_a_datetime_out_of_range_in_utc_is_an_invalid_filter(
    client: Client,
    resource: str,
) -> None:
    """It was a 500: 0001-01-01T00:00:00+01:00 falls in year 0 once converted to UTC."""
    response = client.get(
        f"/scim/v2/{resource}", params={"filter": 'meta.created gt "0001-01-01T00:00:00+01:00"'}
    )
    assert response.status_code == 400
    assert response.json() == {
        "schemas": [ERROR],
        "status": "400",
        "scimType": "invalidFilter",
        "detail": "Invalid filter: '0001-01-01T00:00:00+01:00' is out of the range of dateTime"
        " values",
    }
