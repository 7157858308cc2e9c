"""The Organization aggregate: the tenant every user and token belongs to."""

from __future__ import annotations

import re
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from scimledger.ledger.context import CommandContext
from scimledger.ledger.errors import InvalidOrganization

NAMESPACE = UUID("6f1c1b55-8a0e-4b8e-9d1c-7a3f0c6f2d10")
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def normalize_slug(slug: str) -> str:
    normalized = slug.strip().lower()
    if not SLUG_PATTERN.match(normalized):
        raise InvalidOrganization(
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
        email: str
        context: CommandContext

    class AdminRemoved(Aggregate.Event):
        email: str
        context: CommandContext

    @event(OrganizationCreated)
    def __init__(self, slug: str, context: CommandContext) -> None:
        self.slug = slug
        self.admins: list[str] = []

    def add_admin(self, email: str, context: CommandContext) -> None:
        if normalize_email(email) not in self.admins:
            self._add_admin(normalize_email(email), context)

    @event(AdminAdded)
    def _add_admin(self, email: str, context: CommandContext) -> None:
        self.admins = [*self.admins, email]

    def remove_admin(self, email: str, context: CommandContext) -> None:
        if normalize_email(email) not in self.admins:
            raise InvalidOrganization(f"{email} is not an admin of {self.slug}")
        self._remove_admin(normalize_email(email), context)

    @event(AdminRemoved)
    def _remove_admin(self, email: str, context: CommandContext) -> None:
        self.admins = [admin for admin in self.admins if admin != email]


EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    normalized = email.strip().lower()
    if not EMAIL_PATTERN.match(normalized):
        raise InvalidOrganization(f"{email!r} is not an email address")
    return normalized
