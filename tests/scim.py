"""What the tests share about SCIM: the typed test client and the URNs.

The URNs are written here as RFC 7643 and 7644 give them, not imported from production: a
test that took them from the code under test could not catch a wrong one there."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

Client = TestClient[Litestar]

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def patch_op(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp request body of `operations`."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
