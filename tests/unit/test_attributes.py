"""`attributes` and `excludedAttributes` (RFC 7644 section 3.9) applied to rendered resources."""

from __future__ import annotations

import copy
from typing import Any

from scimledger.http.attributes import selection
from tests.scim import CORE_GROUP, CORE_USER, ENTERPRISE_USER

BJENSEN_ID = "2819c223-7f76-453a-919d-413861904646"
GROUP_ID = "e9e30dba-f08f-4109-8486-d5c6a331660a"


def bjensen() -> dict[str, Any]:
    """The RFC 7643 section 8.3 enterprise user, trimmed; a fresh copy for every test."""
    return {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
        },
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "active": True,
        ENTERPRISE_USER: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
        },
        "meta": {
            "resourceType": "User",
            "location": f"https://example.com/v2/Users/{BJENSEN_ID}",
            "version": 'W/"3"',
        },
    }


def tour_guides() -> dict[str, Any]:
    """The RFC 7643 section 8.4 group; a fresh copy for every test."""
    return {
        "schemas": [CORE_GROUP],
        "id": GROUP_ID,
        "displayName": "Tour Guides",
        "members": [
            {
                "value": BJENSEN_ID,
                "$ref": f"https://example.com/v2/Users/{BJENSEN_ID}",
                "display": "Babs Jensen",
            }
        ],
        "meta": {
            "resourceType": "Group",
            "location": f"https://example.com/v2/Groups/{GROUP_ID}",
            "version": 'W/"2"',
        },
    }


def selected(
    resource: dict[str, Any], attributes: str | None = None, excluded: str | None = None
) -> dict[str, Any]:
    return selection(attributes, excluded).apply(resource)


# Neither parameter


def test_no_parameters_return_the_resource_unchanged() -> None:
    assert selected(bjensen()) == bjensen()


def test_empty_parameters_return_the_resource_unchanged() -> None:
    assert selected(bjensen(), "", "") == bjensen()


def test_no_parameters_return_every_attribute() -> None:
    chosen = selection(None, None)

    assert [chosen.returns(name) for name in ("userName", "members", "groups", "meta")] == [
        True,
        True,
        True,
        True,
    ]


# attributes


def test_attributes_user_name_keeps_only_schemas_id_and_user_name() -> None:
    assert selected(bjensen(), "userName") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "userName": "bjensen@example.com",
    }


def test_attribute_names_are_case_insensitive() -> None:
    assert selected(bjensen(), "USERNAME") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "userName": "bjensen@example.com",
    }


def test_attributes_keep_several_comma_separated_names() -> None:
    assert selected(bjensen(), "userName, active,externalId") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "active": True,
    }


def test_attributes_naming_an_absent_attribute_do_not_add_it() -> None:
    assert selected(bjensen(), "userName,displayName,nickName") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "userName": "bjensen@example.com",
    }


def test_attributes_keep_a_complex_attribute_whole() -> None:
    assert selected(bjensen(), "name") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
        },
    }


def test_attributes_keep_a_multi_valued_attribute_whole() -> None:
    assert selected(bjensen(), "emails") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
    }


def test_attributes_core_urn_qualified_name() -> None:
    assert selected(bjensen(), f"{CORE_USER}:userName") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "userName": "bjensen@example.com",
    }


def test_attributes_core_urn_is_case_insensitive() -> None:
    assert selected(bjensen(), f"{CORE_USER.lower()}:USERNAME") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "userName": "bjensen@example.com",
    }


def test_attributes_enterprise_attribute_keeps_only_that_key_in_the_extension() -> None:
    assert selected(bjensen(), f"{ENTERPRISE_USER}:department") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        ENTERPRISE_USER: {"department": "Tour Operations"},
    }


def test_attributes_enterprise_urn_is_case_insensitive() -> None:
    assert selected(bjensen(), f"{ENTERPRISE_USER.lower()}:Department") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        ENTERPRISE_USER: {"department": "Tour Operations"},
    }


def test_attributes_enterprise_sub_attribute() -> None:
    assert selected(bjensen(), f"{ENTERPRISE_USER}:manager.value") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        ENTERPRISE_USER: {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
    }


def test_attributes_enterprise_urn_alone_keeps_the_whole_extension() -> None:
    assert selected(bjensen(), ENTERPRISE_USER) == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        ENTERPRISE_USER: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
        },
    }


def test_attributes_sub_attribute_keeps_only_it_in_the_parent() -> None:
    assert selected(bjensen(), "name.givenName") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "name": {"givenName": "Barbara"},
    }


def test_attributes_core_urn_qualified_sub_attribute() -> None:
    assert selected(bjensen(), f"{CORE_USER}:name.familyName") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "name": {"familyName": "Jensen"},
    }


def test_attributes_two_sub_attributes_of_one_parent() -> None:
    assert selected(bjensen(), "name.givenName,name.familyName") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
    }


def test_attributes_sub_attribute_of_a_multi_valued_attribute_keeps_it_in_each_value() -> None:
    assert selected(bjensen(), "emails.value") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}],
    }


def test_attributes_two_sub_attributes_of_a_multi_valued_attribute() -> None:
    assert selected(bjensen(), "emails.value,emails.type") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
        "emails": [
            {"value": "bjensen@example.com", "type": "work"},
            {"value": "babs@jensen.org", "type": "home"},
        ],
    }


def test_attributes_naming_an_absent_sub_attribute_do_not_add_its_parent() -> None:
    assert selected(bjensen(), "name.middleName") == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "id": BJENSEN_ID,
    }


def test_attributes_display_name_of_a_group_drops_members_and_meta() -> None:
    assert selected(tour_guides(), "displayName") == {
        "schemas": [CORE_GROUP],
        "id": GROUP_ID,
        "displayName": "Tour Guides",
    }


def test_attributes_members_value_keeps_only_member_ids() -> None:
    assert selected(tour_guides(), "members.value") == {
        "schemas": [CORE_GROUP],
        "id": GROUP_ID,
        "members": [{"value": BJENSEN_ID}],
    }


def test_attributes_group_urn_qualified_display_name() -> None:
    assert selected(tour_guides(), f"{CORE_GROUP}:displayName") == {
        "schemas": [CORE_GROUP],
        "id": GROUP_ID,
        "displayName": "Tour Guides",
    }


# excludedAttributes


def test_excluded_attributes_remove_a_top_level_attribute() -> None:
    expected = bjensen()
    del expected["emails"]

    assert selected(bjensen(), excluded="emails") == expected


def test_excluded_attribute_names_are_case_insensitive() -> None:
    expected = bjensen()
    del expected["emails"]
    del expected["externalId"]

    assert selected(bjensen(), excluded="EMAILS,externalid") == expected


def test_excluded_attributes_never_remove_id_or_schemas() -> None:
    assert selected(bjensen(), excluded="id,schemas") == bjensen()


def test_excluded_attributes_remove_a_sub_attribute() -> None:
    expected = bjensen()
    del expected["name"]["givenName"]

    assert selected(bjensen(), excluded="name.givenName") == expected


def test_excluded_attributes_remove_a_sub_attribute_from_each_value() -> None:
    expected = bjensen()
    expected["emails"] = [
        {"value": "bjensen@example.com", "primary": True},
        {"value": "babs@jensen.org"},
    ]

    assert selected(bjensen(), excluded="emails.type") == expected


def test_excluded_attributes_remove_an_enterprise_attribute() -> None:
    expected = bjensen()
    del expected[ENTERPRISE_USER]["department"]

    assert selected(bjensen(), excluded=f"{ENTERPRISE_USER}:department") == expected


def test_excluded_attributes_enterprise_urn_alone_removes_the_extension() -> None:
    expected = bjensen()
    del expected[ENTERPRISE_USER]

    assert selected(bjensen(), excluded=ENTERPRISE_USER) == expected


def test_excluded_attributes_core_urn_qualified_name() -> None:
    expected = bjensen()
    del expected["userName"]

    assert selected(bjensen(), excluded=f"{CORE_USER}:userName") == expected


def test_excluded_attributes_naming_an_absent_attribute_change_nothing() -> None:
    assert selected(bjensen(), excluded="nickName,name.middleName") == bjensen()


def test_excluded_members_drop_them_from_a_group() -> None:
    assert selected(tour_guides(), excluded="members") == {
        "schemas": [CORE_GROUP],
        "id": GROUP_ID,
        "displayName": "Tour Guides",
        "meta": {
            "resourceType": "Group",
            "location": f"https://example.com/v2/Groups/{GROUP_ID}",
            "version": 'W/"2"',
        },
    }


def test_apply_leaves_the_callers_resource_unchanged() -> None:
    resource = bjensen()
    before = copy.deepcopy(resource)

    selected(resource, excluded="emails")

    assert resource == before


# returns


def test_returns_members_is_false_when_members_are_excluded() -> None:
    assert selection(None, "members").returns("members") is False


def test_returns_members_is_false_when_attributes_do_not_name_members() -> None:
    assert selection("displayName", None).returns("members") is False


def test_returns_members_is_true_when_attributes_name_members() -> None:
    assert selection("displayName,members", None).returns("members") is True


def test_returns_members_is_true_when_attributes_name_a_member_sub_attribute() -> None:
    assert selection("members.value", None).returns("members") is True


def test_returns_members_is_true_when_attributes_name_members_by_urn() -> None:
    assert selection(f"{CORE_GROUP}:members", None).returns("members") is True


def test_returns_members_is_true_when_only_a_member_sub_attribute_is_excluded() -> None:
    assert selection(None, "members.display").returns("members") is True


def test_returns_members_is_false_when_members_are_excluded_by_urn() -> None:
    assert selection(None, f"{CORE_GROUP}:members").returns("members") is False


def test_returns_is_case_insensitive() -> None:
    assert selection(None, "MEMBERS").returns("Members") is False


def test_returns_id_and_schemas_even_when_excluded() -> None:
    chosen = selection(None, "id,schemas")

    assert (chosen.returns("id"), chosen.returns("schemas")) == (True, True)


def test_returns_id_and_schemas_when_attributes_do_not_name_them() -> None:
    chosen = selection("displayName", None)

    assert (chosen.returns("id"), chosen.returns("schemas")) == (True, True)


def test_returns_groups_is_false_when_attributes_name_only_user_name() -> None:
    assert selection("userName", None).returns("groups") is False
