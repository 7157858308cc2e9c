"""The admin API's erasure of a person: POST /admin/v1/users/{id}/erase.

For tokens with the `admin` scope, in the token's own organization (another organization's
users answer 404). The body: {"reason": "...", "force": false}. A deleted or deactivated user
is erased (deleted first if need be); an active one only with `force`, else 409. Erasing an
erased user again changes nothing (200). What erasure does: ledger.keys, the README's
"Erasure".
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, post
from litestar.params import FromPath, JSONBody

from scimledger.http.errors import ScimError
from scimledger.http.inputs import resource_id
from scimledger.http.responses import json_response
from scimledger.http.services import Injected, Services
from scimledger.ledger.context import CommandContext


class EraseRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: str  # why, kept in clear for ever: a request's reference or a policy, never who
    force: bool = False  # erase an active user too


@post("/users/{user_id:str}/erase", sync_to_thread=True, status_code=200)
def erase_org_user(
    user_id: FromPath[str],
    data: JSONBody[EraseRequest],
    services: Injected[Services],
    context: Injected[CommandContext],
) -> Response[bytes]:
    """Erase a user's personal data: their data key is destroyed, their events read
    `[erased]`, their audit entries keep their structure with `[erased]` values."""
    parsed = resource_id(user_id)
    if parsed is None:
        raise ScimError(404, "No such user")
    written = services.ledger.erase_user(context, parsed, data.reason, force=data.force)
    body: dict[str, Any] = {"id": str(parsed), "erased": True}
    body["changed"] = written.position is not None
    return json_response(body)


ROUTES = [erase_org_user]
