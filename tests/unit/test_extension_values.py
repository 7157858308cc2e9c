"""Values of a declared extension in a User resource (a POST or PUT body, the result of a
PATCH): validated against the organization's declaration, in both forms Okta and Entra send
(the extension's object under its URN, or `URN:attribute` keys)."""

from __future__ import annotations

from typing import Any

import pytest

from scimledger.http.errors import ScimError
from scimledger.http.schemas import check_immutable, parse_user
from scimledger.http.user_patch import apply_user_patch
from scimledger.ledger.schemas import Declared, ResourceSchemas, parse_declaration
from tests.scim import CORE_USER, PATCH_OP

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"


def schemas(required: bool = False, **extra: Any) -> ResourceSchemas:
    document = {
        "id": ACME,
        "attributes": [
            {"name": "costCenter"},
            {"name": "seats", "type": "integer"},
            {"name": "ratio", "type": "decimal"},
            {"name": "remote", "type": "boolean"},
            {"name": "hired", "type": "dateTime"},
            {"name": "photo", "type": "binary"},
            {"name": "role", "canonicalValues": ["admin", "member"]},
            {"name": "code", "canonicalValues": ["A1"], "caseExact": True},
            {"name": "badge", "mutability": "readOnly"},
            {"name": "employeeId", "mutability": "immutable"},
            {
                "name": "desk",
                "type": "complex",
                "subAttributes": [{"name": "floor", "type": "integer"}, {"name": "room"}],
            },
            {"name": "skills", "multiValued": True},
            *extra.get("more", []),
        ],
    }
    recorded = parse_declaration(document, [])
    declaration = {"resource_type": "User", "required": required, "document": recorded}
    return Declared.of({ACME: declaration}).user


def kept(body: dict[str, Any], resource_schemas: ResourceSchemas | None = None) -> Any:
    parsed = parse_user({"userName": "bjensen", **body}, resource_schemas or schemas())
    return parsed.attributes.get(ACME)


def refused(body: dict[str, Any], resource_schemas: ResourceSchemas | None = None) -> str:
    with pytest.raises(ScimError) as caught:
        parse_user({"userName": "bjensen", **body}, resource_schemas or schemas())
    assert (caught.value.status, caught.value.scim_type) == (400, "invalidValue")
    return caught.value.detail


def test_okta_sends_the_extension_as_an_object_under_its_urn() -> None:
    body = {
        "schemas": [CORE_USER, ACME],
        ACME: {"costCenter": "42", "seats": 3, "remote": True, "skills": ["go", "sql"]},
    }

    assert kept(body) == {"costCenter": "42", "seats": 3, "remote": True, "skills": ["go", "sql"]}


def test_entra_sends_each_attribute_under_urn_colon_name_in_any_case() -> None:
    body = {f"{ACME}:costCenter": "42", f"{ACME.upper()}:SEATS": 3, f"{ACME}:remote": "True"}

    assert kept(body) == {"costCenter": "42", "seats": 3, "remote": True}


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ({"ratio": 0.5}, {"ratio": 0.5}),
        ({"ratio": 2}, {"ratio": 2}),
        ({"hired": "2026-01-02T03:04:05+01:00"}, {"hired": "2026-01-02T02:04:05.000Z"}),
        ({"hired": "2026-01-02T03:04:05"}, {"hired": "2026-01-02T03:04:05.000Z"}),
        ({"photo": "aGVsbG8="}, {"photo": "aGVsbG8="}),
        ({"role": "ADMIN"}, {"role": "admin"}),
        ({"desk": {"FLOOR": 3, "room": "3.14"}}, {"desk": {"floor": 3, "room": "3.14"}}),
        ({"badge": "gold"}, None),
        ({"costCenter": None}, None),
    ],
)
def test_values_are_kept_in_their_declared_form(value: dict[str, Any], stored: Any) -> None:
    assert kept({ACME: value}) == stored


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"seats": "3"}, f"{ACME}:seats must be a number (integer)"),
        ({"seats": 3.5}, f"{ACME}:seats must be an integer"),
        ({"seats": True}, f"{ACME}:seats must be a number (integer)"),
        ({"seats": 2**60}, f"{ACME}:seats is out of range"),
        ({"ratio": "0.5"}, f"{ACME}:ratio must be a number (decimal)"),
        ({"remote": "yes"}, f"{ACME}:remote must be a boolean"),
        ({"hired": "yesterday"}, f"{ACME}:hired must be an xsd:dateTime"),
        ({"hired": "9999-12-31T23:59:59-01:00"}, f"{ACME}:hired must be an xsd:dateTime"),
        ({"photo": "not base64!"}, f"{ACME}:photo must be base64 (binary)"),
        ({"role": "root"}, f"{ACME}:role must be one of its canonical values: admin, member"),
        ({"code": "a1"}, f"{ACME}:code must be one of its canonical values: A1"),
        ({"costCenter": 42}, f"{ACME}:costCenter must be a string"),
        ({"desk": {"floor": 3, "wing": "B"}}, f"{ACME}:desk has no sub-attribute 'wing'"),
        ({"desk": "3rd floor"}, f"{ACME}:desk must be an object"),
        ({"skills": "go"}, f"{ACME}:skills must be an array"),
        ({"skills": ["go", 7]}, f"{ACME}:skills[1] must be a string"),
        ({"shoeSize": "9"}, f"{ACME} declares no attribute 'shoeSize' (it declares: costCenter"),
    ],
)
def test_a_value_that_does_not_fit_the_declaration_is_refused(
    value: dict[str, Any], message: str
) -> None:
    assert refused({ACME: value}).startswith(message)


def test_the_extension_must_be_an_object() -> None:
    assert refused({ACME: "42"}) == f"{ACME} must be an object"


def test_a_required_attribute_must_be_present_when_the_extension_is() -> None:
    required = schemas(more=[{"name": "site", "required": True}])

    assert refused({ACME: {"costCenter": "42"}}, required) == f"{ACME}:site is required"
    assert kept({}, required) is None  # an optional extension may be absent altogether


def test_a_required_extension_must_be_present() -> None:
    assert refused({}, schemas(required=True)) == (
        f"{ACME} is required: every resource must have its values"
    )


def test_a_hostile_value_is_kept_as_text_exactly() -> None:
    hostile = '=HYPERLINK("http://x")\x1b[2J<script>alert(1)</script>'

    assert kept({ACME: {"costCenter": hostile}}) == {"costCenter": hostile}


def test_an_immutable_value_cannot_change_once_set() -> None:
    resource_schemas = schemas()
    before = {"userName": "b", ACME: {"employeeId": "E1"}}

    check_immutable(resource_schemas, {"userName": "b"}, before)  # set once: allowed
    check_immutable(resource_schemas, before, before)
    with pytest.raises(ScimError) as caught:
        check_immutable(resource_schemas, before, {"userName": "b", ACME: {"employeeId": "E2"}})
    assert (caught.value.status, caught.value.scim_type) == (400, "mutability")
    with pytest.raises(ScimError):
        check_immutable(resource_schemas, before, {"userName": "b"})


# PATCH


def patched(document: dict[str, Any], *operations: dict[str, Any]) -> Any:
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    return apply_user_patch(document, body, schemas()).attributes.get(ACME)


BJENSEN: dict[str, Any] = {"userName": "bjensen", ACME: {"costCenter": "42", "seats": 3}}


def test_patch_paths_name_an_attribute_with_its_urn_as_entra_sends_them() -> None:
    result = patched(
        BJENSEN,
        {"op": "Replace", "path": f"{ACME}:costCenter", "value": "43"},
        {"op": "Add", "path": f"{ACME}:remote", "value": "False"},
        {"op": "Remove", "path": f"{ACME}:seats"},
    )

    assert result == {"costCenter": "43", "remote": False}


def test_patch_without_a_path_takes_the_extension_object_as_okta_sends_it() -> None:
    result = patched(BJENSEN, {"op": "replace", "value": {ACME: {"seats": 4, "role": "member"}}})

    assert result == {"costCenter": "42", "seats": 4, "role": "member"}


def test_patch_of_the_extension_by_its_urn_alone() -> None:
    assert patched(BJENSEN, {"op": "add", "path": ACME, "value": {"seats": 5}}) == {
        "costCenter": "42",
        "seats": 5,
    }
    assert patched(BJENSEN, {"op": "remove", "path": ACME}) is None


def test_patch_of_a_complex_sub_attribute() -> None:
    result = patched(BJENSEN, {"op": "add", "path": f"{ACME}:desk.floor", "value": 2})

    assert result == {"costCenter": "42", "seats": 3, "desk": {"floor": 2}}


def test_patch_with_a_value_that_does_not_fit_changes_nothing() -> None:
    operation = {"op": "add", "path": f"{ACME}:seats", "value": "many"}
    body = {"schemas": [PATCH_OP], "Operations": [operation]}

    with pytest.raises(ScimError) as caught:
        apply_user_patch(BJENSEN, body, schemas())

    assert caught.value.detail == f"{ACME}:seats must be a number (integer)"
    assert BJENSEN == {"userName": "bjensen", ACME: {"costCenter": "42", "seats": 3}}


def test_patch_path_to_an_attribute_the_extension_does_not_declare_is_invalid_path() -> None:
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": f"{ACME}:shoeSize", "value": "9"}],
    }

    with pytest.raises(ScimError) as caught:
        apply_user_patch(BJENSEN, body, schemas())

    assert caught.value.scim_type == "invalidPath"
    assert "(its schema declares: costCenter, seats," in caught.value.detail


def test_a_schemas_key_inside_an_extension_object_is_no_attribute_and_is_ignored() -> None:
    # scim2-models sends the extension's model whole, its `schemas` among its fields.
    body = {ACME: {"schemas": [ACME], "costCenter": "42"}}

    assert kept(body) == {"costCenter": "42"}
