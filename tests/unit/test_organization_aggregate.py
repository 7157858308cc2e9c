"""The Organization aggregate (ledger.organizations) on its own: admins, their departures and
returns, settings, and the normalization of slugs and emails. No ledger, no event store."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from scimledger.ledger.errors import (
    InvalidEmail,
    InvalidRole,
    InvalidSchema,
    InvalidSettings,
    InvalidSlug,
    NotAnAdmin,
    SchemaNotFound,
)
from scimledger.ledger.organizations import (
    DEFAULT_SETTINGS,
    Organization,
    normalize_email,
    normalize_slug,
)
from tests.unit.events import CONTEXT, OPERATOR, ORG_ID, T0, at, clock, recorded, replay

ADA = "ada@acme.example"
BOB = "bob@acme.example"


def new_organization(*admins: str) -> Organization:
    """acme, created at T0 with `admins`, its events already collected."""
    with clock():
        organization = Organization(slug="acme", context=OPERATOR)
        for admin in admins:
            organization.add_admin(admin, OPERATOR)
    organization.collect_events()
    return organization


def test_an_organizations_id_is_derived_from_its_slug() -> None:
    # Stored events refer to this id: it must never change for a slug.
    assert Organization.create_id("acme") == UUID("2850eb72-bb54-5279-b5c9-9661a9910be9")


def test_creating_an_organization_records_organization_created() -> None:
    with clock():
        organization = Organization(slug="acme", context=OPERATOR)
    assert organization.id == ORG_ID
    assert recorded(organization) == [
        (
            Organization.OrganizationCreated,
            {
                "originator_version": 1,
                "timestamp": T0,
                "originator_topic": "scimledger.ledger.organizations:Organization",
                "slug": "acme",
                "context": OPERATOR,
            },
        )
    ]


def test_a_new_organization_has_no_admins_and_the_default_settings() -> None:
    organization = new_organization()
    assert (organization.slug, organization.admins, organization.departed) == ("acme", [], {})
    assert organization.settings == {
        "departed_policy": "warn",
        "departed_grace_seconds": 604800,
        "scim_base_url": None,
        "oidc_issuer": None,
        "oidc_client_id": None,
        "oidc_client_secret_set_at": None,
        "erase_deleted_after_seconds": None,
    }


def test_adding_an_admin_records_the_normalized_email() -> None:
    organization = new_organization()
    with clock(at(1)):
        organization.add_admin("  Ada@ACME.example ", OPERATOR)
    assert recorded(organization) == [
        (
            Organization.AdminAdded,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "email": ADA,
                "context": OPERATOR,
                "role": "admin",
            },
        )
    ]
    assert organization.admins == [ADA]


def test_adding_an_admin_again_in_another_case_records_nothing() -> None:
    organization = new_organization(ADA)
    organization.add_admin("ADA@acme.example", OPERATOR)
    assert recorded(organization) == []
    assert organization.admins == [ADA]


def test_admins_are_kept_in_the_order_they_were_added() -> None:
    organization = new_organization(BOB, ADA)
    assert organization.admins == [BOB, ADA]


def test_an_admin_must_be_an_email_address() -> None:
    organization = new_organization()
    with pytest.raises(InvalidEmail) as refused:
        organization.add_admin("ada", OPERATOR)
    assert str(refused.value) == "'ada' is not an email address"
    assert recorded(organization) == []


@pytest.mark.parametrize(
    "email", ["ada\x1b[2J@acme.example", "ada@acme.example\u0085x", "a\x7f@b.c"]
)
def test_an_admins_email_has_no_control_character(email: str) -> None:
    organization = new_organization()
    with pytest.raises(InvalidEmail):
        organization.add_admin(email, OPERATOR)
    assert recorded(organization) == []


def test_removing_an_admin_records_when_they_left() -> None:
    organization = new_organization(ADA, BOB)
    with clock(at(3)):
        organization.remove_admin("ADA@acme.example", OPERATOR, now=at(10))
    assert recorded(organization) == [
        (
            Organization.AdminRemoved,
            {
                "originator_version": 4,
                "timestamp": at(3),
                "email": ADA,
                "context": OPERATOR,
                "removed_at": at(10),
            },
        )
    ]
    assert (organization.admins, organization.departed) == ([BOB], {ADA: at(10)})


def test_removing_someone_who_is_not_an_admin_is_refused() -> None:
    organization = new_organization(ADA)
    with pytest.raises(NotAnAdmin) as refused:
        organization.remove_admin(BOB, OPERATOR, now=at(10))
    assert str(refused.value) == "bob@acme.example is not an admin or reviewer of acme"
    assert recorded(organization) == []


def test_a_reviewer_is_added_with_the_role_on_the_event() -> None:
    organization = new_organization(ADA)
    with clock(at(1)):
        organization.add_admin("Bob@ACME.example", OPERATOR, role="reviewer")
    assert recorded(organization) == [
        (
            Organization.AdminAdded,
            {
                "originator_version": 3,
                "timestamp": at(1),
                "email": BOB,
                "context": OPERATOR,
                "role": "reviewer",
            },
        )
    ]
    assert (organization.admins, organization.reviewers) == ([ADA], [BOB])
    assert (organization.role_of(ADA), organization.role_of(BOB)) == ("admin", "reviewer")
    assert organization.role_of("carol@acme.example") is None


def test_adding_an_admin_as_reviewer_changes_their_role_and_back() -> None:
    organization = new_organization(ADA, BOB)
    organization.add_admin(ADA, OPERATOR, role="reviewer")
    assert [(kind, fields["role"]) for kind, fields in recorded(organization)] == [
        (Organization.AdminAdded, "reviewer")
    ]
    assert (organization.admins, organization.reviewers) == ([BOB], [ADA])
    organization.add_admin(ADA, OPERATOR, role="reviewer")
    assert recorded(organization) == []
    organization.add_admin(ADA, OPERATOR)
    assert (organization.admins, organization.reviewers) == ([BOB, ADA], [])


def test_a_role_that_does_not_exist_is_refused() -> None:
    organization = new_organization()
    with pytest.raises(InvalidRole) as refused:
        organization.add_admin(ADA, OPERATOR, role="owner")  # type: ignore[arg-type]
    assert str(refused.value) == "role must be one of admin, reviewer"
    assert recorded(organization) == []


def test_a_reviewer_is_removed_and_departs_like_an_admin() -> None:
    organization = new_organization(ADA)
    organization.add_admin(BOB, OPERATOR, role="reviewer")
    organization.user_left({BOB}, CONTEXT, now=at(10))
    assert organization.role_of(BOB) is None
    organization.user_returned({BOB}, CONTEXT)
    assert organization.role_of(BOB) == "reviewer"
    organization.remove_admin(BOB, OPERATOR, now=at(20))
    assert (organization.reviewers, organization.role_of(BOB)) == ([], None)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"oidc_issuer": "http://idp.example.com"}, "oidc_issuer must be an https:// URL"),
        ({"oidc_issuer": "javascript:alert(1)"}, "oidc_issuer must be an https:// URL"),
        ({"oidc_issuer": "https://idp.example.com/\x1b[2J"}, "oidc_issuer must be"),
        ({"oidc_client_id": ""}, "oidc_client_id must be 1 to 255 printable characters"),
        ({"oidc_client_id": "x" * 256}, "oidc_client_id must be 1 to 255"),
        ({"oidc_client_id": "abc\n"}, "oidc_client_id must be 1 to 255"),
        ({"oidc_client_id": 7}, "oidc_client_id must be 1 to 255"),
    ],
)
def test_single_sign_on_settings_out_of_bounds_are_refused(
    settings: dict[str, Any], problem: str
) -> None:
    organization = new_organization()
    with pytest.raises(InvalidSettings) as refused:
        organization.change_settings(settings, OPERATOR)
    assert str(refused.value).startswith(problem)
    assert recorded(organization) == []


@pytest.mark.parametrize(
    "issuer", ["https://acme.okta.com", "http://localhost:9400", "http://127.0.0.1:9400/x"]
)
def test_an_issuer_is_https_or_on_this_machine(issuer: str) -> None:
    organization = new_organization()
    organization.change_settings({"oidc_issuer": issuer, "oidc_client_id": "scim"}, OPERATOR)
    assert (organization.settings["oidc_issuer"], organization.settings["oidc_client_id"]) == (
        issuer,
        "scim",
    )


def test_adding_a_removed_admin_back_ends_their_departure() -> None:
    organization = new_organization(ADA)
    organization.remove_admin(ADA, OPERATOR, now=at(10))
    organization.add_admin(ADA, OPERATOR)
    assert (organization.admins, organization.departed) == ([ADA], {})


def test_an_admin_among_a_leaving_users_emails_departs() -> None:
    organization = new_organization(ADA, BOB)
    with clock(at(3)):
        organization.user_left({BOB, "bob.private@example.org"}, CONTEXT, now=at(10))
    assert recorded(organization) == [
        (
            Organization.AdminDeparted,
            {
                "originator_version": 4,
                "timestamp": at(3),
                "email": BOB,
                "departed_at": at(10),
                "context": CONTEXT,
            },
        )
    ]
    assert (organization.admins, organization.departed) == ([ADA, BOB], {BOB: at(10)})


def test_every_admin_among_a_leaving_users_emails_departs_in_email_order() -> None:
    organization = new_organization(BOB, ADA)
    organization.user_left({BOB, ADA}, CONTEXT, now=at(10))
    assert [(kind, fields["email"]) for kind, fields in recorded(organization)] == [
        (Organization.AdminDeparted, ADA),
        (Organization.AdminDeparted, BOB),
    ]


def test_a_leaving_user_who_is_no_admin_records_nothing() -> None:
    organization = new_organization(ADA)
    organization.user_left({BOB}, CONTEXT, now=at(10))
    assert recorded(organization) == []


def test_an_admin_who_departed_already_does_not_depart_again() -> None:
    organization = new_organization(ADA)
    organization.user_left({ADA}, CONTEXT, now=at(10))
    organization.collect_events()
    organization.user_left({ADA}, CONTEXT, now=at(20))
    assert recorded(organization) == []
    assert organization.departed == {ADA: at(10)}


def test_a_removed_admin_does_not_depart_when_their_user_leaves() -> None:
    organization = new_organization(ADA)
    organization.remove_admin(ADA, OPERATOR, now=at(10))
    organization.collect_events()
    organization.user_left({ADA}, CONTEXT, now=at(20))
    assert recorded(organization) == []
    assert organization.departed == {ADA: at(10)}


def test_a_departed_admin_whose_user_returns_is_back() -> None:
    organization = new_organization(ADA)
    organization.user_left({ADA}, CONTEXT, now=at(10))
    organization.collect_events()
    with clock(at(4)):
        organization.user_returned({ADA, "ada.private@example.org"}, CONTEXT)
    assert recorded(organization) == [
        (
            Organization.AdminReturned,
            {"originator_version": 4, "timestamp": at(4), "email": ADA, "context": CONTEXT},
        )
    ]
    assert (organization.admins, organization.departed) == ([ADA], {})


def test_a_returning_user_who_had_not_departed_records_nothing() -> None:
    organization = new_organization(ADA)
    organization.user_returned({ADA}, CONTEXT)
    assert recorded(organization) == []


def test_a_removed_admin_whose_user_returns_stays_removed() -> None:
    organization = new_organization(ADA)
    organization.remove_admin(ADA, OPERATOR, now=at(10))
    organization.collect_events()
    organization.user_returned({ADA}, CONTEXT)
    assert recorded(organization) == []
    assert (organization.admins, organization.departed) == ([], {ADA: at(10)})


def test_changing_settings_records_only_what_changed() -> None:
    organization = new_organization()
    with clock(at(1)):
        organization.change_settings(
            {"departed_policy": "revoke-after", "departed_grace_seconds": 604800}, OPERATOR
        )
    assert recorded(organization) == [
        (
            Organization.SettingsChanged,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "changes": {"departed_policy": "revoke-after"},
                "context": OPERATOR,
            },
        )
    ]
    assert organization.settings == {**DEFAULT_SETTINGS, "departed_policy": "revoke-after"}


def test_changing_settings_to_their_current_values_records_nothing() -> None:
    organization = new_organization()
    organization.change_settings(dict(DEFAULT_SETTINGS), OPERATOR)
    assert recorded(organization) == []


def test_settings_can_set_the_scim_base_url() -> None:
    organization = new_organization()
    organization.change_settings({"scim_base_url": "https://scim.acme.example/v2"}, OPERATOR)
    [(kind, fields)] = recorded(organization)
    assert (kind, fields["changes"]) == (
        Organization.SettingsChanged,
        {"scim_base_url": "https://scim.acme.example/v2"},
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"colour": "red", "beta": True}, "unknown settings: beta, colour"),
        ({"departed_policy": "delete"}, "departed_policy must be one of warn, revoke-after"),
        ({"departed_grace_seconds": -1}, "departed_grace_seconds must be 0 to 31536000 (365 days)"),
        (
            {"departed_grace_seconds": "3600"},
            "departed_grace_seconds must be 0 to 31536000 (365 days)",
        ),
        (
            {"departed_grace_seconds": 1.5},
            "departed_grace_seconds must be 0 to 31536000 (365 days)",
        ),
        (
            {"departed_grace_seconds": True},
            "departed_grace_seconds must be 0 to 31536000 (365 days)",
        ),
    ],
)
def test_bad_settings_are_refused_and_record_nothing(
    settings: dict[str, Any], message: str
) -> None:
    organization = new_organization()
    with pytest.raises(InvalidSettings) as refused:
        organization.change_settings(settings, OPERATOR)
    assert str(refused.value) == message
    assert recorded(organization) == []
    assert organization.settings == DEFAULT_SETTINGS


def test_replaying_an_organizations_events_rebuilds_the_same_organization() -> None:
    with clock():
        organization = Organization(slug="acme", context=OPERATOR)
        organization.add_admin(ADA, OPERATOR)
        organization.add_admin(BOB, OPERATOR)
        organization.change_settings({"departed_policy": "revoke-after"}, OPERATOR)
        organization.user_left({ADA}, CONTEXT, now=at(10))
        organization.user_returned({ADA}, CONTEXT)
        organization.remove_admin(BOB, OPERATOR, now=at(20))
    events = organization.collect_events()
    assert len(events) == 7
    assert replay(Organization, events) == organization


@pytest.mark.parametrize(
    ("slug", "normalized"),
    [
        ("acme", "acme"),
        ("  ACME-Corp ", "acme-corp"),
        ("a", "a"),
        ("9lives.co_uk", "9lives.co_uk"),
        ("a" * 63, "a" * 63),
    ],
)
def test_a_slug_is_normalized_to_lower_case_without_surrounding_space(
    slug: str, normalized: str
) -> None:
    assert normalize_slug(slug) == normalized


@pytest.mark.parametrize("slug", ["", "-acme", ".acme", "acme corp", "acme/x", "é", "a" * 64])
def test_an_unusable_slug_is_refused(slug: str) -> None:
    with pytest.raises(InvalidSlug) as refused:
        normalize_slug(slug)
    assert str(refused.value) == (
        f"invalid organization {slug!r}: use 1-63 letters, digits, '.', '_' or '-',"
        " starting with a letter or digit"
    )


def test_an_email_is_normalized_to_lower_case_without_surrounding_space() -> None:
    assert normalize_email("  Ada@ACME.Example\n") == ADA


@pytest.mark.parametrize("email", ["ada", "ada@acme", "@acme.example", "ada lovelace@acme.example"])
def test_an_unusable_email_is_refused(email: str) -> None:
    with pytest.raises(InvalidEmail) as refused:
        normalize_email(email)
    assert str(refused.value) == f"{email!r} is not an email address"


# Extension schemas (issue 22)

ACME_URN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
ACME_SCHEMA: dict[str, Any] = {"id": ACME_URN, "attributes": [{"name": "costCenter"}]}


def test_declaring_an_extension_records_its_checked_document() -> None:
    organization = new_organization()

    assert organization.declare_schema(ACME_SCHEMA, OPERATOR) == (ACME_URN, True)

    [(kind, fields)] = recorded(organization)
    assert kind is Organization.SchemaDeclared
    assert fields["schema_id"] == ACME_URN
    assert (fields["resource_type"], fields["required"]) == ("User", False)
    assert fields["document"]["attributes"][0]["mutability"] == "readWrite"
    assert organization.declared().user.extension(ACME_URN) is not None


def test_declaring_the_same_again_records_nothing_and_a_change_records_it_whole() -> None:
    organization = new_organization()
    organization.declare_schema(ACME_SCHEMA, OPERATOR)
    recorded(organization)

    assert organization.declare_schema(ACME_SCHEMA, OPERATOR) == (ACME_URN, False)
    assert recorded(organization) == []

    wider = {"id": ACME_URN.upper(), "attributes": [{"name": "costCenter"}, {"name": "seats"}]}
    assert organization.declare_schema(wider, OPERATOR, required=True) == (ACME_URN, True)
    [(_, fields)] = recorded(organization)
    assert fields["schema_id"] == ACME_URN  # the URN keeps its first spelling
    assert fields["document"]["id"] == ACME_URN
    assert fields["required"] is True
    assert [a["name"] for a in fields["document"]["attributes"]] == ["costCenter", "seats"]


def test_the_resource_type_comes_from_the_urn_or_must_be_given() -> None:
    organization = new_organization()
    group = {"id": "urn:acme:Group", "attributes": [{"name": "site"}]}
    other = {"id": "urn:acme:people", "attributes": [{"name": "site"}]}

    organization.declare_schema(group, OPERATOR)
    with pytest.raises(InvalidSchema) as refused:
        organization.declare_schema(other, OPERATOR)
    organization.declare_schema(other, OPERATOR, resource_type="User")

    assert str(refused.value) == (
        "urn:acme:people does not end in :User or :Group: say which resource type it extends"
    )
    declared = organization.declared()
    assert [e.schema.id for e in declared.group.extensions] == ["urn:acme:Group"]
    assert [e.schema.id for e in declared.user.declared] == ["urn:acme:people"]


def test_an_invalid_document_is_refused_and_records_nothing() -> None:
    organization = new_organization()

    with pytest.raises(InvalidSchema) as refused:
        organization.declare_schema({"id": ACME_URN, "attributes": [{"name": "a b"}]}, OPERATOR)

    assert str(refused.value).startswith("attributes[0].name must be a letter")
    assert recorded(organization) == []


def test_at_most_twenty_extensions() -> None:
    organization = new_organization()
    for number in range(20):
        organization.declare_schema({**ACME_SCHEMA, "id": f"urn:acme:x{number}:User"}, OPERATOR)

    with pytest.raises(InvalidSchema) as refused:
        organization.declare_schema({**ACME_SCHEMA, "id": "urn:acme:x20:User"}, OPERATOR)

    assert str(refused.value) == "an organization declares at most 20 extensions"


def test_removing_an_extension_records_how_many_values_it_had_and_replays() -> None:
    organization = new_organization()
    organization.declare_schema(ACME_SCHEMA, OPERATOR)

    assert organization.remove_schema(ACME_URN.lower(), 3, OPERATOR) == ACME_URN
    with pytest.raises(SchemaNotFound):
        organization.remove_schema(ACME_URN, 0, OPERATOR)

    events = organization.collect_events()
    assert isinstance(events[-1], Organization.SchemaRemoved)
    assert (events[-1].schema_id, events[-1].values) == (ACME_URN, 3)
    assert organization.extensions == {}
    assert organization.declared().user.declared == ()
