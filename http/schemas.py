"""The User schema as data: served by /Schemas and used to read incoming resources.

One definition serves discovery and validation, so what /Schemas says is what the server
accepts. Attribute names are matched case-insensitively (RFC 7643 section 2.1) and stored
under their canonical spelling; the enterprise extension is stored under its URN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scimledger.http.errors import ScimError, invalid_value
from scimledger.http.responses import CORE_GROUP, CORE_USER, ENTERPRISE_USER


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
                Attribute(
                    "$ref",
                    "reference",
                    "The URI of the Group.",
                    mutability="readOnly",
                    reference_types=("Group",),
                ),
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
                Attribute(
                    "$ref",
                    "reference",
                    "The URI of the manager's SCIM resource.",
                    reference_types=("User",),
                ),
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
                Attribute(
                    "$ref",
                    "reference",
                    "The URI of the member User.",
                    mutability="immutable",
                    reference_types=("User",),
                ),
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

# Attributes the client may send but the server owns: ignored on input (Okta echoes them).
_SERVER_OWNED = frozenset({"id", "meta", "groups", "schemas"})
# Attributes the aggregate holds outside `attributes`.
_OUTSIDE_ATTRIBUTES = frozenset({"active", "password"})

UNASSIGNED = object()


@dataclass(frozen=True)
class UserInput:
    """A validated User resource: canonical attributes, plus `active` and `password`."""

    attributes: dict[str, Any]
    active: bool | None
    password: str | None


def parse_user(body: Any) -> UserInput:
    """Reads a User resource from a decoded JSON body; raises ScimError if it is invalid.

    Unknown attributes and unknown extension schemas are ignored, as RFC 7644 allows; values
    of known attributes must have the schema's type.
    """
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    attributes: dict[str, Any] = {}
    enterprise: dict[str, Any] = {}
    active: bool | None = None
    password: str | None = None
    enterprise_prefix = ENTERPRISE_USER.lower() + ":"
    for key, value in body.items():
        lower = key.lower()
        if lower in _SERVER_OWNED:
            continue
        if lower == "active":
            parsed = check_value(USER.attribute("active"), value, "active")  # type: ignore[arg-type]
            active = None if parsed is UNASSIGNED else parsed
        elif lower == "password":
            parsed = check_value(USER.attribute("password"), value, "password")  # type: ignore[arg-type]
            password = None if parsed is UNASSIGNED else parsed
        elif lower == ENTERPRISE_USER.lower():
            if value is None:
                continue
            if not isinstance(value, dict):
                raise invalid_value(f"{ENTERPRISE_USER} must be an object")
            for sub_key, sub_value in value.items():
                _set(enterprise, ENTERPRISE, sub_key, sub_value, f"{ENTERPRISE_USER}:")
        elif lower.startswith(enterprise_prefix):
            _set(
                enterprise,
                ENTERPRISE,
                key[len(enterprise_prefix) :],
                value,
                key[: len(enterprise_prefix)],
            )
        elif lower == "externalid":
            parsed = check_value(EXTERNAL_ID, value, "externalId")
            if parsed is not UNASSIGNED:
                attributes["externalId"] = parsed
        elif not lower.startswith("urn:"):
            _set(attributes, USER, key, value, "")
    if enterprise:
        attributes[ENTERPRISE_USER] = enterprise
    user_name = attributes.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise invalid_value("userName is required")
    return UserInput(attributes=attributes, active=active, password=password)


def _set(target: dict[str, Any], schema: Schema, key: str, value: Any, prefix: str) -> None:
    attribute = schema.attribute(key)
    if attribute is None or attribute.name.lower() in _OUTSIDE_ATTRIBUTES:
        return  # unknown attribute: ignored
    if attribute.mutability == "readOnly":
        return
    parsed = check_value(attribute, value, prefix + attribute.name)
    if parsed is not UNASSIGNED:
        target[attribute.name] = parsed


def check_value(attribute: Attribute, value: Any, path: str) -> Any:
    """A value checked against its attribute's type; UNASSIGNED for null or empty."""
    if value is None:
        return UNASSIGNED
    if attribute.multi_valued:
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list):
            raise invalid_value(f"{path} must be an array")
        single = Attribute(**{**attribute.__dict__, "multi_valued": False})
        parsed = [
            p
            for i, item in enumerate(items)
            if (p := check_value(single, item, f"{path}[{i}]")) is not UNASSIGNED
        ]
        if attribute.type == "complex" and sum(1 for p in parsed if p.get("primary") is True) > 1:
            raise invalid_value(f"{path}: at most one value may be primary")
        return parsed or UNASSIGNED
    if attribute.type == "complex":
        if isinstance(value, str) and attribute.name == "manager":
            # Microsoft Entra ID sends the manager as a bare id string.
            value = {"value": value}
        if not isinstance(value, dict):
            raise invalid_value(f"{path} must be an object")
        out: dict[str, Any] = {}
        for key, sub_value in value.items():
            sub = attribute.sub(key)
            if sub is None or (sub.mutability == "readOnly" and attribute.mutability != "readOnly"):
                continue
            parsed_sub = check_value(sub, sub_value, f"{path}.{sub.name}")
            if parsed_sub is not UNASSIGNED:
                out[sub.name] = parsed_sub
        return out or UNASSIGNED
    if attribute.type == "boolean":
        if isinstance(value, bool):
            return value
        # Microsoft Entra ID sends booleans as strings ("True", "False").
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid_value(f"{path} must be a boolean")
    if not isinstance(value, str):
        raise invalid_value(f"{path} must be a string")
    return value


@dataclass(frozen=True)
class GroupInput:
    """A validated Group resource: displayName, externalId and member ids (unchecked)."""

    display_name: str
    external_id: str | None
    members: list[str]


def parse_group(body: Any) -> GroupInput:
    """Reads a Group resource from a decoded JSON body; raises ScimError if it is invalid.

    `id`, `meta` and `schemas` are ignored, and so is each member's `display` (Okta's
    wizard-built apps send `display: null`).
    """
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    display_name: Any = None
    external_id: Any = None
    members: list[str] = []
    for key, value in body.items():
        lower = key.lower()
        if lower == "displayname":
            display_name = value
        elif lower == "externalid":
            parsed = check_value(EXTERNAL_ID, value, "externalId")
            external_id = None if parsed is UNASSIGNED else parsed
        elif lower == "members":
            members = member_ids(value, "members")
    if not isinstance(display_name, str) or not display_name.strip():
        raise invalid_value("displayName is required")
    return GroupInput(display_name=display_name, external_id=external_id, members=members)


def member_ids(value: Any, path: str) -> list[str]:
    """The ids in a `members` value: a list of {"value": id, ...} (or one such object)."""
    if value is None:
        return []
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise invalid_value(f"{path} must be an array of objects with a value")
    ids: list[str] = []
    for index, item in enumerate(items):
        member = (
            next((v for k, v in item.items() if k.lower() == "value"), None)
            if isinstance(item, dict)
            else None
        )
        if not isinstance(member, str) or not member:
            raise invalid_value(f"{path}[{index}].value must be a member id")
        ids.append(member)
    return ids
