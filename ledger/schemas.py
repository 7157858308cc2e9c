"""The SCIM schemas this server implements, as data (RFC 7643).

One definition serves discovery (/Schemas), request validation (`http.schemas`) and the read
model's filters (`projections.scim`), so what /Schemas says is what the server accepts and
filters on. Attribute names are matched case-insensitively (RFC 7643 section 2.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str = "string"
    description: str = ""
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The attribute's definition in RFC 7643 section 7 form."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.sub_attributes:
            out["subAttributes"] = [sub.describe() for sub in self.sub_attributes]
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        return out

    def sub(self, name: str) -> Attribute | None:
        return _by_name(self.sub_attributes).get(name.lower())


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute | None:
        return _by_name(self.attributes).get(name.lower())

    def describe(self, base_url: str) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.describe() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


def _by_name(attributes: tuple[Attribute, ...]) -> dict[str, Attribute]:
    return {a.name.lower(): a for a in attributes}


def _multi(
    name: str,
    description: str,
    types: tuple[str, ...],
    value_type: str = "string",
    extra: tuple[Attribute, ...] = (),
) -> Attribute:
    return Attribute(
        name=name,
        type="complex",
        multi_valued=True,
        description=description,
        sub_attributes=(
            Attribute("value", value_type, f"The {name} value."),
            Attribute("display", description="A human-readable name, primarily for display."),
            *extra,
            Attribute(
                "type",
                description="A label indicating the attribute's function.",
                canonical_values=types,
            ),
            Attribute("primary", "boolean", "Whether this is the primary value."),
        ),
    )


def _ref(description: str, to: str, mutability: str = "readWrite") -> Attribute:
    """A `$ref` sub-attribute: the URI of a resource of type `to`."""
    return Attribute("$ref", "reference", description, mutability=mutability, reference_types=(to,))


_ADDRESS_PARTS = (
    Attribute("formatted", description="The full mailing address."),
    Attribute("streetAddress", description="The full street address component."),
    Attribute("locality", description="The city or locality component."),
    Attribute("region", description="The state or region component."),
    Attribute("postalCode", description="The zip code or postal code component."),
    Attribute("country", description="The country name component."),
    Attribute(
        "type",
        description="A label indicating the address's function.",
        canonical_values=("work", "home", "other"),
    ),
    Attribute("primary", "boolean", "Whether this is the primary address."),
)

USER = Schema(
    id=CORE_USER,
    name="User",
    description="User Account",
    attributes=(
        Attribute(
            "userName",
            description="Unique identifier for the User, typically the email.",
            required=True,
            uniqueness="server",
        ),
        Attribute(
            "name",
            "complex",
            "The components of the user's real name.",
            sub_attributes=(
                Attribute("formatted", description="The full name, formatted for display."),
                Attribute("familyName", description="The family name of the User."),
                Attribute("givenName", description="The given name of the User."),
                Attribute("middleName", description="The middle name(s) of the User."),
                Attribute("honorificPrefix", description="The honorific prefix(es) of the User."),
                Attribute("honorificSuffix", description="The honorific suffix(es) of the User."),
            ),
        ),
        Attribute("displayName", description="The name of the User, suitable for display."),
        Attribute("nickName", description="The casual way to address the user."),
        Attribute(
            "profileUrl",
            "reference",
            "A URI of the User's online profile.",
            reference_types=("external",),
        ),
        Attribute("title", description="The user's title, such as 'Vice President'."),
        Attribute(
            "userType", description="The relationship between the organization and the user."
        ),
        Attribute(
            "preferredLanguage", description="The User's preferred written or spoken language."
        ),
        Attribute("locale", description="The User's default location for localization."),
        Attribute("timezone", description="The User's time zone in IANA format."),
        Attribute("active", "boolean", "The User's administrative status."),
        Attribute(
            "password",
            description="The User's cleartext password; stored only as a hash.",
            mutability="writeOnly",
            returned="never",
        ),
        _multi("emails", "Email addresses for the user.", ("work", "home", "other")),
        _multi(
            "phoneNumbers",
            "Phone numbers for the User.",
            ("work", "home", "mobile", "fax", "pager", "other"),
        ),
        Attribute(
            "addresses",
            "complex",
            "A physical mailing address for this User.",
            multi_valued=True,
            sub_attributes=_ADDRESS_PARTS,
        ),
        Attribute(
            "groups",
            "complex",
            "The groups the user belongs to.",
            multi_valued=True,
            mutability="readOnly",
            sub_attributes=(
                Attribute(
                    "value", description="The identifier of the Group.", mutability="readOnly"
                ),
                _ref("The URI of the Group.", "Group", mutability="readOnly"),
                Attribute("display", description="The Group's displayName.", mutability="readOnly"),
                Attribute(
                    "type",
                    description="direct or indirect membership.",
                    mutability="readOnly",
                    canonical_values=("direct", "indirect"),
                ),
            ),
        ),
    ),
)

ENTERPRISE = Schema(
    id=ENTERPRISE_USER,
    name="EnterpriseUser",
    description="Enterprise User",
    attributes=(
        Attribute("employeeNumber", description="Numeric or alphanumeric employee identifier."),
        Attribute("costCenter", description="Identifies the name of a cost center."),
        Attribute("organization", description="Identifies the name of an organization."),
        Attribute("division", description="Identifies the name of a division."),
        Attribute("department", description="Identifies the name of a department."),
        Attribute(
            "manager",
            "complex",
            "The User's manager.",
            sub_attributes=(
                Attribute("value", description="The id of the SCIM resource of the manager."),
                _ref("The URI of the manager's SCIM resource.", "User"),
                Attribute(
                    "displayName",
                    description="The displayName of the manager.",
                    mutability="readOnly",
                ),
            ),
        ),
    ),
)

GROUP = Schema(
    id=CORE_GROUP,
    name="Group",
    description="Group",
    attributes=(
        Attribute(
            "displayName",
            description="A human-readable name for the Group.",
            required=True,
            uniqueness="server",
        ),
        Attribute(
            "members",
            "complex",
            "The users in the group (nested groups are not supported).",
            multi_valued=True,
            sub_attributes=(
                Attribute(
                    "value", description="The id of the member User.", mutability="immutable"
                ),
                _ref("The URI of the member User.", "User", mutability="immutable"),
                Attribute(
                    "display",
                    description="The member's displayName or userName.",
                    mutability="readOnly",
                ),
                Attribute(
                    "type",
                    description="The member's type: always User.",
                    mutability="immutable",
                    canonical_values=("User",),
                ),
            ),
        ),
    ),
)

EXTERNAL_ID = Attribute(
    "externalId", description="An identifier set by the provisioning client.", case_exact=True
)
