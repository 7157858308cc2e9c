"""The Organization aggregate: the tenant every user and token belongs to."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict, cast, get_args
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from scimledger.ledger.context import CommandContext, Role
from scimledger.ledger.errors import (
    InvalidEmail,
    InvalidRole,
    InvalidSchema,
    InvalidSettings,
    InvalidSlug,
    NotAnAdmin,
    SchemaNotFound,
)
from scimledger.ledger.moments import MAX_GRACE
from scimledger.ledger.schemas import (
    BUILT_IN,
    MAX_EXTENSIONS,
    RESOURCE_TYPES,
    Declared,
    InvalidDeclaration,
    parse_declaration,
    resource_type_of,
)

NAMESPACE = UUID("6f1c1b55-8a0e-4b8e-9d1c-7a3f0c6f2d10")
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def normalize_slug(slug: str) -> str:
    normalized = slug.strip().lower()
    if not SLUG_PATTERN.match(normalized):
        raise InvalidSlug(
            f"invalid organization {slug!r}: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return normalized


class Organization(Aggregate):
    class OrganizationCreated(Aggregate.Created):
        slug: str
        context: CommandContext

    @staticmethod
    def create_id(slug: str) -> UUID:
        return uuid5(NAMESPACE, f"organization:{slug}")

    class AdminAdded(Aggregate.Event):
        """`email` is now an admin or a reviewer (`role`), a new one or one whose role
        changed."""

        email: str
        context: CommandContext
        role: Role = "admin"  # reviewers came with the console (issue 17)

    class AdminRemoved(Aggregate.Event):
        email: str
        context: CommandContext
        removed_at: datetime | None = None  # when the admin left (passed in: no clocks here)

    class AdminDeparted(Aggregate.Event):
        """An admin's own user was deactivated or deleted through SCIM: they left."""

        email: str
        departed_at: datetime
        context: CommandContext

    class AdminReturned(Aggregate.Event):
        """An admin's own user was reactivated through SCIM: they are back."""

        email: str
        context: CommandContext

    class SettingsChanged(Aggregate.Event):
        changes: dict[str, Any]  # only what changed: departed_policy, departed_grace_seconds,
        context: CommandContext  # scim_base_url

    class SchemaDeclared(Aggregate.Event):
        """An extension schema declared, or its declaration changed: the whole document,
        as checked (ledger.schemas.parse_declaration)."""

        schema_id: str
        resource_type: str  # "User" or "Group"
        required: bool  # every resource of the type must carry it
        document: dict[str, Any]
        context: CommandContext

    class SchemaRemoved(Aggregate.Event):
        """An extension schema no longer declared. `values`: how many resources held values
        of it then (a removal with values is forced); the values stay in their events."""

        schema_id: str
        values: int
        context: CommandContext

    @event(OrganizationCreated)
    def __init__(self, slug: str, context: CommandContext) -> None:
        self.slug = slug
        self.admins: list[str] = []
        self.reviewers: list[str] = []  # compliance: read people, history and the audit trail
        # When each removed admin left: their tokens' "issuer departed" clock.
        self.departed: dict[str, datetime] = {}
        self.settings: Settings = DEFAULT_SETTINGS.copy()
        # The extension schemas declared (issue 22), by URN: resource_type, required, document.
        self.extensions: dict[str, dict[str, Any]] = {}

    def declared(self) -> Declared:
        """The organization's schemas as requests are validated and answered with."""
        if not self.extensions:
            return BUILT_IN
        # Made once per state of the declarations (every request asks): each change assigns
        # a new `extensions` dict, and the one made from is held, so its identity is not
        # reused while it is compared.
        made: tuple[dict[str, Any], Declared] | None = getattr(self, "_declared", None)
        if made is None or made[0] is not self.extensions:
            made = (self.extensions, Declared.of(self.extensions))
            self._declared = made
        return made[1]

    def declare_schema(
        self,
        document: Any,
        context: CommandContext,
        *,
        resource_type: str | None = None,
        required: bool = False,
    ) -> tuple[str, bool]:
        """Declares an extension schema, or changes its declaration: its URN, and whether
        that changed anything. InvalidSchema if the document is not one this server can
        declare."""
        urn = document.get("id") if isinstance(document, dict) else None
        existing = self.declared_urn(urn) if isinstance(urn, str) else None
        others = [known for known in self.extensions if known != existing]
        try:
            recorded = parse_declaration(document, others)
        except InvalidDeclaration as exc:
            raise InvalidSchema(str(exc)) from None
        urn = existing or recorded["id"]
        recorded["id"] = urn  # a URN keeps the spelling it was first declared with
        kind = resource_type or resource_type_of(urn)
        if kind not in RESOURCE_TYPES:
            raise InvalidSchema(
                f"{urn} does not end in :User or :Group: say which resource type it extends"
            )
        if existing is None and len(self.extensions) >= MAX_EXTENSIONS:
            raise InvalidSchema(f"an organization declares at most {MAX_EXTENSIONS} extensions")
        declaration = {"resource_type": kind, "required": required, "document": recorded}
        current = self.extensions.get(urn, {})
        if {k: v for k, v in current.items() if k != "unique"} == declaration:
            return urn, False
        self._declare_schema(urn, kind, required, recorded, context)
        return urn, True

    @event(SchemaDeclared)
    def _declare_schema(
        self,
        schema_id: str,
        resource_type: str,
        required: bool,
        document: dict[str, Any],
        context: CommandContext,
    ) -> None:
        # Each unique attribute's generation: kept while it stays unique, else this event's
        # (the version before it: one per event of the organization), so that a uniqueness
        # declared again starts an index of its own (ledger.schemas.unique_kind).
        before = self.extensions.get(schema_id, {}).get("unique", {})
        unique = {
            attribute["name"]: before.get(attribute["name"], self.version)
            for attribute in document["attributes"]
            if attribute["uniqueness"] == "server"
        }
        declaration = {
            "resource_type": resource_type,
            "required": required,
            "document": document,
            "unique": unique,
        }
        self.extensions = {**self.extensions, schema_id: declaration}

    def new_uniqueness(self, urn: str, before: dict[str, int]) -> dict[str, int]:
        """The extension's attributes whose uniqueness is new since `before` (its unique
        attributes then, with their generations), with their generations."""
        now: dict[str, int] = self.extensions.get(urn, {}).get("unique", {})
        return {
            name: generation for name, generation in now.items() if before.get(name) != generation
        }

    def declaration(self, urn: str) -> dict[str, Any]:
        """The declaration of `urn` (spelled in any case): resource_type, required, document,
        unique; SchemaNotFound if there is none."""
        existing = self.declared_urn(urn)
        if existing is None:
            raise SchemaNotFound(urn)
        return self.extensions[existing]

    def remove_schema(self, urn: str, values: int, context: CommandContext) -> str:
        """Removes a declared extension; SchemaNotFound if there is none by that URN."""
        existing = self.declaration(urn)["document"]["id"]
        self._remove_schema(existing, values, context)
        return str(existing)

    @event(SchemaRemoved)
    def _remove_schema(self, schema_id: str, values: int, context: CommandContext) -> None:
        self.extensions = {k: v for k, v in self.extensions.items() if k != schema_id}

    def declared_urn(self, urn: str) -> str | None:
        """The URN as declared, for one spelled in any case (URNs compare case-insensitively
        here, as attribute names do)."""
        lower = urn.lower()
        return next((known for known in self.extensions if known.lower() == lower), None)

    def change_settings(self, settings: dict[str, Any], context: CommandContext) -> None:
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise InvalidSettings(f"unknown settings: {', '.join(sorted(unknown))}")
        if settings.get("departed_policy", "warn") not in DEPARTED_POLICIES:
            raise InvalidSettings(f"departed_policy must be one of {', '.join(DEPARTED_POLICIES)}")
        grace = settings.get("departed_grace_seconds", 0)
        longest = int(MAX_GRACE.total_seconds())
        if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= longest:
            raise InvalidSettings(f"departed_grace_seconds must be 0 to {longest} (365 days)")
        retention = settings.get("erase_deleted_after_seconds")
        longest_kept = int(MAX_RETENTION.total_seconds())
        if retention is not None and (
            not isinstance(retention, int)
            or isinstance(retention, bool)
            or not 0 <= retention <= longest_kept
        ):
            raise InvalidSettings(
                f"erase_deleted_after_seconds must be 0 to {longest_kept} (3650 days), or null"
            )
        base_url = settings.get("scim_base_url")
        if base_url is not None and not _web_url(base_url):
            raise InvalidSettings("scim_base_url must be an http:// or https:// URL")
        issuer = settings.get("oidc_issuer")
        if issuer is not None and not _issuer_url(issuer):
            raise InvalidSettings("oidc_issuer must be an https:// URL (http:// only on localhost)")
        client_id = settings.get("oidc_client_id")
        if client_id is not None and not _printable(client_id, 255):
            raise InvalidSettings("oidc_client_id must be 1 to 255 printable characters")
        current: dict[str, Any] = dict(self.settings)
        changes = {k: v for k, v in settings.items() if current.get(k) != v}
        if changes:
            self._change_settings(changes, context)

    @event(SettingsChanged)
    def _change_settings(self, changes: dict[str, Any], context: CommandContext) -> None:
        self.settings = cast(Settings, {**self.settings, **changes})

    def add_admin(self, email: str, context: CommandContext, role: Role = "admin") -> None:
        """Makes `email` an admin or a reviewer; a member of the other role changes role."""
        if role not in ROLES:
            raise InvalidRole(f"role must be one of {', '.join(ROLES)}")
        if normalize_email(email) not in self._members(role):
            self._add_admin(normalize_email(email), context, role)

    @event(AdminAdded)
    def _add_admin(self, email: str, context: CommandContext, role: Role = "admin") -> None:
        self.admins = [admin for admin in self.admins if admin != email]
        self.reviewers = [reviewer for reviewer in self.reviewers if reviewer != email]
        self._members(role).append(email)
        self.departed = {k: v for k, v in self.departed.items() if k != email}

    def _members(self, role: Role) -> list[str]:
        return self.admins if role == "admin" else self.reviewers

    def role_of(self, email: str) -> Role | None:
        """What `email` may do in the console now: None once removed or departed."""
        if email in self.departed:
            return None
        if email in self.admins:
            return "admin"
        return "reviewer" if email in self.reviewers else None

    def user_left(self, emails: set[str], context: CommandContext, now: datetime) -> None:
        """Records the departure of every admin or reviewer among a deactivated user's
        emails."""
        members = set(self.admins) | set(self.reviewers)
        for email in sorted(emails & members - set(self.departed)):
            self._admin_departed(email, now, context)

    @event(AdminDeparted)
    def _admin_departed(self, email: str, departed_at: datetime, context: CommandContext) -> None:
        self.departed = {**self.departed, email: departed_at}

    def user_returned(self, emails: set[str], context: CommandContext) -> None:
        members = set(self.admins) | set(self.reviewers)
        for email in sorted(emails & members & set(self.departed)):
            self._admin_returned(email, context)

    @event(AdminReturned)
    def _admin_returned(self, email: str, context: CommandContext) -> None:
        self.departed = {k: v for k, v in self.departed.items() if k != email}

    def remove_admin(self, email: str, context: CommandContext, now: datetime) -> None:
        if normalize_email(email) not in {*self.admins, *self.reviewers}:
            raise NotAnAdmin(f"{email} is not an admin or reviewer of {self.slug}")
        self._remove_admin(normalize_email(email), context, now)

    @event(AdminRemoved)
    def _remove_admin(
        self, email: str, context: CommandContext, removed_at: datetime | None = None
    ) -> None:
        self.admins = [admin for admin in self.admins if admin != email]
        self.reviewers = [reviewer for reviewer in self.reviewers if reviewer != email]
        if removed_at is not None:
            self.departed = {**self.departed, email: removed_at}


ROLES: tuple[Role, ...] = get_args(Role)


# What happens to a token whose issuer left: shown as such, or revoked after a grace period
# (ledger.departures).
DepartedPolicy = Literal["warn", "revoke-after"]
DEPARTED_POLICIES: tuple[DepartedPolicy, ...] = get_args(DepartedPolicy)


class Settings(TypedDict):
    """An organization's settings."""

    departed_policy: DepartedPolicy
    departed_grace_seconds: int
    scim_base_url: str | None  # the SCIM connector base URL shown to admins, if not derived
    # The console's single sign-on (OpenID Connect) with the organization's identity provider;
    # the client secret is never here, only when it was set (ledger.secrets).
    oidc_issuer: str | None
    oidc_client_id: str | None
    oidc_client_secret_set_at: str | None
    # Users deleted longer ago than this are erased by the retention policy (ledger.retention);
    # None: never (they are erased on request only).
    erase_deleted_after_seconds: int | None


DEFAULT_SETTINGS: Settings = {
    "departed_policy": "warn",
    "departed_grace_seconds": 7 * 24 * 3600,
    "scim_base_url": None,
    "oidc_issuer": None,
    "oidc_client_id": None,
    "oidc_client_secret_set_at": None,
    "erase_deleted_after_seconds": None,
}
MAX_RETENTION = timedelta(days=3650)  # the longest a deleted user's data may be kept


def _web_url(value: object) -> bool:
    """An absolute http(s) URL of at most 2048 characters, with no space or control
    character (it is shown to admins and copied into an identity provider)."""
    if not isinstance(value, str) or len(value) > 2048 or re.search(r"[\x00-\x20\x7f-\x9f]", value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _issuer_url(value: object) -> bool:
    """An identity provider's issuer: https, or http on this machine (a test provider)."""
    if not _web_url(value):
        return False
    parts = urlsplit(str(value))
    return parts.scheme == "https" or parts.hostname in ("localhost", "127.0.0.1", "::1")


def _printable(value: object, longest: int) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= longest
        and value.isprintable()
        and value.strip() == value
    )


_PART = r"[^@\s\x00-\x1f\x7f-\x9f]+"  # no space and no control character: emails are printed
EMAIL_PATTERN = re.compile(rf"^{_PART}@{_PART}\.{_PART}$")


def normalize_email(email: str) -> str:
    normalized = email.strip().lower()
    if not EMAIL_PATTERN.match(normalized):
        raise InvalidEmail(f"{email!r} is not an email address")
    return normalized
