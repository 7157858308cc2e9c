"""The admin API for an organization's tokens and admins: /admin/v1/tokens, /admin/v1/admins.

For tokens with the `admin` scope only, acting in the token's own organization; another
organization's tokens answer 404. Errors have the admin API's one shape (see admin.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from scimledger.http.errors import ScimError
from scimledger.http.responses import json_response
from scimledger.http.services import Injected, Services
from scimledger.ledger.context import CommandContext, Role
from scimledger.ledger.errors import InvalidEmail, NotAnAdmin
from scimledger.ledger.tokens import SCOPES, parse_expiry, parse_grace
from scimledger.projections.tokens import list_tokens


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A token to issue."""

    name: str
    expires: str = "never"  # never, a number of days such as 30d, or an ISO date
    scopes: list[str] = msgspec.field(default_factory=lambda: ["scim"])
    by: str | None = None  # the admin it is issued for


class RotateRequest(msgspec.Struct, forbid_unknown_fields=True):
    """How to rotate a token."""

    grace: str = "24h"  # how long the old token keeps working: e.g. 24h, 30m, 7d, 0
    by: str | None = None  # the admin the successor is issued for


class AdminRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    role: Role = "admin"  # or reviewer: reads in the console, changes nothing


class SettingsRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Settings to change; those left out stay as they are."""

    departed_policy: str | msgspec.UnsetType = msgspec.UNSET  # warn or revoke-after
    departed_grace_seconds: int | msgspec.UnsetType = msgspec.UNSET
    scim_base_url: str | msgspec.UnsetType | None = msgspec.UNSET
    # Users deleted longer ago than this are erased (ledger.retention); null: never.
    erase_deleted_after_seconds: int | msgspec.UnsetType | None = msgspec.UNSET


def _org_slug(services: Services, context: CommandContext) -> str:
    return services.ledger.organization_slug(context.org_id)


def _own_token(services: Services, context: CommandContext, token_id: str) -> UUID:
    try:
        parsed = UUID(token_id)
    except ValueError as exc:
        raise ScimError(404, "No such token") from exc
    token = services.ledger.token(parsed)
    if token is None or token.org_id != context.org_id:
        raise ScimError(404, "No such token")
    return parsed


@get("/tokens", sync_to_thread=True)
def list_org_tokens(
    services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """The organization's tokens with status and last use; never a secret."""
    services.tokens.catch_up()
    with services.sql.transaction(commit=False) as cursor:
        views = list_tokens(cursor, _org_slug(services, context), datetime.now(UTC))
    return json_response({"tokens": [view.as_dict() for view in views]})


@post("/tokens", sync_to_thread=True)
def issue_org_token(
    data: JSONBody[TokenRequest], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """Issue a token: {name, expires (never|30d|ISO date), scopes, by (admin email)};
    the answer holds the token, shown this once."""
    if not data.scopes or any(scope not in SCOPES for scope in data.scopes):
        raise ScimError(400, f"scopes must be a non-empty list of {', '.join(SCOPES)}")
    issued = services.ledger.issue_token(
        org=_org_slug(services, context),
        name=data.name,
        expires_at=parse_expiry(data.expires, datetime.now(UTC)),
        actor=context.actor,
        request=context.request,
        scopes=tuple(dict.fromkeys(data.scopes)),
        by=data.by,
    )
    return json_response(issued.as_dict(), status=201)


@post("/tokens/{token_id:str}/revoke", sync_to_thread=True, status_code=200)
def revoke_org_token(
    token_id: FromPath[str], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """Revoke a token at once."""
    parsed = _own_token(services, context, token_id)
    services.ledger.revoke_token(parsed, context.actor, context.request)
    return json_response({"id": str(parsed), "status": "revoked"})


@post("/tokens/{token_id:str}/rotate", sync_to_thread=True)
def rotate_org_token(
    token_id: FromPath[str],
    services: Injected[Services],
    context: Injected[CommandContext],
    data: JSONBody[RotateRequest | None] = None,
) -> Response[bytes]:
    """Issue a successor: {grace (e.g. 24h), by}; the old token works until the grace ends."""
    request = data or RotateRequest()
    issued = services.ledger.rotate_token(
        _own_token(services, context, token_id),
        grace=parse_grace(request.grace),
        actor=context.actor,
        request=context.request,
        now=datetime.now(UTC),
        by=request.by,
    )
    return json_response(issued.as_dict(), status=201)


@get("/admins", sync_to_thread=True)
def list_admins(services: Injected[Services], context: Injected[CommandContext]) -> Response[bytes]:
    """The organization's admins and reviewers."""
    return json_response(_people(services, _org_slug(services, context)))


def _people(services: Services, org: str) -> dict[str, list[str]]:
    return {"admins": services.ledger.admins(org), "reviewers": services.ledger.reviewers(org)}


@post("/admins", sync_to_thread=True)
def add_admin(
    data: JSONBody[AdminRequest], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """Make {email} an admin, or with {role: reviewer} a reviewer."""
    org = _org_slug(services, context)
    services.ledger.add_admin(org, data.email, context.actor, context.request, role=data.role)
    return json_response(_people(services, org), status=201)


@delete("/admins/{email:str}", sync_to_thread=True, status_code=204)
def remove_admin(
    email: FromPath[str], services: Injected[Services], context: Injected[CommandContext]
) -> None:
    """Remove an admin: the tokens issued for them are flagged issuer departed."""
    org = _org_slug(services, context)
    try:
        services.ledger.remove_admin(org, email, context.actor, context.request)
    except (NotAnAdmin, InvalidEmail) as exc:
        raise ScimError(404, str(exc)) from exc


@get("/settings", sync_to_thread=True)
def get_settings(
    services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """The organization's settings: departed_policy, departed_grace_seconds, scim_base_url."""
    return json_response(services.ledger.settings(_org_slug(services, context)))


@patch("/settings", sync_to_thread=True)
def change_settings(
    data: JSONBody[SettingsRequest], services: Injected[Services], context: Injected[CommandContext]
) -> Response[bytes]:
    """Change some of the settings; answers all of them."""
    settings = services.ledger.change_settings(
        _org_slug(services, context), msgspec.to_builtins(data), context.actor, context.request
    )
    return json_response(settings)


ROUTES = [
    list_org_tokens,
    issue_org_token,
    revoke_org_token,
    rotate_org_token,
    list_admins,
    add_admin,
    remove_admin,
    get_settings,
    change_settings,
]
