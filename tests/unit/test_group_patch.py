"""plan_group_patch: a SCIM PatchOp on a Group, as Okta and Entra ID send it, reduced to a plan."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scimledger.http.errors import ScimError
from scimledger.http.group_patch import plan_group_patch
from scimledger.ledger.commands import KEEP, GroupUpdate, Keep
from tests.scim import CORE_GROUP, PATCH_OP


def patch_op(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def planned(body: dict[str, Any]) -> GroupUpdate:
    """The plan, checking that the caller's body was left as it was."""
    before = copy.deepcopy(body)
    plan = plan_group_patch(body)
    assert body == before
    return plan


def rejected(body: Any) -> ScimError:
    with pytest.raises(ScimError) as caught:
        plan_group_patch(body)
    return caught.value


# Untouched attributes


def test_untouched_display_name_and_external_id_are_kept() -> None:
    plan = planned(patch_op({"op": "add", "path": "members", "value": [{"value": "u1"}]}))

    assert (plan.display_name, plan.external_id) == (KEEP, KEEP)
    assert isinstance(plan.external_id, Keep)


# displayName


def test_okta_rename_replaces_display_name_ignoring_the_id_in_the_value() -> None:
    body = patch_op({"op": "replace", "value": {"id": "g1", "displayName": "New"}})

    assert planned(body) == GroupUpdate(display_name="New")


def test_okta_rename_ignores_schemas_and_meta_in_the_value() -> None:
    body = patch_op(
        {
            "op": "replace",
            "value": {
                "schemas": [CORE_GROUP],
                "id": "g1",
                "meta": {"resourceType": "Group"},
                "displayName": "New",
            },
        }
    )

    assert planned(body) == GroupUpdate(display_name="New")


def test_replace_path_display_name() -> None:
    body = patch_op({"op": "replace", "path": "displayName", "value": "Tour Guides"})

    assert planned(body) == GroupUpdate(display_name="Tour Guides")


def test_entra_capitalised_replace_path_display_name() -> None:
    body = patch_op({"op": "Replace", "path": "displayName", "value": "Tour Guides"})

    assert planned(body) == GroupUpdate(display_name="Tour Guides")


def test_urn_qualified_display_name_path() -> None:
    body = patch_op({"op": "replace", "path": f"{CORE_GROUP}:displayName", "value": "New"})

    assert planned(body) == GroupUpdate(display_name="New")


def test_path_names_are_case_insensitive() -> None:
    body = patch_op({"op": "replace", "path": "DISPLAYNAME", "value": "New"})

    assert planned(body) == GroupUpdate(display_name="New")


def test_add_path_display_name_sets_it() -> None:
    body = patch_op({"op": "add", "path": "displayName", "value": "New"})

    assert planned(body) == GroupUpdate(display_name="New")


def test_the_last_of_two_renames_wins() -> None:
    body = patch_op(
        {"op": "replace", "path": "displayName", "value": "First"},
        {"op": "replace", "path": "displayName", "value": "Second"},
    )

    assert planned(body) == GroupUpdate(display_name="Second")


# externalId


def test_replace_path_external_id_sets_it() -> None:
    body = patch_op({"op": "replace", "path": "externalId", "value": "okta-00g1"})

    assert planned(body) == GroupUpdate(external_id="okta-00g1")


def test_replace_without_path_sets_external_id() -> None:
    body = patch_op({"op": "replace", "value": {"externalId": "okta-00g1"}})

    assert planned(body) == GroupUpdate(external_id="okta-00g1")


def test_remove_path_external_id_clears_it() -> None:
    body = patch_op({"op": "remove", "path": "externalId"})

    assert planned(body) == GroupUpdate(external_id=None)


def test_replace_external_id_with_null_clears_it() -> None:
    body = patch_op({"op": "replace", "path": "externalId", "value": None})

    assert planned(body) == GroupUpdate(external_id=None)


# Adding members


def test_okta_add_members_with_display() -> None:
    body = patch_op(
        {
            "op": "add",
            "path": "members",
            "value": [{"value": "u1", "display": "a"}, {"value": "u2", "display": "b"}],
        }
    )

    assert planned(body) == GroupUpdate(add={"u1", "u2"})


def test_entra_capitalised_add_members() -> None:
    body = patch_op({"op": "Add", "path": "members", "value": [{"value": "u1"}]})

    assert planned(body) == GroupUpdate(add={"u1"})


def test_add_members_accepts_a_single_member_object() -> None:
    body = patch_op({"op": "add", "path": "members", "value": {"value": "u1"}})

    assert planned(body) == GroupUpdate(add={"u1"})


def test_add_without_path_adds_members() -> None:
    body = patch_op({"op": "add", "value": {"members": [{"value": "u1"}, {"value": "u2"}]}})

    assert planned(body) == GroupUpdate(add={"u1", "u2"})


def test_add_members_ignores_ref_and_type() -> None:
    body = patch_op(
        {
            "op": "add",
            "path": "members",
            "value": [{"value": "u1", "$ref": "https://example.com/v2/Users/u1", "type": "User"}],
        }
    )

    assert planned(body) == GroupUpdate(add={"u1"})


# Replacing members


def test_okta_replace_members_sets_the_complete_member_set() -> None:
    body = patch_op(
        {
            "op": "replace",
            "path": "members",
            "value": [{"value": "u1", "display": "a"}, {"value": "u2", "display": "b"}],
        }
    )

    assert planned(body) == GroupUpdate(replace_members={"u1", "u2"})


def test_replace_members_with_an_empty_list_empties_the_group() -> None:
    body = patch_op({"op": "replace", "path": "members", "value": []})

    assert planned(body) == GroupUpdate(replace_members=set())


def test_replace_without_path_replaces_display_name_and_members() -> None:
    body = patch_op(
        {"op": "replace", "value": {"displayName": "New", "members": [{"value": "u1"}]}}
    )

    assert planned(body) == GroupUpdate(display_name="New", replace_members={"u1"})


# Removing members


def test_okta_remove_member_by_value_filter() -> None:
    body = patch_op({"op": "remove", "path": 'members[value eq "u1"]'})

    assert planned(body) == GroupUpdate(remove={"u1"})


def test_remove_members_by_value_filters_joined_by_or() -> None:
    body = patch_op({"op": "remove", "path": 'members[value eq "u1" or value eq "u2"]'})

    assert planned(body) == GroupUpdate(remove={"u1", "u2"})


def test_remove_member_filter_is_case_insensitive() -> None:
    body = patch_op({"op": "remove", "path": 'Members[Value EQ "u1"]'})

    assert planned(body) == GroupUpdate(remove={"u1"})


def test_remove_member_filter_on_urn_qualified_members() -> None:
    body = patch_op({"op": "remove", "path": f'{CORE_GROUP}:members[value eq "u1"]'})

    assert planned(body) == GroupUpdate(remove={"u1"})


def test_remove_member_filter_on_urn_qualified_members_with_a_colon_in_the_id() -> None:
    body = patch_op({"op": "remove", "path": f'{CORE_GROUP}:members[value eq "urn:u:1"]'})

    assert planned(body) == GroupUpdate(remove={"urn:u:1"})


def test_entra_remove_members_with_a_value_list() -> None:
    body = patch_op({"op": "Remove", "path": "members", "value": [{"value": "u1"}]})

    assert planned(body) == GroupUpdate(remove={"u1"})


def test_remove_members_without_value_empties_the_group() -> None:
    body = patch_op({"op": "remove", "path": "members"})

    assert planned(body) == GroupUpdate(replace_members=set())


# Several operations in one request


def test_add_then_remove_of_the_same_member_ends_with_its_removal() -> None:
    body = patch_op(
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": 'members[value eq "u1"]'},
    )

    assert planned(body) == GroupUpdate(add=set(), remove={"u1"})


def test_remove_then_add_of_the_same_member_ends_with_its_addition() -> None:
    body = patch_op(
        {"op": "remove", "path": 'members[value eq "u1"]'},
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
    )

    assert planned(body) == GroupUpdate(add={"u1"}, remove=set())


def test_replace_then_add_merges_into_the_replaced_set() -> None:
    body = patch_op(
        {"op": "replace", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
        {"op": "add", "path": "members", "value": [{"value": "u3"}]},
    )

    assert planned(body) == GroupUpdate(replace_members={"u1", "u2", "u3"})


def test_replace_then_remove_takes_from_the_replaced_set() -> None:
    body = patch_op(
        {"op": "replace", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
        {"op": "remove", "path": 'members[value eq "u1"]'},
    )

    assert planned(body) == GroupUpdate(replace_members={"u2"})


def test_add_then_replace_discards_the_earlier_add() -> None:
    body = patch_op(
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "replace", "path": "members", "value": [{"value": "u2"}]},
    )

    assert planned(body) == GroupUpdate(replace_members={"u2"})


def test_remove_all_members_then_add_one_leaves_only_it() -> None:
    body = patch_op(
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": "u3"}]},
    )

    assert planned(body) == GroupUpdate(replace_members={"u3"})


def test_rename_and_member_changes_in_one_request() -> None:
    body = patch_op(
        {"op": "replace", "value": {"id": "g1", "displayName": "New"}},
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": 'members[value eq "u2"]'},
        {"op": "replace", "path": "externalId", "value": "ext-1"},
    )

    assert planned(body) == GroupUpdate(
        display_name="New", external_id="ext-1", add={"u1"}, remove={"u2"}
    )


# Invalid values


def test_remove_display_name_is_invalid_value() -> None:
    error = rejected(patch_op({"op": "remove", "path": "displayName"}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


@pytest.mark.parametrize("value", [42, None, "", "  ", ["New"]])
def test_display_name_that_is_not_a_non_empty_string_is_invalid_value(value: Any) -> None:
    error = rejected(patch_op({"op": "replace", "path": "displayName", "value": value}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_display_name_not_a_string_without_path_is_invalid_value() -> None:
    error = rejected(patch_op({"op": "replace", "value": {"displayName": 42}}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


@pytest.mark.parametrize(
    "value",
    [["u1"], [{"display": "a"}], [{"value": 7}], [{"value": ""}], "u1"],
    ids=["bare-ids", "no-value", "number", "empty", "string"],
)
def test_members_that_are_not_objects_with_a_value_are_invalid_value(value: Any) -> None:
    error = rejected(patch_op({"op": "add", "path": "members", "value": value}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_entra_remove_with_members_without_value_is_invalid_value() -> None:
    body = patch_op({"op": "Remove", "path": "members", "value": [{"display": "a"}]})

    error = rejected(body)

    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_external_id_that_is_not_a_string_is_invalid_value() -> None:
    error = rejected(patch_op({"op": "replace", "path": "externalId", "value": 42}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_add_with_path_but_no_value_is_invalid_value() -> None:
    error = rejected(patch_op({"op": "add", "path": "members"}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


def test_replace_without_path_and_a_non_object_value_is_invalid_value() -> None:
    error = rejected(patch_op({"op": "replace", "value": "New"}))

    assert (error.status, error.scim_type) == (400, "invalidValue")


# Invalid paths


@pytest.mark.parametrize("op", ["add", "replace"])
def test_add_or_replace_with_a_members_filter_is_invalid_path(op: str) -> None:
    body = patch_op({"op": op, "path": 'members[value eq "u1"]', "value": [{"value": "u1"}]})

    error = rejected(body)

    assert (error.status, error.scim_type) == (400, "invalidPath")


@pytest.mark.parametrize(
    "path",
    [
        'members[display eq "a"]',
        'members[value ne "u1"]',
        "members[value pr]",
        'members[value eq "u1" and value eq "u2"]',
        'not (members[value eq "u1"])',
        'members[not (value eq "u1")]',
        "members[value eq 7]",
        'members[value eq "u1"].display',
        "members[value eq",
    ],
)
def test_members_filter_other_than_value_eq_is_invalid_path(path: str) -> None:
    error = rejected(patch_op({"op": "remove", "path": path}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


@pytest.mark.parametrize("path", ["description", "members.value"])
def test_unknown_attribute_path_is_invalid_path(path: str) -> None:
    error = rejected(patch_op({"op": "replace", "path": path, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "urn:example:Group:owner", "value": "x"},
        {"op": "remove", "path": "urn:example:Group:owner"},
        {"op": "replace", "value": {"urn:example:Group": {"owner": "x"}}},
    ],
)
def test_a_path_into_an_extension_not_declared_is_refused_naming_it(
    operation: dict[str, Any],
) -> None:
    error = rejected(patch_op(operation))

    assert (error.status, error.scim_type) == (400, "invalidValue")
    assert error.detail.startswith("urn:example:Group is not an extension schema")


def test_path_that_is_not_a_string_is_invalid_path() -> None:
    error = rejected(patch_op({"op": "replace", "path": 7, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "invalidPath")


# Read-only attributes


@pytest.mark.parametrize("path", ["id", "meta", "schemas", "ID"])
def test_replace_of_a_server_owned_attribute_is_mutability(path: str) -> None:
    error = rejected(patch_op({"op": "replace", "path": path, "value": "x"}))

    assert (error.status, error.scim_type) == (400, "mutability")


def test_remove_of_id_is_mutability() -> None:
    error = rejected(patch_op({"op": "remove", "path": "id"}))

    assert (error.status, error.scim_type) == (400, "mutability")


# Malformed bodies


@pytest.mark.parametrize(
    "schemas",
    [None, [], [CORE_GROUP], PATCH_OP],
    ids=["absent", "empty", "wrong-schema", "not-a-list"],
)
def test_body_without_the_patch_op_schema_is_invalid_syntax(schemas: Any) -> None:
    body: dict[str, Any] = {"Operations": [{"op": "remove", "path": "members"}]}
    if schemas is not None:
        body["schemas"] = schemas

    error = rejected(body)

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


@pytest.mark.parametrize("operations", [None, [], {}], ids=["absent", "empty", "object"])
def test_body_without_operations_is_invalid_syntax(operations: Any) -> None:
    body: dict[str, Any] = {"schemas": [PATCH_OP]}
    if operations is not None:
        body["Operations"] = operations

    error = rejected(body)

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


def test_body_that_is_not_an_object_is_invalid_syntax() -> None:
    error = rejected([{"op": "remove", "path": "members"}])

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


@pytest.mark.parametrize("op", ["copy", "move", "", None, 1])
def test_unknown_op_is_invalid_syntax(op: Any) -> None:
    error = rejected(patch_op({"op": op, "path": "displayName", "value": "New"}))

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


def test_operation_that_is_not_an_object_is_invalid_syntax() -> None:
    error = rejected({"schemas": [PATCH_OP], "Operations": ["remove members"]})

    assert (error.status, error.scim_type) == (400, "invalidSyntax")


@pytest.mark.parametrize("path", [None, ""], ids=["absent", "empty"])
def test_remove_without_path_is_no_target(path: Any) -> None:
    operation: dict[str, Any] = {"op": "remove", "value": [{"value": "u1"}]}
    if path is not None:
        operation["path"] = path

    error = rejected(patch_op(operation))

    assert (error.status, error.scim_type) == (400, "noTarget")
