"""parse_user: a decoded JSON body read into canonical User attributes, `active` and `password`."""

from __future__ import annotations

from typing import Any

import pytest

from scimledger.http.errors import ScimError
from scimledger.http.schemas import UserInput, parse_user
from tests.scim import CORE_USER, ENTERPRISE_USER

# RFC 7643 section 8.2, the full User representation (the certificate value shortened).
RFC7643_FULL_USER: dict[str, Any] = {
    "schemas": [CORE_USER],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "701984",
    "userName": "bjensen@example.com",
    "name": {
        "formatted": "Ms. Barbara J Jensen, III",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",
        "honorificPrefix": "Ms.",
        "honorificSuffix": "III",
    },
    "displayName": "Babs Jensen",
    "nickName": "Babs",
    "profileUrl": "https://login.example.com/bjensen",
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "addresses": [
        {
            "type": "work",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
            "primary": True,
        },
        {
            "type": "home",
            "streetAddress": "456 Hollywood Blvd",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA",
        },
    ],
    "phoneNumbers": [
        {"value": "555-555-5555", "type": "work"},
        {"value": "555-555-4444", "type": "mobile"},
    ],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "photos": [
        {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"},
        {"value": "https://photos.example.com/profilephoto/72930000000Ccne/T", "type": "thumbnail"},
    ],
    "userType": "Employee",
    "title": "Tour Guide",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "America/Los_Angeles",
    "active": True,
    "password": "t1meMa$heen",
    "groups": [
        {
            "display": "Tour Guides",
            "value": "00300000005N2Y6AAK",
            "$ref": "https://example.com/v2/Groups/00300000005N2Y6AAK",
        },
        {
            "display": "Employees",
            "value": "00300000005N34H78H",
            "$ref": "https://example.com/v2/Groups/00300000005N34H78H",
        },
        {
            "display": "US Employees",
            "value": "00300000005N98YT1A",
            "$ref": "https://example.com/v2/Groups/00300000005N98YT1A",
        },
    ],
    # The RFC's certificate is cut short ("...", not base64): here it ends in valid base64.
    "x509Certificates": [
        {"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}
    ],
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": 'W/"a330bc54f0671c9"',
        "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
    },
}

# The extension object of RFC 7643 section 8.3.
RFC7643_ENTERPRISE: dict[str, Any] = {
    "employeeNumber": "701984",
    "costCenter": "4130",
    "organization": "Universal Studios",
    "division": "Theme Park",
    "department": "Tour Operations",
    "manager": {
        "value": "26118915-6090-4610-87e4-49d8ca9f808d",
        "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
        "displayName": "John Smith",
    },
}


def attributes_of(body: dict[str, Any]) -> dict[str, Any]:
    return parse_user(body).attributes


def rejected(body: Any) -> ScimError:
    with pytest.raises(ScimError) as caught:
        parse_user(body)
    return caught.value


def test_rfc7643_full_user_is_read_into_canonical_attributes() -> None:
    assert parse_user(RFC7643_FULL_USER) == UserInput(
        attributes={
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {
                "formatted": "Ms. Barbara J Jensen, III",
                "familyName": "Jensen",
                "givenName": "Barbara",
                "middleName": "Jane",
                "honorificPrefix": "Ms.",
                "honorificSuffix": "III",
            },
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "profileUrl": "https://login.example.com/bjensen",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": True},
                {"value": "babs@jensen.org", "type": "home"},
            ],
            "addresses": [
                {
                    "type": "work",
                    "streetAddress": "100 Universal City Plaza",
                    "locality": "Hollywood",
                    "region": "CA",
                    "postalCode": "91608",
                    "country": "USA",
                    "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                    "primary": True,
                },
                {
                    "type": "home",
                    "streetAddress": "456 Hollywood Blvd",
                    "locality": "Hollywood",
                    "region": "CA",
                    "postalCode": "91608",
                    "country": "USA",
                    "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA",
                },
            ],
            "phoneNumbers": [
                {"value": "555-555-5555", "type": "work"},
                {"value": "555-555-4444", "type": "mobile"},
            ],
            "ims": [{"value": "someaimhandle", "type": "aim"}],
            "photos": [
                {
                    "value": "https://photos.example.com/profilephoto/72930000000Ccne/F",
                    "type": "photo",
                },
                {
                    "value": "https://photos.example.com/profilephoto/72930000000Ccne/T",
                    "type": "thumbnail",
                },
            ],
            "userType": "Employee",
            "title": "Tour Guide",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "x509Certificates": [
                {"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}
            ],
        },
        active=True,
        password="t1meMa$heen",
    )


def test_body_with_only_user_name_has_no_active_and_no_password() -> None:
    assert parse_user({"userName": "bjensen"}) == UserInput(
        attributes={"userName": "bjensen"}, active=None, password=None
    )


def test_attribute_names_match_case_insensitively_and_are_stored_canonically() -> None:
    body = {"USERNAME": "bjensen", "NAME": {"GIVENNAME": "Barbara"}, "displayname": "Babs"}

    assert attributes_of(body) == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
        "displayName": "Babs",
    }


def test_sub_attribute_names_of_multi_valued_items_are_stored_canonically() -> None:
    body: dict[str, Any] = {
        "userName": "bjensen",
        "Emails": [{"VALUE": "bjensen@example.com", "Type": "work", "PRIMARY": True}],
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    }


def test_external_id_is_stored_canonically() -> None:
    assert attributes_of({"userName": "bjensen", "EXTERNALID": "701984"}) == {
        "userName": "bjensen",
        "externalId": "701984",
    }


def test_server_owned_id_meta_groups_and_schemas_are_ignored() -> None:
    body: dict[str, Any] = {
        "schemas": [CORE_USER],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "meta": {"resourceType": "User"},
        "groups": [{"value": "00300000005N2Y6AAK", "display": "Tour Guides"}],
        "userName": "bjensen",
    }

    assert attributes_of(body) == {"userName": "bjensen"}


def test_active_is_returned_apart_from_the_attributes() -> None:
    assert parse_user({"userName": "bjensen", "active": False}) == UserInput(
        attributes={"userName": "bjensen"}, active=False, password=None
    )


def test_password_is_returned_apart_from_the_attributes() -> None:
    assert parse_user({"userName": "bjensen", "Password": "t1meMa$heen"}) == UserInput(
        attributes={"userName": "bjensen"}, active=None, password="t1meMa$heen"
    )


def test_null_active_leaves_active_unset() -> None:
    assert parse_user({"userName": "bjensen", "active": None}).active is None


@pytest.mark.parametrize(("sent", "read"), [("True", True), ("False", False), ("true", True)])
def test_active_sent_as_a_string_by_entra_is_read_as_a_boolean(sent: str, read: bool) -> None:
    assert parse_user({"userName": "bjensen", "active": sent}).active is read


def test_boolean_sub_attribute_sent_as_a_string_is_read_as_a_boolean() -> None:
    body = {"userName": "bjensen", "emails": [{"value": "bjensen@example.com", "primary": "True"}]}

    assert attributes_of(body) == {
        "userName": "bjensen",
        "emails": [{"value": "bjensen@example.com", "primary": True}],
    }


def test_enterprise_extension_object_is_stored_under_its_urn() -> None:
    body: dict[str, Any] = {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "userName": "bjensen",
        ENTERPRISE_USER: RFC7643_ENTERPRISE,
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        ENTERPRISE_USER: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {
                "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
            },
        },
    }


def test_enterprise_extension_object_is_read_when_its_urn_is_not_in_schemas() -> None:
    body: dict[str, Any] = {
        "schemas": [CORE_USER],
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations"},
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations"},
    }


def test_enterprise_urn_prefixed_keys_are_stored_under_the_urn() -> None:
    body: dict[str, Any] = {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "userName": "bjensen",
        f"{ENTERPRISE_USER}:department": "Tour Operations",
        f"{ENTERPRISE_USER}:employeeNumber": "701984",
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations", "employeeNumber": "701984"},
    }


def test_enterprise_urn_prefixed_keys_are_read_when_the_urn_is_not_in_schemas() -> None:
    body = {"userName": "bjensen", f"{ENTERPRISE_USER}:department": "Tour Operations"}

    assert attributes_of(body) == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations"},
    }


def test_enterprise_object_and_urn_prefixed_keys_are_merged() -> None:
    body: dict[str, Any] = {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations"},
        f"{ENTERPRISE_USER}:costCenter": "4130",
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations", "costCenter": "4130"},
    }


def test_enterprise_urn_and_attribute_names_match_case_insensitively() -> None:
    body: dict[str, Any] = {
        "userName": "bjensen",
        ENTERPRISE_USER.upper(): {"DEPARTMENT": "Tour Operations"},
        f"{ENTERPRISE_USER.lower()}:COSTCENTER": "4130",
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"department": "Tour Operations", "costCenter": "4130"},
    }


def test_read_only_manager_display_name_is_ignored() -> None:
    body: dict[str, Any] = {
        "userName": "bjensen",
        ENTERPRISE_USER: {"manager": {"value": "26118915", "displayName": "John Smith"}},
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"manager": {"value": "26118915"}},
    }


def test_manager_with_only_a_display_name_is_dropped() -> None:
    body = {"userName": "bjensen", ENTERPRISE_USER: {"manager": {"displayName": "John Smith"}}}

    assert attributes_of(body) == {"userName": "bjensen"}


def test_null_enterprise_extension_is_ignored() -> None:
    assert attributes_of({"userName": "bjensen", ENTERPRISE_USER: None}) == {"userName": "bjensen"}


def test_every_core_attribute_of_rfc_7643_is_kept() -> None:
    body: dict[str, Any] = {
        "userName": "bjensen",
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "entitlements": [{"value": "billing:read"}],
        "roles": [{"value": "Admin", "type": "WindowsAzureActiveDirectoryRole", "primary": "True"}],
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "entitlements": [{"value": "billing:read"}],
        "roles": [{"value": "Admin", "type": "WindowsAzureActiveDirectoryRole", "primary": True}],
    }


@pytest.mark.parametrize(
    ("body", "key", "schema"),
    [
        ({"favouriteColour": "green"}, "favouriteColour", f"User schema ({CORE_USER})"),
        ({f"{CORE_USER}:shoeSize": 42}, f"{CORE_USER}:shoeSize", f"User schema ({CORE_USER})"),
        (
            {ENTERPRISE_USER: {"badgeColour": "green"}},
            f"{ENTERPRISE_USER}:badgeColour",
            f"EnterpriseUser schema ({ENTERPRISE_USER})",
        ),
        (
            {f"{ENTERPRISE_USER}:shoeSize": "42"},
            f"{ENTERPRISE_USER}:shoeSize",
            f"EnterpriseUser schema ({ENTERPRISE_USER})",
        ),
    ],
)
def test_a_value_of_an_attribute_no_schema_has_is_refused_never_dropped(
    body: dict[str, Any], key: str, schema: str
) -> None:
    with pytest.raises(ScimError) as caught:
        parse_user({"userName": "bjensen", **body})

    assert (caught.value.status, caught.value.scim_type) == (400, "invalidValue")
    assert caught.value.detail == (
        f"{key!r} is not an attribute of the {schema}, so its value cannot be kept: to keep"
        " it, declare it in an extension schema (`scimledger schemas add`) and send it under"
        " that extension's URN"
    )


def test_empty_values_of_unknown_attributes_and_unknown_sub_attributes_are_ignored() -> None:
    # Entra ID sends `"roles": []` and the like; an empty value loses nothing.
    body: dict[str, Any] = {
        "userName": "bjensen",
        "favouriteColour": None,
        "tags": [],
        "extra": {},
        "name": {"givenName": "Barbara", "nickname": "Babs"},
    }

    assert attributes_of(body) == {"userName": "bjensen", "name": {"givenName": "Barbara"}}


CUSTOM = "urn:example:params:scim:schemas:extension:custom:2.0:User"


@pytest.mark.parametrize(
    "body",
    [
        {"schemas": [CORE_USER, CUSTOM], "userName": "bjensen"},
        {"userName": "bjensen", CUSTOM: {"badgeColour": "green"}},
        {"userName": "bjensen", f"{CUSTOM}:shoeSize": "42"},
    ],
    ids=["named-in-schemas", "values", "one-attribute"],
)
def test_an_extension_not_declared_is_refused_naming_it_never_dropped(body: Any) -> None:
    with pytest.raises(ScimError) as caught:
        parse_user(body)

    assert (caught.value.status, caught.value.scim_type) == (400, "invalidValue")
    assert caught.value.detail == (
        f"{CUSTOM} is not an extension schema this organization has declared, so its values"
        " cannot be kept: an admin declares it with `scimledger schemas add` (GET /Schemas"
        " lists those declared)"
    )


def test_null_values_are_dropped() -> None:
    body: dict[str, Any] = {
        "userName": "bjensen",
        "displayName": None,
        "name": {"givenName": "Barbara", "familyName": None},
        "emails": None,
    }

    assert attributes_of(body) == {"userName": "bjensen", "name": {"givenName": "Barbara"}}


def test_empty_arrays_and_objects_are_dropped() -> None:
    body = {"userName": "bjensen", "emails": [], "name": {}, ENTERPRISE_USER: {}}

    assert attributes_of(body) == {"userName": "bjensen"}


def test_complex_value_whose_sub_attributes_are_all_null_is_dropped() -> None:
    body = {"userName": "bjensen", "name": {"givenName": None, "familyName": None}}

    assert attributes_of(body) == {"userName": "bjensen"}


def test_null_and_empty_items_of_a_multi_valued_attribute_are_dropped() -> None:
    body: dict[str, Any] = {
        "userName": "bjensen",
        "emails": [None, {}, {"value": None}, {"value": "bjensen@example.com"}],
    }

    assert attributes_of(body) == {
        "userName": "bjensen",
        "emails": [{"value": "bjensen@example.com"}],
    }


def test_single_object_for_a_multi_valued_attribute_is_wrapped_in_a_list() -> None:
    body = {"userName": "bjensen", "emails": {"value": "bjensen@example.com", "type": "work"}}

    assert attributes_of(body) == {
        "userName": "bjensen",
        "emails": [{"value": "bjensen@example.com", "type": "work"}],
    }


@pytest.mark.parametrize("body", [[], "bjensen", 42, None], ids=repr)
def test_body_that_is_not_an_object_is_invalid_syntax(body: Any) -> None:
    error = rejected(body)

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidSyntax",
        "The request body must be a JSON object",
    )


@pytest.mark.parametrize(
    "body",
    [{}, {"userName": None}, {"userName": ""}, {"userName": "   "}, {"displayName": "Babs"}],
    ids=["empty body", "null", "empty", "blank", "absent"],
)
def test_missing_or_empty_user_name_is_invalid(body: dict[str, Any]) -> None:
    error = rejected(body)

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidValue",
        "userName is required",
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"userName": 42}, "userName must be a string"),
        ({"userName": "bjensen", "displayName": 42}, "displayName must be a string"),
        ({"userName": "bjensen", "title": True}, "title must be a string"),
        ({"userName": "bjensen", "name": {"givenName": 42}}, "name.givenName must be a string"),
        ({"userName": "bjensen", "name": "Barbara Jensen"}, "name must be an object"),
        ({"userName": "bjensen", "emails": "bjensen@example.com"}, "emails must be an array"),
        ({"userName": "bjensen", "emails": ["bjensen@example.com"]}, "emails[0] must be an object"),
        (
            {"userName": "bjensen", "emails": [{"value": "a@example.com"}, {"value": 42}]},
            "emails[1].value must be a string",
        ),
        ({"userName": "bjensen", "active": "yes"}, "active must be a boolean"),
        ({"userName": "bjensen", "active": 1}, "active must be a boolean"),
        (
            {"userName": "bjensen", "emails": [{"value": "a@example.com", "primary": "yes"}]},
            "emails[0].primary must be a boolean",
        ),
        ({"userName": "bjensen", "password": 42}, "password must be a string"),
        ({"userName": "bjensen", "externalId": 701984}, "externalId must be a string"),
        (
            {"userName": "bjensen", ENTERPRISE_USER: "Tour Operations"},
            f"{ENTERPRISE_USER} must be an object",
        ),
        (
            {"userName": "bjensen", ENTERPRISE_USER: {"department": 42}},
            f"{ENTERPRISE_USER}:department must be a string",
        ),
        (
            {"userName": "bjensen", f"{ENTERPRISE_USER}:manager": 26118915},
            f"{ENTERPRISE_USER}:manager must be an object",
        ),
    ],
    ids=lambda case: case if isinstance(case, str) else None,
)
def test_value_of_the_wrong_type_is_invalid_and_names_its_path(
    body: dict[str, Any], detail: str
) -> None:
    error = rejected(body)

    assert (error.status, error.scim_type, error.detail) == (400, "invalidValue", detail)


def test_two_primary_emails_are_invalid() -> None:
    error = rejected(
        {
            "userName": "bjensen",
            "emails": [
                {"value": "bjensen@example.com", "primary": True},
                {"value": "babs@jensen.org", "primary": "True"},
            ],
        }
    )

    assert (error.status, error.scim_type, error.detail) == (
        400,
        "invalidValue",
        "emails: at most one value may be primary",
    )


def test_parsing_does_not_change_the_body() -> None:
    body = {"USERNAME": "bjensen", "emails": {"value": "bjensen@example.com"}, "id": "x"}

    parse_user(body)

    assert body == {"USERNAME": "bjensen", "emails": {"value": "bjensen@example.com"}, "id": "x"}


def test_manager_given_as_a_bare_id_becomes_its_value() -> None:
    # Microsoft Entra ID sends the manager's id as a string instead of an object.
    parsed = parse_user({"userName": "bjensen", f"{ENTERPRISE_USER}:manager": "26118915"})

    assert parsed.attributes == {
        "userName": "bjensen",
        ENTERPRISE_USER: {"manager": {"value": "26118915"}},
    }
