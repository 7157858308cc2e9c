"""apply_user_patch: a SCIM PatchOp applied to a User document, as Okta and Entra send it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scimledger.http.errors import ScimError
from scimledger.http.schemas import UserInput
from scimledger.http.user_patch import apply_user_patch
from tests.scim import ENTERPRISE_USER, PATCH_OP

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
    error = rejected(BJENSEN, {"schemas": [PATCH_OP], "Operations": ["replace"]})

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
        "name..givenName",
    ],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_path_to_an_unknown_attribute_is_invalid_path(op: str, path: str) -> None:
    error = rejected(BJENSEN, patch_op({"op": op, "path": path, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_path_into_an_extension_not_declared_is_refused_naming_it(op: str) -> None:
    urn = "urn:example:params:scim:schemas:extension:custom:2.0:User"
    error = rejected(BJENSEN, patch_op({"op": op, "path": f"{urn}:shoeSize", "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert error.detail.startswith(f"{urn} is not an extension schema this organization has")
    assert "scimledger schemas add" in error.detail


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


def test_invalid_operation_later_in_the_list_rejects_the_whole_request() -> None:
    body = patch_op(
        {"op": "replace", "path": "name.givenName", "value": "Babs"},
        {"op": "remove", "path": "emails"},
        {"op": "replace", "path": "id", "value": "x"},
    )

    error = rejected(BJENSEN, body)

    assert (error.status, error.scim_type) == (400, "mutability")


def test_an_extension_not_declared_in_a_value_without_path_is_refused_not_dropped() -> None:
    # Okta sends custom app attributes under the extension URN its admin mapped them to.
    body = patch_op(
        {
            "op": "replace",
            "value": {"displayName": "Babs", "urn:okta:custom:2.0:User": {"costCode": "7"}},
        }
    )

    error = rejected(BJENSEN, body)

    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert error.detail.startswith("urn:okta:custom:2.0:User is not an extension schema")


def test_a_value_of_an_unknown_core_attribute_without_path_is_refused_as_in_a_put() -> None:
    body = patch_op({"op": "replace", "value": {"displayName": "Babs", "favouriteColour": "green"}})

    error = rejected(BJENSEN, body)

    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert error.detail.startswith("'favouriteColour' is not an attribute of the User schema")


def test_an_empty_value_of_an_unknown_core_attribute_without_path_is_ignored() -> None:
    body = patch_op({"op": "replace", "value": {"displayName": "Babs", "roles": []}})

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        "displayName": "Babs",
    }


# Value-filter paths (RFC 7644 section 3.5.2): `attr[filter]` and `attr[filter].subAttr`.

TWO_EMAILS: dict[str, Any] = {
    "userName": "bjensen",
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
}

# RFC 7643 section 8.2, with erratum 5990's ISO country code.
WORK_ADDRESS: dict[str, Any] = {
    "type": "work",
    "streetAddress": "100 Universal City Plaza",
    "locality": "Hollywood",
    "region": "CA",
    "postalCode": "91608",
    "country": "US",
    "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
    "primary": True,
}
HOME_ADDRESS: dict[str, Any] = {
    "type": "home",
    "streetAddress": "456 Hollywood Blvd",
    "locality": "Hollywood",
    "region": "CA",
    "postalCode": "91608",
    "country": "US",
    "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA",
}


def test_entra_replace_of_the_work_email_value_and_family_name() -> None:
    # Microsoft's documented request for "Update User [Multi-valued properties]".
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updatedEmail@microsoft.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ],
    }

    assert patched(BJENSEN, body).attributes == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "updatedFamilyName"},
        "emails": [{"value": "updatedEmail@microsoft.com", "type": "work", "primary": True}],
    }


def test_entra_replace_of_a_work_email_the_user_lacks_adds_one() -> None:
    body = patch_op(
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": "updatedEmail@microsoft.com",
        }
    )

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "emails": [{"type": "work", "value": "updatedEmail@microsoft.com"}],
    }


def test_eq_filter_without_a_match_appends_after_the_existing_values() -> None:
    body = patch_op({"op": "replace", "path": 'emails[type eq "other"].value', "value": "b@x.org"})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
            {"type": "other", "value": "b@x.org"},
        ],
    }


def test_add_with_an_and_of_eq_filters_without_a_match_adds_the_value_they_describe() -> None:
    body = patch_op(
        {
            "op": "add",
            "path": 'phoneNumbers[type eq "mobile" and display eq "Cell"].value',
            "value": "+1 555 0100",
        }
    )

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "phoneNumbers": [{"type": "mobile", "display": "Cell", "value": "+1 555 0100"}],
    }


def test_added_value_names_sub_attributes_as_the_schema_spells_them() -> None:
    body = patch_op({"op": "add", "path": 'phoneNumbers[TYPE eq "fax"].VALUE', "value": "555"})

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "phoneNumbers": [{"type": "fax", "value": "555"}],
    }


def test_replace_filtered_sub_attribute_changes_only_the_matching_value() -> None:
    body = patch_op({"op": "replace", "path": 'emails[type eq "home"].value', "value": "b@x.org"})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "b@x.org", "type": "home"},
        ],
    }


def test_replace_filtered_sub_attribute_changes_every_matching_value() -> None:
    document = {
        "userName": "bjensen",
        "phoneNumbers": [
            {"value": "555-0100", "type": "work"},
            {"value": "555-0101", "type": "home"},
            {"value": "555-0102", "type": "work"},
        ],
    }
    body = patch_op(
        {"op": "replace", "path": 'phoneNumbers[type eq "work"].display', "value": "Desk"}
    )

    assert patched(document, body).attributes == {
        "userName": "bjensen",
        "phoneNumbers": [
            {"value": "555-0100", "type": "work", "display": "Desk"},
            {"value": "555-0101", "type": "home"},
            {"value": "555-0102", "type": "work", "display": "Desk"},
        ],
    }


def test_rfc_replace_of_the_work_address() -> None:
    # RFC 7644 section 3.5.2.3, replacing all of a complex value selected by a filter.
    document = {"userName": "bjensen", "addresses": [WORK_ADDRESS, HOME_ADDRESS]}
    new_work_address = {
        "type": "work",
        "streetAddress": "911 Universal City Plaza",
        "locality": "Hollywood",
        "region": "CA",
        "postalCode": "91608",
        "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
        "primary": True,
    }
    body = patch_op(
        {"op": "replace", "path": 'addresses[type eq "work"]', "value": new_work_address}
    )

    assert patched(document, body).attributes == {
        "userName": "bjensen",
        "addresses": [new_work_address, HOME_ADDRESS],
    }


def test_rfc_replace_of_the_work_street_address() -> None:
    # RFC 7644 section 3.5.2.3, replacing one sub-attribute of a value selected by a filter.
    document = {"userName": "bjensen", "addresses": [WORK_ADDRESS, HOME_ADDRESS]}
    body = patch_op(
        {
            "op": "replace",
            "path": 'addresses[type eq "work"].streetAddress',
            "value": "1010 Broadway Ave",
        }
    )

    assert patched(document, body).attributes == {
        "userName": "bjensen",
        "addresses": [{**WORK_ADDRESS, "streetAddress": "1010 Broadway Ave"}, HOME_ADDRESS],
    }


def test_replace_filtered_value_keeps_sub_attributes_the_value_does_not_name() -> None:
    body = patch_op(
        {"op": "replace", "path": 'emails[type eq "home"]', "value": {"value": "b@x.org"}}
    )

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "b@x.org", "type": "home"},
        ],
    }


def test_replace_filtered_value_spells_sub_attributes_as_the_schema_does() -> None:
    body = patch_op(
        {
            "op": "replace",
            "path": 'emails[type eq "home"]',
            "value": {"VALUE": "b@x.org", "Display": "Babs"},
        }
    )

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "b@x.org", "type": "home", "display": "Babs"},
        ],
    }


def test_filtered_sub_attribute_is_spelled_as_the_schema_does() -> None:
    body = patch_op({"op": "replace", "path": 'emails[type eq "home"].DISPLAY', "value": "Babs"})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home", "display": "Babs"},
        ],
    }


def test_add_filtered_sub_attribute_sets_it_on_the_matching_value() -> None:
    body = patch_op({"op": "add", "path": 'emails[type eq "work"].display', "value": "Work"})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True, "display": "Work"},
            {"value": "babs@jensen.org", "type": "home"},
        ],
    }


def test_add_filtered_value_merges_into_the_matching_value() -> None:
    body = patch_op(
        {
            "op": "add",
            "path": 'emails[value eq "babs@jensen.org"]',
            "value": {"display": "Babs", "type": "other"},
        }
    )

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "other", "display": "Babs"},
        ],
    }


def test_filter_compares_strings_case_insensitively() -> None:
    body = patch_op({"op": "replace", "path": 'emails[type eq "HOME"].value', "value": "b@x.org"})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "b@x.org", "type": "home"},
        ],
    }


def test_filter_path_may_name_the_attribute_with_the_core_schema_urn() -> None:
    path = 'urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "home"].value'
    body = patch_op({"op": "replace", "path": path, "value": "b@x.org"})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "b@x.org", "type": "home"},
        ],
    }


def test_bracket_inside_a_quoted_filter_string_does_not_end_the_filter() -> None:
    document = {"userName": "bjensen", "emails": [{"value": "a@x.org", "display": 'te"a]m'}]}
    body = patch_op(
        {"op": "replace", "path": r'emails[display eq "te\"a]m"].value', "value": "b@x.org"}
    )

    assert patched(document, body).attributes == {
        "userName": "bjensen",
        "emails": [{"value": "b@x.org", "display": 'te"a]m'}],
    }


def test_setting_primary_through_a_filter_demotes_the_other_primary() -> None:
    body = patch_op({"op": "replace", "path": 'emails[type eq "home"].primary', "value": True})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": False},
            {"value": "babs@jensen.org", "type": "home", "primary": True},
        ],
    }


def test_entra_string_true_primary_through_a_filter_demotes_the_other_primary() -> None:
    body = patch_op({"op": "Replace", "path": 'emails[type eq "home"].primary', "value": "True"})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": False},
            {"value": "babs@jensen.org", "type": "home", "primary": True},
        ],
    }


def test_adding_a_primary_value_through_a_filter_demotes_the_other_primary() -> None:
    body = patch_op(
        {"op": "add", "path": 'emails[type eq "other" and primary eq true].value', "value": "o@x"}
    )

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": False},
            {"value": "babs@jensen.org", "type": "home"},
            {"type": "other", "primary": True, "value": "o@x"},
        ],
    }


def test_filter_selecting_two_values_cannot_make_both_primary() -> None:
    document = {
        "userName": "bjensen",
        "emails": [{"value": "a@x.org", "type": "work"}, {"value": "b@x.org", "type": "work"}],
    }
    body = patch_op({"op": "replace", "path": 'emails[type eq "work"].primary', "value": True})

    error = rejected(document, body)

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidValue",
        "emails: at most one value may be primary",
    )


def test_rfc_remove_of_work_emails_at_example_com() -> None:
    # RFC 7644 section 3.5.2.2.
    document = {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@example.com", "type": "home"},
            {"value": "barbara@jensen.org", "type": "work"},
        ],
    }
    body = patch_op({"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'})

    assert patched(document, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "babs@example.com", "type": "home"},
            {"value": "barbara@jensen.org", "type": "work"},
        ],
    }


def test_remove_filtered_of_every_value_removes_the_attribute() -> None:
    body = patch_op({"op": "remove", "path": 'emails[value co "@"]'})

    assert patched(TWO_EMAILS, body).attributes == {"userName": "bjensen"}


def test_remove_filtered_without_a_match_changes_nothing() -> None:
    body = patch_op({"op": "remove", "path": 'emails[type eq "other"]'})

    assert patched(TWO_EMAILS, body).attributes == TWO_EMAILS


def test_remove_filtered_of_an_absent_attribute_changes_nothing() -> None:
    body = patch_op({"op": "remove", "path": 'phoneNumbers[type eq "work"]'})

    assert patched(TWO_EMAILS, body).attributes == TWO_EMAILS


def test_remove_filtered_sub_attribute_leaves_the_value_s_others() -> None:
    body = patch_op({"op": "remove", "path": 'emails[type eq "work"].primary'})

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work"},
            {"value": "babs@jensen.org", "type": "home"},
        ],
    }


@pytest.mark.parametrize("op", ["add", "replace"])
def test_filtered_value_without_a_match_is_no_target(op: str) -> None:
    body = patch_op({"op": op, "path": 'emails[type eq "other"]', "value": {"value": "o@x"}})

    error = rejected(TWO_EMAILS, body)

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "noTarget",
        "no value of emails matches the filter",
    )


@pytest.mark.parametrize(
    "filter_text",
    [
        'type ne "work"',
        'type eq "other" or type eq "fax"',
        'value co "example.org"',
        'not (type eq "work" or type eq "home")',
        "display pr",
        "type eq null",
        'type eq "work" and type eq "other"',
    ],
)
@pytest.mark.parametrize("op", ["add", "replace"])
def test_filtered_sub_attribute_without_a_match_and_not_only_eq_is_no_target(
    op: str, filter_text: str
) -> None:
    document = {"userName": "bjensen", "emails": [{"value": "a@x.org", "type": "work"}]}
    body = patch_op({"op": op, "path": f"emails[{filter_text}].display", "value": "x"})

    error = rejected(document, body)

    assert (error.status, error.scim_type) == (400, "noTarget")


@pytest.mark.parametrize(
    "path",
    [
        'name[givenName eq "Barbara"].familyName',
        'userName[value eq "bjensen"]',
        'title[value eq "x"]',
        'active[value eq "x"]',
        f'{ENTERPRISE_USER}:manager[value eq "42"].value',
    ],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_filter_path_on_an_attribute_that_is_not_multi_valued_complex_is_invalid_path(
    op: str, path: str
) -> None:
    error = rejected(BJENSEN, patch_op({"op": op, "path": path, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


@pytest.mark.parametrize(
    "path",
    [
        "emails[type eq]",
        'emails[type eq "work"',
        'emails[type eq "work"]value',
        'emails[type eq "work"].',
        'emails[type eq "work"].nickName',
        'emails[type eq "work"].value.x',
        'emails[type eq "work"][type eq "home"]',
        "emails[]",
        '[type eq "work"]',
        'emails.value[type eq "work"]',
        'emails[nickName eq "x"]',
        'emails[type.x eq "work"]',
        'emails[urn:x:type eq "work"]',
        'emails[value[type eq "work"]]',
        'favouriteColours[type eq "work"]',
    ],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_malformed_filter_path_is_invalid_path(op: str, path: str) -> None:
    error = rejected(TWO_EMAILS, patch_op({"op": op, "path": path, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_filter_path_on_groups_is_a_mutability_error(op: str) -> None:
    error = rejected(BJENSEN, patch_op({"op": op, "path": 'groups[value eq "x"]', "value": "x"}))

    assert (error.status, error.scim_type) == (400, "mutability")


@pytest.mark.parametrize("value", ["b@x.org", ["b@x.org"], None])
def test_filtered_value_that_is_not_an_object_is_invalid_value(value: Any) -> None:
    body = patch_op({"op": "replace", "path": 'emails[type eq "home"]', "value": value})

    error = rejected(TWO_EMAILS, body)

    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_filtered_sub_attribute_value_is_validated_like_a_put_body() -> None:
    body = patch_op({"op": "replace", "path": 'emails[type eq "home"].value', "value": 42})

    error = rejected(TWO_EMAILS, body)

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidValue",
        "emails[1].value must be a string",
    )


def test_filter_operation_without_a_target_rejects_the_whole_request() -> None:
    body = patch_op(
        {"op": "replace", "path": 'emails[type eq "home"].value', "value": "b@x.org"},
        {"op": "remove", "path": 'emails[type eq "work"]'},
        {"op": "replace", "path": 'emails[type ne "home"]', "value": {"display": "x"}},
    )

    error = rejected(TWO_EMAILS, body)

    assert (error.status, error.scim_type) == (400, "noTarget")


def test_filter_operations_apply_in_order() -> None:
    body = patch_op(
        {"op": "replace", "path": 'emails[type eq "home"].type', "value": "work"},
        {"op": "replace", "path": 'emails[type eq "work"].display', "value": "Work"},
    )

    assert patched(TWO_EMAILS, body).attributes == {
        "userName": "bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True, "display": "Work"},
            {"value": "babs@jensen.org", "type": "work", "display": "Work"},
        ],
    }


def test_filter_applies_to_an_object_set_earlier_in_the_same_request() -> None:
    body = patch_op(
        {"op": "replace", "path": "emails", "value": {"value": "a@x.org", "type": "work"}},
        {"op": "replace", "path": 'emails[type eq "work"].display', "value": "Work"},
    )

    assert patched({"userName": "bjensen"}, body).attributes == {
        "userName": "bjensen",
        "emails": [{"value": "a@x.org", "type": "work", "display": "Work"}],
    }


def test_the_extension_urn_alone_as_path_sets_its_attributes() -> None:
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    body = patch_op({"op": "replace", "path": enterprise, "value": {"department": "Ops"}})

    assert patched({"userName": "b", enterprise: {"division": "EU"}}, body).attributes == {
        "userName": "b",
        enterprise: {"division": "EU", "department": "Ops"},
    }


def test_the_extension_urn_alone_as_path_removes_the_extension() -> None:
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    body = patch_op({"op": "remove", "path": enterprise})

    assert patched({"userName": "b", enterprise: {"division": "EU"}}, body).attributes == {
        "userName": "b"
    }


def test_removing_active_is_invalid_value() -> None:
    error = rejected(BJENSEN, patch_op({"op": "remove", "path": "active"}))

    assert (error.status, error.scim_type) == (400, "invalidValue")
