"""Domain errors raised by the ledger. HTTP and CLI layers translate them; none is HTTP."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class for every error the ledger raises on purpose."""


class UserNotFound(LedgerError):
    def __init__(self, user_id: object) -> None:
        super().__init__(f"User {user_id} not found")


class UserNameTaken(LedgerError):
    def __init__(self, user_name: str) -> None:
        super().__init__(f"userName {user_name!r} is already taken in this organization")


class ValueTaken(LedgerError):
    """A value of an attribute declared unique (`uniqueness: server`) that another resource
    of the organization holds."""

    def __init__(self, attribute: str) -> None:
        super().__init__(f"{attribute}: another resource of this organization has this value")


class UserIsActive(LedgerError):
    """An active user is erased only when forced: erasing them cuts off someone in use."""

    def __init__(self, user_id: object) -> None:
        super().__init__(
            f"User {user_id} is active: deactivate or delete them first, or force the erasure"
        )


class InvalidReason(LedgerError):
    """An erasure's reason that is empty, too long or holds control characters."""


class UserWasErased(LedgerError):
    """The user's personal data was erased: what they were can no longer be shown."""

    def __init__(self, user_id: object, erased_at: object) -> None:
        super().__init__(f"User {user_id} was erased at {erased_at}")
        self.erased_at = erased_at


class GroupNotFound(LedgerError):
    def __init__(self, group_id: object) -> None:
        super().__init__(f"Group {group_id} not found")


class GroupNameTaken(LedgerError):
    def __init__(self, display_name: str) -> None:
        super().__init__(f"displayName {display_name!r} is already taken in this organization")


class OrganizationNotFound(LedgerError):
    pass


class InvalidSlug(LedgerError):
    """Not a name an organization may have."""


class InvalidEmail(LedgerError):
    pass


class InvalidSettings(LedgerError):
    """Settings an organization cannot have: unknown names or values out of range."""


class InvalidSchema(LedgerError):
    """A schema document that cannot be declared: the message says what and where."""


class SchemaNotFound(LedgerError):
    def __init__(self, urn: str) -> None:
        super().__init__(f"no extension schema {urn} is declared")
        self.urn = urn


class SchemaInUse(LedgerError):
    """An extension whose values resources hold is removed only when forced."""

    def __init__(self, urn: str, values: int) -> None:
        super().__init__(
            f"{values} resource(s) hold values of {urn}: remove it with force to stop"
            " returning them (they stay in the ledger's events)"
        )


class InvalidRole(LedgerError):
    """Not a role a person may have in an organization (admin, reviewer)."""


class NotAnAdmin(LedgerError):
    """The email named is not an admin of the organization."""


class InvalidToken(LedgerError):
    """The token is malformed, unknown, expired or revoked.

    The message says which, for operators; the HTTP layer does not tell clients which.
    """


class TokenNotFound(LedgerError):
    def __init__(self, token_id: object) -> None:
        super().__init__(f"Token {token_id} not found")


class ConcurrentModification(LedgerError):
    """A write kept conflicting with concurrent writes to the same resource."""


class UnknownMembers(LedgerError):
    """A group's new members include ids that are no users of its organization."""
