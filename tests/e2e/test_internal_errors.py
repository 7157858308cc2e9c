"""An unexpected failure answers 500 "internal error" and is logged once, with its traceback
and its request id, whichever API it happened in (http/errors.py: one function for both)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from scimledger.http import admin
from scimledger.http.services import Services
from scimledger.ledger.context import REQUEST_ID, Actor, RequestInfo
from scimledger.projections import scim
from tests.scim import Client

# Answered before any storage is read or written: the same on both databases.
pytestmark = pytest.mark.sqlite_only


class Captured(logging.Handler):
    """Records every ERROR line with the request id it was written under."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[tuple[str, str | None, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), REQUEST_ID.get(), record.exc_info is not None))


@pytest.fixture
def errors() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("scimledger")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _fail(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("boom")


def test_a_scim_500_is_logged_with_its_request_id(
    client: Client,
    errors: Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scim, "list_users", _fail)
    response = client.get("/scim/v2/Users", headers={"X-Request-Id": "scim-500"})
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error"
    assert errors.lines == [("internal error on GET /scim/v2/Users", "scim-500", True)]


def test_an_admin_500_is_logged_with_its_request_id(
    client: Client,
    services: Services,
    errors: Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reviewer = services.ledger.issue_token(
        org="acme",
        name="Reviewer",
        expires_at=None,
        actor=Actor(kind="operator", id="tests", name="tester"),
        request=RequestInfo(request_id="test"),
        scopes=("audit:read",),
    )
    monkeypatch.setattr(admin, "_page", _fail)
    response = client.get(
        "/admin/v1/audit",
        headers={"Authorization": f"Bearer {reviewer.token}", "X-Request-Id": "admin-500"},
    )
    assert response.status_code == 500
    assert response.json() == {"status": 500, "error": "internal_error", "detail": "internal error"}
    assert errors.lines == [("internal error on GET /admin/v1/audit", "admin-500", True)]
