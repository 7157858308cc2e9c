"""SCIM errors (RFC 7644 section 3.12) and the one place exceptions become responses."""

from __future__ import annotations

import logging
from typing import Any, Literal

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from scimledger.http.responses import ERROR_SCHEMA, scim_response
from scimledger.ledger import availability
from scimledger.ledger.errors import (
    ConcurrentModification,
    GroupNameTaken,
    GroupNotFound,
    LedgerError,
    SchemaInUse,
    SchemaNotFound,
    TokenNotFound,
    UnknownMembers,
    UserIsActive,
    UserNameTaken,
    UserNotFound,
    UserWasErased,
    ValueTaken,
)
from scimledger.projections.filters import FilterError
from scimledger.projections.sql import StatementRefused
from scimledger.projections.sql_filters import SortError

log = logging.getLogger(__name__)

RETRY_AFTER = "2"  # seconds, for a 503


# RFC 7644 section 3.12: what kind of 400 (or 409) an error is.
ScimType = Literal[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
]


class ScimError(Exception):
    """An error a SCIM client is told about: HTTP status, optional scimType, detail."""

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: ScimType | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def error_body(status: int, detail: str, scim_type: ScimType | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return body


def to_scim_error(exc: Exception) -> ScimError:
    """Maps any exception to the SCIM error a client sees."""
    if isinstance(exc, ScimError):
        return exc
    if isinstance(exc, UserNotFound | GroupNotFound):
        return ScimError(404, "Resource not found")
    if isinstance(exc, UserIsActive | SchemaInUse):
        return ScimError(409, str(exc))
    if isinstance(exc, SchemaNotFound):
        return ScimError(404, str(exc))
    if isinstance(exc, UserWasErased):
        return ScimError(410, str(exc))
    if isinstance(exc, UserNameTaken | GroupNameTaken | ValueTaken):
        return ScimError(409, str(exc), "uniqueness")
    if isinstance(exc, FilterError):
        return ScimError(400, f"Invalid filter: {exc}", "invalidFilter")
    if isinstance(exc, StatementRefused):  # 400, not 503: retrying the same cannot help
        return ScimError(400, "Invalid filter: too complex for the database", "invalidFilter")
    if isinstance(exc, SortError):
        return ScimError(400, f"Invalid sortBy: {exc}", "invalidValue")
    if isinstance(exc, UnknownMembers):
        return invalid_value(str(exc))
    if isinstance(exc, TokenNotFound):
        return ScimError(404, "No such token")
    if isinstance(exc, ConcurrentModification):
        return ScimError(409, str(exc))
    if availability.unavailable(exc):
        return ScimError(
            503,
            "The database is unavailable or busy; retry later",
            headers={"Retry-After": RETRY_AFTER},
        )
    if isinstance(exc, TimeoutError):  # a read model did not catch up in time
        return ScimError(
            503, "The server is behind; retry later", headers={"Retry-After": RETRY_AFTER}
        )
    if isinstance(exc, LedgerError):  # a request the ledger refused: bad input
        return ScimError(400, str(exc))
    if isinstance(exc, ValidationException):
        problems = "; ".join(
            f"{item.get('key') or 'body'}: {item.get('message')}"
            for item in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(item, dict)
        )
        return ScimError(400, f"Invalid request body: {problems}" if problems else exc.detail)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        detail = {
            404: "Resource not found",
            405: "Method not allowed on this resource",
            413: "Request body too large",
            415: "Unsupported media type",
        }.get(status, exc.detail if status < 500 else "internal error")
        return ScimError(status, detail, headers=dict(exc.headers or {}))
    return ScimError(HTTP_500_INTERNAL_SERVER_ERROR, "internal error")


def reported(request: Request[Any, Any, Any], exc: Exception) -> ScimError:
    """What a client of either API is told of `exc`: the one place an unexpected failure
    (500) is logged with its traceback, and an outage (503) with its cause. The line carries
    the request's id (http.envelope)."""
    error = to_scim_error(exc)
    route = request.scope.get("path_template")
    if error.status == 503:
        log.warning("503 on %s: %s", route, availability.describe(exc))
    elif error.status >= 500:
        log.error("internal error on %s %s", request.method, route, exc_info=exc)
    return error


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The SCIM API's answer to any exception (RFC 7644 section 3.12)."""
    error = reported(request, exc)
    return scim_response(
        error_body(error.status, error.detail, error.scim_type),
        status=error.status,
        headers=error.headers,
    )
