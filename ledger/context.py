"""Who did something and through which request: recorded on every event.

This is the audit trail's raw material. It is data on the event, never a log line, and it
never holds a secret.
"""

from __future__ import annotations

import getpass
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

# The id of the HTTP request being handled, if any: set by http/envelope.py, put on every log
# line written meanwhile (scripts/logs.py). Worker threads inherit it.
REQUEST_ID: ContextVar[str | None] = ContextVar("scimledger_request_id", default=None)

ActorKind = Literal["token", "operator", "person"]
# What a person signed in to the console may do: admins change things, reviewers (compliance)
# only read.
Role = Literal["admin", "reviewer"]


@dataclass(frozen=True)
class Actor:
    """The principal behind a command.

    For a SCIM request, the token (its id and name) and who issued that token. For the
    operator CLI, the command and the operating-system user who ran it. For the console, the
    person: their session's id, their email and their role.
    """

    kind: ActorKind
    id: str
    name: str
    issued_by: str | None = None
    role: Role | None = None  # a person's (issue 17); stored only when set

    @classmethod
    def operator(cls, command: str) -> Actor:
        return cls(kind="operator", id=command, name=_os_user())

    @classmethod
    def person(cls, session_id: UUID, email: str, role: Role) -> Actor:
        return cls(kind="person", id=session_id.hex, name=email, role=role)


@dataclass(frozen=True)
class RequestInfo:
    """The request a command came from (empty for operator commands)."""

    request_id: str
    client_address: str | None = None
    user_agent: str | None = None

    @classmethod
    def local(cls) -> RequestInfo:
        return cls(request_id=uuid.uuid4().hex)


@dataclass(frozen=True)
class CommandContext:
    """The organization a command acts in, who acts, and through which request."""

    org_id: UUID
    actor: Actor
    request: RequestInfo


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "unknown"
