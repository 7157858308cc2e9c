"""apply_user_patch: a SCIM PatchOp applied to a User document, as Okta and Entra send it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scimledger.http.errors import ScimError
from scimledger.http.patch import apply_user_patch
from scimledger.http.schemas import UserInput

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

BJENSEN: dict[str, Any] = {
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    "active": True,
}


def patch_op(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def patched(document: dict[str, Any], body: dict[str, Any]) -> UserInput:
    """The patch result, checking that the caller's document was left as it was."""
    before = copy.deepcopy(document)
    result = apply_user_patch(document, body)
    assert document == before
    return result


def rejected(document: dict[str, Any], body: Any) -> ScimError:
    """The error the patch raises, checking that the caller's document was left as it was."""
    before = copy.deepcopy(document)
    with pytest.raises(ScimError) as caught:
        apply_user_patch(document, body)
    assert document == before
    return caught.value


def test_okta_deactivation_replaces_active_without_a_path() -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }

    assert patched(BJENSEN, body) == UserInput(
        attributes={
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        },
        active=False,
        password=None,
    )


def test_replace_without_path_merges_name_leaving_other_sub_attributes() -> None:
    body = patch_op({"op": "replace", "value": {"name": {"givenName": "Babs"}}})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Babs", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_replace_without_path_sets_several_attributes() -> None:
    body = patch_op(
        {
            "op": "replace",
            "value": {"userName": "barbara", "displayName": "Babs", "name": {"familyName": "J"}},
        }
    )

    assert patched(BJENSEN, body).attributes == {
        "userName": "barbara",
        "displayName": "Babs",
        "name": {"givenName": "Barbara", "familyName": "J"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_replace_without_path_replaces_a_multi_valued_attribute() -> None:
    body = patch_op({"op": "replace", "value": {"emails": [{"value": "babs@jensen.org"}]}})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "babs@jensen.org"}],
    }


def test_replace_path_active() -> None:
    body = patch_op({"op": "replace", "path": "active", "value": False})

    assert patched(BJENSEN, body).active is False


def test_replace_path_sub_attribute_leaves_the_others() -> None:
    body = patch_op({"op": "replace", "path": "name.givenName", "value": "Babs"})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Babs", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_replace_path_sub_attribute_creates_its_parent() -> None:
    body = patch_op({"op": "replace", "path": "name.givenName", "value": "Babs"})

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Babs"},
    }


def test_replace_path_complex_attribute_merges_its_sub_attributes() -> None:
    body = patch_op({"op": "replace", "path": "name", "value": {"givenName": "Babs"}})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Babs", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_replace_path_user_name() -> None:
    body = patch_op({"op": "replace", "path": "userName", "value": "barbara"})

    assert patched(BJENSEN, body).attributes == {
        "userName": "barbara",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_replace_path_emails_replaces_the_whole_list() -> None:
    body = patch_op(
        {
            "op": "replace",
            "path": "emails",
            "value": [{"value": "babs@jensen.org", "type": "home", "primary": True}],
        }
    )

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "babs@jensen.org", "type": "home", "primary": True}],
    }


def test_replace_path_enterprise_attribute() -> None:
    document = {"userName": "bjensen", ENTERPRISE_USER: {"department": "Sales", "costCenter": "1"}}
    body = patch_op(
        {"op": "replace", "path": f"{ENTERPRISE_USER}:department", "value": "Tour Operations"}
    )

    assert patched(document, body).attributes == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations", "costCenter": "1"},
    }


def test_replace_path_enterprise_attribute_creates_the_extension() -> None:
    body = patch_op(
        {"op": "replace", "path": f"{ENTERPRISE_USER}:department", "value": "Tour Operations"}
    )

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations"},
    }


def test_replace_path_enterprise_manager_value() -> None:
    body = patch_op({"op": "replace", "path": f"{ENTERPRISE_USER}:manager.value", "value": "42"})

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"manager": {"value": "42"}},
    }


def test_replace_path_external_id() -> None:
    body = patch_op({"op": "replace", "path": "externalId", "value": "701984"})

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "externalId": "701984",
    }


def test_path_names_match_case_insensitively() -> None:
    body = patch_op({"op": "replace", "path": "NAME.GIVENNAME", "value": "Babs"})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Babs", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_core_urn_prefixed_path_names_the_core_attribute() -> None:
    body = patch_op(
        {
            "op": "replace",
            "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName",
            "value": "Babs",
        }
    )

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "displayName": "Babs",
    }


def test_replace_path_password_sets_the_password() -> None:
    body = patch_op({"op": "replace", "path": "password", "value": "t1meMa$heen"})

    assert patched(BJENSEN, body) == UserInput(
        attributes={
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        },
        active=True,
        password="t1meMa$heen",
    )


def test_add_appends_to_a_multi_valued_attribute_without_duplicating() -> None:
    body = patch_op(
        {
            "op": "add",
            "path": "emails",
            "value": [
                {"value": "bjensen@example.com", "type": "work", "primary": True},
                {"value": "babs@jensen.org", "type": "home"},
            ],
        }
    )

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
    }


def test_add_of_a_single_object_appends_it_to_a_multi_valued_attribute() -> None:
    body = patch_op(
        {"op": "add", "path": "emails", "value": {"value": "babs@jensen.org", "type": "home"}}
    )

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
    }


def test_add_to_an_absent_multi_valued_attribute_creates_it() -> None:
    body = patch_op({"op": "add", "path": "phoneNumbers", "value": [{"value": "555-555-5555"}]})

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "phoneNumbers": [{"value": "555-555-5555"}],
    }


def test_add_without_path_appends_to_a_multi_valued_attribute() -> None:
    body = patch_op({"op": "add", "value": {"emails": [{"value": "babs@jensen.org"}]}})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org"},
        ],
    }


def test_add_of_a_primary_email_makes_the_others_not_primary() -> None:
    body = patch_op(
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "babs@jensen.org", "type": "home", "primary": True}],
        }
    )

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": False},
            {"value": "babs@jensen.org", "type": "home", "primary": True},
        ],
    }


def test_add_merges_a_complex_attribute() -> None:
    body = patch_op({"op": "add", "path": "name", "value": {"middleName": "Jane"}})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_add_sets_a_simple_attribute() -> None:
    body = patch_op({"op": "add", "path": "title", "value": "Tour Guide"})

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "title": "Tour Guide",
    }


def test_add_replaces_a_simple_attribute_that_has_a_value() -> None:
    body = patch_op({"op": "add", "path": "title", "value": "Tour Guide"})

    assert patched({"userName": "bjensen", "title": "Usher"}, body).attributes == {
        "userName": "bjensen",
        "title": "Tour Guide",
    }


def test_remove_an_attribute() -> None:
    body = patch_op({"op": "remove", "path": "emails"})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
    }


def test_remove_a_sub_attribute_leaves_the_others() -> None:
    body = patch_op({"op": "remove", "path": "name.givenName"})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_removing_the_last_sub_attribute_drops_the_parent() -> None:
    body = patch_op({"op": "remove", "path": "name.givenName"})

    assert patched({"userName": "bjensen", "name": {"givenName": "Barbara"}}, body).attributes == {
        "userName": "bjensen"
    }


def test_removing_the_last_enterprise_attribute_drops_the_extension() -> None:
    document = {"userName": "bjensen", ENTERPRISE_USER: {"manager": {"value": "42"}}}
    body = patch_op({"op": "remove", "path": f"{ENTERPRISE_USER}:manager.value"})

    assert patched(document, body).attributes == {"userName": "bjensen"}


def test_remove_of_an_absent_attribute_changes_nothing() -> None:
    body = patch_op({"op": "remove", "path": "nickName"})

    assert patched(BJENSEN, body) == UserInput(
        attributes={
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        },
        active=True,
        password=None,
    )


def test_remove_of_a_sub_attribute_of_an_absent_parent_changes_nothing() -> None:
    body = patch_op({"op": "remove", "path": f"{ENTERPRISE_USER}:manager.value"})

    assert patched({"userName": "bjensen"}, body).attributes == {"userName": "bjensen"}


def test_operations_apply_in_order() -> None:
    body = patch_op(
        {"op": "add", "path": "nickName", "value": "Babs"},
        {"op": "replace", "path": "nickName", "value": "Barb"},
        {"op": "remove", "path": "name"},
    )

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "nickName": "Barb",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_capitalised_op_names_from_entra_are_accepted() -> None:
    body = patch_op(
        {"op": "Replace", "path": "name.givenName", "value": "Babs"},
        {"op": "Add", "path": "title", "value": "Tour Guide"},
        {"op": "Remove", "path": "emails"},
    )

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Babs", "familyName": "Jensen"},
        "title": "Tour Guide",
    }


def test_boolean_string_from_entra_is_read_as_a_boolean() -> None:
    body = patch_op({"op": "Replace", "path": "active", "value": "False"})

    assert patched(BJENSEN, body).active is False


def test_boolean_string_from_entra_without_path_is_read_as_a_boolean() -> None:
    body = patch_op({"op": "Replace", "value": {"active": "False"}})

    assert patched(BJENSEN, body).active is False


def test_dotted_keys_without_path_from_entra_name_sub_attributes() -> None:
    body = patch_op({"op": "Replace", "value": {"name.givenName": "Babs", "name.middleName": "J"}})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Babs", "familyName": "Jensen", "middleName": "J"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_enterprise_urn_prefixed_keys_without_path_name_extension_attributes() -> None:
    body = patch_op({"op": "Add", "value": {f"{ENTERPRISE_USER}:department": "Tour Operations"}})

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations"},
    }


def test_enterprise_object_without_path_merges_into_the_extension() -> None:
    document = {"userName": "bjensen", ENTERPRISE_USER: {"costCenter": "4130"}}
    body = patch_op(
        {"op": "replace", "value": {ENTERPRISE_USER: {"department": "Tour Operations"}}}
    )

    assert patched(document, body).attributes == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"costCenter": "4130", "department": "Tour Operations"},
    }


def test_read_only_keys_in_a_value_without_path_are_ignored() -> None:
    body = patch_op(
        {
            "op": "replace",
            "value": {
                "id": "2819c223-7f76-453a-919d-413861904646",
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "meta": {"resourceType": "User"},
                "groups": [{"value": "00300000005N2Y6AAK"}],
                "displayName": "Babs",
            },
        }
    )

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "displayName": "Babs",
    }


@pytest.mark.parametrize("body", [[], "replace", None], ids=repr)
def test_body_that_is_not_an_object_is_invalid_syntax(body: Any) -> None:
    error = rejected(BJENSEN, body)

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


@pytest.mark.parametrize(
    "schemas",
    [None, [], ["urn:ietf:params:scim:schemas:core:2.0:User"], PATCH_OP],
    ids=["absent", "empty", "other schema", "not a list"],
)
def test_body_without_the_patch_op_schema_is_invalid_syntax(schemas: Any) -> None:
    body: dict[str, Any] = {"Operations": [{"op": "replace", "path": "title", "value": "x"}]}
    if schemas is not None:
        body["schemas"] = schemas

    error = rejected(BJENSEN, body)

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


@pytest.mark.parametrize("operations", [None, [], {}], ids=["absent", "empty", "object"])
def test_body_without_operations_is_invalid_syntax(operations: Any) -> None:
    body: dict[str, Any] = {"schemas": [PATCH_OP]}
    if operations is not None:
        body["Operations"] = operations

    error = rejected(BJENSEN, body)

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


def test_operation_that_is_not_an_object_is_invalid_syntax() -> None:
    error = rejected(BJENSEN, patch_op("replace"))  # type: ignore[arg-type]

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


@pytest.mark.parametrize("op", ["move", "", None, 1])
def test_unknown_op_is_invalid_syntax(op: Any) -> None:
    error = rejected(BJENSEN, patch_op({"op": op, "path": "title", "value": "x"}))

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidSyntax",
        "Operations[0].op must be add, replace or remove",
    )


def test_remove_without_path_is_no_target() -> None:
    error = rejected(BJENSEN, patch_op({"op": "remove"}))

    assert (error.status, error.scim_type) == (400, "noTarget")


@pytest.mark.parametrize(
    "path",
    [
        "favouriteColour",
        "name.nickname",
        "emails.value",
        f"{ENTERPRISE_USER}:shoeSize",
        "urn:example:params:scim:schemas:extension:custom:2.0:User:shoeSize",
        "name..givenName",
    ],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_path_to_an_unknown_attribute_is_invalid_path(op: str, path: str) -> None:
    error = rejected(BJENSEN, patch_op({"op": op, "path": path, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


def test_path_that_is_not_a_string_is_invalid_path() -> None:
    error = rejected(BJENSEN, patch_op({"op": "replace", "path": 42, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


@pytest.mark.parametrize("path", ["id", "meta", "meta.lastModified", "groups", "schemas"])
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_path_to_a_server_owned_attribute_is_a_mutability_error(op: str, path: str) -> None:
    error = rejected(BJENSEN, patch_op({"op": op, "path": path, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "mutability")


def test_path_to_read_only_manager_display_name_is_a_mutability_error() -> None:
    body = patch_op(
        {"op": "replace", "path": f"{ENTERPRISE_USER}:manager.displayName", "value": "John"}
    )

    error = rejected(BJENSEN, body)

    assert (error.status, error.scim_type) == (400, "mutability")


@pytest.mark.parametrize(
    "path", ["userName", "USERNAME", "urn:ietf:params:scim:schemas:core:2.0:User:userName"]
)
def test_removing_user_name_is_invalid_value(path: str) -> None:
    error = rejected(BJENSEN, patch_op({"op": "remove", "path": path}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


@pytest.mark.parametrize("value", ["", None])
def test_replacing_user_name_with_nothing_is_invalid_value(value: Any) -> None:
    error = rejected(BJENSEN, patch_op({"op": "replace", "path": "userName", "value": value}))

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidValue",
        "userName is required",
    )


@pytest.mark.parametrize("op", ["add", "replace"])
def test_add_or_replace_without_value_is_invalid_value(op: str) -> None:
    error = rejected(BJENSEN, patch_op({"op": op, "path": "title"}))

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidValue",
        f"Operations[0]: {op} needs a value",
    )


@pytest.mark.parametrize("value", ["Babs", ["Babs"], None])
def test_value_without_path_that_is_not_an_object_is_invalid_value(value: Any) -> None:
    error = rejected(BJENSEN, patch_op({"op": "replace", "value": value}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_result_is_validated_like_a_put_body() -> None:
    error = rejected(BJENSEN, patch_op({"op": "replace", "path": "name.givenName", "value": 42}))

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidValue",
        "name.givenName must be a string",
    )


@pytest.mark.parametrize(
    "path", ['emails[type eq "work"].value', 'emails[type eq "work"]', "emails[primary eq true]"]
)
def test_value_filter_path_is_invalid_path_until_supported(path: str) -> None:
    error = rejected(BJENSEN, patch_op({"op": "replace", "path": path, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


def test_invalid_operation_later_in_the_list_rejects_the_whole_request() -> None:
    body = patch_op(
        {"op": "replace", "path": "name.givenName", "value": "Babs"},
        {"op": "remove", "path": "emails"},
        {"op": "replace", "path": "id", "value": "x"},
    )

    error = rejected(BJENSEN, body)

    assert (error.status, error.scim_type) == (400, "mutability")


def test_unknown_attributes_in_a_value_without_path_are_ignored_like_in_a_put() -> None:
    # Okta sends custom app attributes under its own extension URNs.
    body = patch_op(
        {
            "op": "replace",
            "value": {
                "displayName": "Babs",
                "favouriteColour": "green",
                "urn:okta:custom:2.0:User": {"costCode": "7"},
            },
        }
    )

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        "displayName": "Babs",
    }
