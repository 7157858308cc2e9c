"""The SCIM schemas this server implements, as data (RFC 7643).

One definition serves discovery (/Schemas), request validation (`http.schemas`) and the read
model's filters (`projections.scim`), so what /Schemas says is what the server accepts and
filters on. Attribute names are matched case-insensitively (RFC 7643 section 2.1).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any
from uuid import UUID

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
        return self._subs.get(name.lower())

    @cached_property
    def _subs(self) -> dict[str, Attribute]:
        return _by_name(self.sub_attributes)


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute | None:
        return self._by_name.get(name.lower())

    @cached_property
    def _by_name(self) -> dict[str, Attribute]:
        return _by_name(self.attributes)

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
    references = ("external",) if value_type == "reference" else ()
    return Attribute(
        name=name,
        type="complex",
        multi_valued=True,
        description=description,
        sub_attributes=(
            Attribute("value", value_type, f"The {name} value.", reference_types=references),
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
        _multi(
            "ims",
            "Instant messaging addresses for the User.",
            ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _multi("photos", "URLs of photos of the User.", ("photo", "thumbnail"), "reference"),
        _multi("entitlements", "The User's entitlements.", ()),
        _multi("roles", "The User's roles.", ()),
        _multi("x509Certificates", "The User's X.509 certificates (DER, base64).", (), "binary"),
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


# Extensions an organization declares (issue 22)

SCHEMA_URN = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPES = ("User", "Group")
TYPES = ("string", "boolean", "decimal", "integer", "dateTime", "reference", "binary", "complex")
MUTABILITIES = ("readOnly", "readWrite", "immutable", "writeOnly")
RETURNED = ("always", "never", "default", "request")
UNIQUENESS = ("none", "server", "global")
UNIQUE_TYPES = ("string", "integer", "reference")  # what `uniqueness: server` applies to

MAX_EXTENSIONS = 20  # an organization's declared extensions
MAX_ATTRIBUTES = 100  # an extension's attributes
MAX_SUB_ATTRIBUTES = 50  # a complex attribute's
MAX_CANONICAL_VALUES = 200
MAX_DOCUMENT_BYTES = 65536  # a schema document, as JSON
MAX_URN = 200
MAX_NAME = 64  # an attribute's name
MAX_TEXT = 1000  # a description
MAX_VALUE_TEXT = 200  # a canonical value, a reference type, a schema's name

# RFC 7643 section 2.1: ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA.
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# RFC 8141's URN, kept to characters that need no escaping anywhere the URN is written (SQL
# string literals and JSON paths, JSON, HTML, a terminal): no quote of either kind, space,
# backslash, brace, '?', '#' or '%'.
_URN = re.compile(
    r"^urn:[a-z0-9][a-z0-9-]{0,31}(:[a-z0-9._~!$&()*+,;=@/-]+)+$", re.IGNORECASE | re.ASCII
)
_RESERVED = (
    "urn:ietf:params:scim:schemas:core:",
    "urn:ietf:params:scim:api:",
    ENTERPRISE_USER.lower(),
)


class InvalidDeclaration(ValueError):
    """A schema document this server cannot declare: the message says what and where."""


@dataclass(frozen=True)
class Extension:
    """An extension schema of a resource type, as an organization declared it (or the
    enterprise extension, which every organization has)."""

    schema: Schema
    resource_type: str  # "User" or "Group"
    required: bool = False  # every resource must carry it (ResourceType schemaExtensions)
    # Its attributes unique within the organization (`uniqueness: server`), each with the
    # generation of its uniqueness (Organization.declare_schema): the index of its values.
    unique: tuple[tuple[str, int], ...] = ()

    @cached_property
    def withheld(self) -> dict[str, str]:
        """Its attributes a response leaves out: "never" (writeOnly, or returned never), or
        "request" (returned only when asked for)."""
        rules = {}
        for attribute in self.schema.attributes:
            if attribute.mutability == "writeOnly" or attribute.returned == "never":
                rules[attribute.name] = "never"
            elif attribute.returned == "request":
                rules[attribute.name] = "request"
        return rules


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity: made once per state
class ResourceSchemas:
    """The schemas of one resource type as an organization has them: its core schema, then
    its extensions (the enterprise one first, for users). What /Schemas and /ResourceTypes
    describe, what requests are validated against, and what responses return."""

    core: Schema
    extensions: tuple[Extension, ...] = ()

    def extension(self, urn: str) -> Extension | None:
        lower = urn.lower()
        return next((e for e in self.extensions if e.schema.id.lower() == lower), None)

    @cached_property  # asked on every render and write
    def declared(self) -> tuple[Extension, ...]:
        """The organization's own extensions (not the enterprise one)."""
        return tuple(e for e in self.extensions if e.schema is not ENTERPRISE)

    def split_urn(self, name: str) -> tuple[Extension, str] | None:
        """`(extension, rest)` for a name that starts with an extension's URN and a colon
        (`urn:...:User:costCenter`), else None."""
        lower = name.lower()
        for extension in self.extensions:
            prefix = extension.schema.id.lower() + ":"
            if lower.startswith(prefix):
                return extension, name[len(prefix) :]
        return None

    def visible(self, attributes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A resource's stored attributes split in two: those its declarations define now
        (returned, filtered, patched), and the rest, kept but not shown: the values of an
        extension no longer declared, of an attribute removed from one, or of a type it no
        longer has. Changing a declaration rewrites no event: values recorded under an older
        one load and replay as they were, and show again if it is declared again."""
        hidden: dict[str, Any] = {}
        shown = attributes
        for key in [k for k in attributes if k[:4] == "urn:" and k != ENTERPRISE_USER]:
            value = attributes[key]
            extension = self.extension(key)
            if extension is None or not isinstance(value, dict):
                kept, dropped = None, value
            else:
                kept, dropped = _declared_part(extension.schema, value)
            if dropped is None:
                continue
            if shown is attributes:
                shown = dict(attributes)
            if kept:
                shown[key] = kept
            else:
                del shown[key]
            hidden[key] = dropped
        return shown, hidden

    @cached_property
    def always(self) -> tuple[tuple[str, str], ...]:
        """The declared attributes returned whatever a request selects (`returned:
        always`), as (URN, name)."""
        return tuple(
            (extension.schema.id, attribute.name)
            for extension in self.declared
            for attribute in extension.schema.attributes
            if attribute.returned == "always"
        )

    def unique_values(self, attributes: dict[str, Any]) -> set[tuple[str, str]]:
        """The values of a resource that must be unique in its organization, each as the
        index that keeps it unique (`unique_kind`) and its compared form (`unique_form`)."""
        found: set[tuple[str, str]] = set()
        for extension in self.declared:
            if not extension.unique:
                continue
            values = attributes.get(extension.schema.id)
            if not isinstance(values, dict):
                continue
            for name, generation in extension.unique:
                attribute = extension.schema.attribute(name)
                value = values.get(name)
                if attribute is not None and value is not None and fits(attribute, value):
                    kind = unique_kind(extension.schema.id, name, generation)
                    found.add((kind, unique_form(attribute, value)))
        return found

    def returned(
        self, attributes: dict[str, Any], asked: Callable[[str, str], bool]
    ) -> dict[str, Any]:
        """What a response shows of a resource's stored attributes: those `visible`, but a
        declared attribute never returned (writeOnly, or `returned: never`), or returned only
        on request (`returned: request`) unless `asked(urn, name)`."""
        shown, _ = self.visible(attributes)
        if not self.declared:
            return shown
        for extension in self.declared:
            urn = extension.schema.id
            values = shown.get(urn)
            if not values or not extension.withheld:
                continue
            kept = {
                name: value
                for name, value in values.items()
                if (rule := extension.withheld.get(name)) is None
                or (rule == "request" and asked(urn, name))
            }
            shown = {**shown, urn: kept} if kept else {k: v for k, v in shown.items() if k != urn}
        return shown


def unique_kind(urn: str, name: str, generation: int) -> str:
    """The name index (ledger.names) of a unique attribute's values: a new generation of its
    uniqueness is a new index, so that claims made under an earlier one never count."""
    return f"{urn}:{name}#{generation}"


def unique_form(attribute: Attribute, value: Any) -> str:
    """The form a unique value is compared in: a string as a userName is (case-folded), but
    for a caseExact one; an integer as its digits."""
    if isinstance(value, str) and not attribute.case_exact:
        return unicodedata.normalize("NFC", value).casefold()
    return str(value)


def _declared_part(schema: Schema, values: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """An extension's stored values split into those that fit its declaration and the rest
    (None if all fit)."""
    kept: dict[str, Any] = {}
    dropped: dict[str, Any] = {}
    for name, value in values.items():
        attribute = schema.attribute(name)
        if attribute is not None and attribute.name == name and fits(attribute, value):
            kept[name] = value
        else:
            dropped[name] = value
    return kept, (dropped or None)


def fits(attribute: Attribute, value: Any) -> bool:
    """Whether a stored value has the shape its attribute's declaration gives."""
    if attribute.multi_valued:
        if not isinstance(value, list):
            return False
        single = single_value(attribute)
        return all(fits(single, item) for item in value)
    if attribute.type == "complex":
        if not isinstance(value, dict):
            return False
        return all(
            (sub := attribute.sub(name)) is not None and sub.name == name and fits(sub, item)
            for name, item in value.items()
        )
    return _scalar_fits(attribute.type, value)


def _scalar_fits(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "decimal":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def single_value(attribute: Attribute) -> Attribute:
    """One value of a multi-valued attribute."""
    return replace(attribute, multi_valued=False)


USER_SCHEMAS = ResourceSchemas(USER, (Extension(ENTERPRISE, "User"),))
GROUP_SCHEMAS = ResourceSchemas(GROUP)


@dataclass(frozen=True)
class Declared:
    """An organization's schemas: each resource type's core schema and extensions."""

    user: ResourceSchemas = USER_SCHEMAS
    group: ResourceSchemas = GROUP_SCHEMAS

    @classmethod
    def of(cls, declarations: dict[str, dict[str, Any]]) -> Declared:
        """From an organization's declarations (Organization.extensions: each URN's
        `resource_type`, `required` and `document`), in the order they were declared."""
        made: dict[str, list[Extension]] = {kind: [] for kind in RESOURCE_TYPES}
        for declaration in declarations.values():
            schema = schema_of(declaration["document"])
            kind = declaration["resource_type"]
            unique = tuple(sorted(declaration.get("unique", {}).items()))
            made[kind].append(Extension(schema, kind, bool(declaration["required"]), unique))
        return cls(
            user=ResourceSchemas(USER, (*USER_SCHEMAS.extensions, *made["User"])),
            group=ResourceSchemas(GROUP, tuple(made["Group"])),
        )

    def of_type(self, resource_type: str) -> ResourceSchemas:
        return self.user if resource_type == "User" else self.group

    def schemas(self) -> list[Schema]:
        """Every schema, as /Schemas lists them."""
        return [
            USER,
            GROUP,
            *(e.schema for e in self.user.extensions),
            *(e.schema for e in self.group.extensions),
        ]

    def schema(self, urn: str) -> Schema | None:
        lower = urn.lower()
        return next((s for s in self.schemas() if s.id.lower() == lower), None)


BUILT_IN = Declared()

# The values resources of an organization hold of one extension attribute (org id, resource
# type, URN, attribute name -> (resource id, value) pairs): the read model's, given to the
# ledger by whoever declares (projections.scim.extension_holders).
Holders = Callable[[UUID, str, str, str], list[tuple[str, Any]]]


def resource_type_of(urn: str) -> str | None:
    """The resource type an extension's URN names by convention (`...:User`, `...:Group`)."""
    last = urn.rsplit(":", 1)[-1].lower()
    return next((kind for kind in RESOURCE_TYPES if kind.lower() == last), None)


def parse_declaration(document: Any, others: list[str]) -> dict[str, Any]:
    """A schema document (RFC 7643 section 7) checked and put in the form it is recorded in
    (every attribute's characteristics spelled out, as /Schemas shows them). `others` are the
    URNs the organization has declared besides this one. Raises InvalidDeclaration."""
    if not isinstance(document, dict):
        raise InvalidDeclaration("a schema document is a JSON object")
    _known_keys(document, {"id", "name", "description", "attributes", "schemas", "meta"}, "")
    urn = document.get("id")
    if not isinstance(urn, str) or len(urn) > MAX_URN or not _URN.match(urn):
        raise InvalidDeclaration(
            f"id must be a URN (urn:<namespace>:<name>...) of at most {MAX_URN} characters,"
            " without quotes, spaces, braces, '%', '?' or '#'"
        )
    lower = urn.lower()
    if lower in (CORE_USER.lower(), CORE_GROUP.lower()) or lower.startswith(_RESERVED):
        raise InvalidDeclaration(f"{urn} is a schema of SCIM itself: it cannot be declared")
    for other in others:
        if other.lower() != lower and (
            lower.startswith(other.lower() + ":") or other.lower().startswith(lower + ":")
        ):
            raise InvalidDeclaration(
                f"{urn} and the declared {other} overlap: an attribute path could name either"
            )
    name = document.get("name", urn.rsplit(":", 1)[-1])
    description = document.get("description", "")
    _text(name, "name", MAX_VALUE_TEXT, empty=False)
    _text(description, "description", MAX_TEXT)
    attributes = document.get("attributes")
    if not isinstance(attributes, list) or not 1 <= len(attributes) <= MAX_ATTRIBUTES:
        raise InvalidDeclaration(f"attributes must be a list of 1 to {MAX_ATTRIBUTES} attributes")
    parsed = _attributes(attributes, "", nested=False)
    recorded = {
        "id": urn,
        "name": name,
        "description": description,
        "attributes": [attribute.describe() for attribute in parsed],
    }
    if len(json.dumps(recorded)) > MAX_DOCUMENT_BYTES:
        raise InvalidDeclaration(f"a schema document has at most {MAX_DOCUMENT_BYTES} bytes")
    return recorded


def declaration_view(declaration: dict[str, Any]) -> dict[str, Any]:
    """A declaration (Organization.extensions' value) as the CLI and the admin API show it:
    the resource type it extends, whether it is required, and the schema as /Schemas
    describes it (without the server's `meta`)."""
    described = schema_of(declaration["document"]).describe("")
    del described["meta"]
    return {
        "resourceType": declaration["resource_type"],
        "required": declaration["required"],
        **described,
    }


def schema_of(recorded: dict[str, Any]) -> Schema:
    """The Schema a recorded declaration (parse_declaration's form) describes."""
    return Schema(
        id=recorded["id"],
        name=recorded["name"],
        description=recorded["description"],
        attributes=tuple(_attribute_of(a) for a in recorded["attributes"]),
    )


def _attribute_of(described: dict[str, Any]) -> Attribute:
    return Attribute(
        name=described["name"],
        type=described["type"],
        description=described["description"],
        multi_valued=described["multiValued"],
        required=described["required"],
        case_exact=described["caseExact"],
        mutability=described["mutability"],
        returned=described["returned"],
        uniqueness=described["uniqueness"],
        sub_attributes=tuple(_attribute_of(s) for s in described.get("subAttributes", ())),
        canonical_values=tuple(described.get("canonicalValues", ())),
        reference_types=tuple(described.get("referenceTypes", ())),
    )


_ATTRIBUTE_KEYS = {
    "name",
    "type",
    "description",
    "multiValued",
    "required",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
    "canonicalValues",
    "referenceTypes",
    "subAttributes",
}


def _attributes(items: list[Any], parent: str, *, nested: bool) -> list[Attribute]:
    seen: set[str] = set()
    parsed = []
    for index, item in enumerate(items):
        where = f"{parent}attributes[{index}]" if not nested else f"{parent}.subAttributes[{index}]"
        attribute = _attribute(item, where, nested=nested)
        if attribute.name.lower() in seen:
            raise InvalidDeclaration(f"{where}: {attribute.name} is declared twice")
        seen.add(attribute.name.lower())
        parsed.append(attribute)
    return parsed


def _attribute(item: Any, where: str, *, nested: bool) -> Attribute:
    if not isinstance(item, dict):
        raise InvalidDeclaration(f"{where} must be an object")
    _known_keys(item, _ATTRIBUTE_KEYS, where)
    name = item.get("name")
    if not isinstance(name, str) or len(name) > MAX_NAME or not _ATTRIBUTE_NAME.match(name):
        raise InvalidDeclaration(
            f"{where}.name must be a letter then letters, digits, '-' or '_'"
            f" (at most {MAX_NAME} characters)"
        )
    where = f"{where} ({name})"
    kind = _choice(item, "type", TYPES, "string", where)
    if kind == "complex" and nested:
        raise InvalidDeclaration(f"{where}: a sub-attribute cannot be complex (RFC 7643 2.3.8)")
    subs: tuple[Attribute, ...] = ()
    if kind == "complex":
        given = item.get("subAttributes")
        if not isinstance(given, list) or not 1 <= len(given) <= MAX_SUB_ATTRIBUTES:
            raise InvalidDeclaration(
                f"{where}: a complex attribute has 1 to {MAX_SUB_ATTRIBUTES} subAttributes"
            )
        subs = tuple(_attributes(given, where, nested=True))
    elif "subAttributes" in item:
        raise InvalidDeclaration(f"{where}: only a complex attribute has subAttributes")
    canonical = _strings(item, "canonicalValues", where, MAX_CANONICAL_VALUES)
    if canonical and kind != "string":
        raise InvalidDeclaration(f"{where}: only a string attribute has canonicalValues")
    references = _strings(item, "referenceTypes", where, 20)
    if references and kind != "reference":
        raise InvalidDeclaration(f"{where}: only a reference attribute has referenceTypes")
    description = item.get("description", "")
    _text(description, f"{where}.description", MAX_TEXT)
    uniqueness = _choice(item, "uniqueness", UNIQUENESS, "none", where)
    if uniqueness == "global":
        raise InvalidDeclaration(
            f"{where}: uniqueness global is not kept (no organization sees another's"
            " values): declare server, unique within the organization"
        )
    if uniqueness == "server" and (
        nested or _flag(item, "multiValued", where) or kind not in UNIQUE_TYPES
    ):
        raise InvalidDeclaration(
            f"{where}: uniqueness server applies to a single-valued top-level attribute of"
            f" type {', '.join(UNIQUE_TYPES)}"
        )
    mutability = _choice(item, "mutability", MUTABILITIES, "readWrite", where)
    if mutability == "writeOnly":
        # A writeOnly value is a secret (RFC 7643: "e.g., because the value is a stored
        # hash"); the only secret kept is the password, as a hash. Every other value is in
        # the audit trail, where a secret must never be.
        raise InvalidDeclaration(
            f"{where}: writeOnly attributes hold secrets, which are not kept (the audit trail"
            " shows every value): declare it readWrite with returned never, if it is no secret"
        )
    return Attribute(
        name=name,
        type=kind,
        description=description,
        multi_valued=_flag(item, "multiValued", where),
        required=_flag(item, "required", where),
        case_exact=_flag(item, "caseExact", where),
        mutability=mutability,
        returned=_choice(item, "returned", RETURNED, "default", where),
        uniqueness=uniqueness,
        sub_attributes=subs,
        canonical_values=canonical,
        reference_types=references,
    )


def _known_keys(item: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in item if key not in known)
    if unknown:
        shown = ", ".join(repr(key[:40]) for key in unknown[:5])
        raise InvalidDeclaration(f"{where or 'the schema'}: unknown {shown}")


def _choice(
    item: dict[str, Any], key: str, allowed: tuple[str, ...], default: str, where: str
) -> str:
    value = item.get(key, default)
    if value not in allowed:
        raise InvalidDeclaration(f"{where}.{key} must be one of {', '.join(allowed)}")
    return str(value)


def _flag(item: dict[str, Any], key: str, where: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise InvalidDeclaration(f"{where}.{key} must be true or false")
    return value


def _strings(item: dict[str, Any], key: str, where: str, most: int) -> tuple[str, ...]:
    values = item.get(key, [])
    if not isinstance(values, list) or len(values) > most:
        raise InvalidDeclaration(f"{where}.{key} must be a list of at most {most} strings")
    for value in values:
        _text(value, f"{where}.{key}", MAX_VALUE_TEXT, empty=False)
    return tuple(values)


def _text(value: Any, where: str, longest: int, *, empty: bool = True) -> None:
    """Text shown to people (a terminal, a web page, a spreadsheet): printable, bounded."""
    if (
        not isinstance(value, str)
        or len(value) > longest
        or (not empty and not value.strip())
        or not (value.isprintable() or value == "")
    ):
        size = f"at most {longest}" if empty else f"1 to {longest}"
        raise InvalidDeclaration(f"{where} must be printable text of {size} characters")
