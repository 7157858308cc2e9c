"""SCIM PATCH requests (RFC 7644 section 3.5.2): the PatchOp body and its operations.

What an operation does depends on the resource: see `user_patch` and `group_patch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scimledger.http.errors import ScimError, invalid_value
from scimledger.http.responses import PATCH_OP

MAX_OPERATIONS = 1000


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


@dataclass(frozen=True)
class Operation:
    index: int
    op: str  # add, replace or remove: lower-cased (Microsoft Entra ID sends "Replace")
    path: str | None
    value: Any
    has_value: bool

    def required_path(self) -> str:
        """The path of a remove, which cannot go without one."""
        if not self.path:
            raise ScimError(400, f"Operations[{self.index}]: remove needs a path", "noTarget")
        return self.path

    def object_value(self) -> dict[str, Any]:
        """The value of an add or replace without a path: an object of attributes."""
        if not isinstance(self.value, dict):
            raise invalid_value(
                f"Operations[{self.index}]: {self.op} without a path needs an object value"
            )
        return self.value


def _field(operation: dict[str, Any], name: str) -> Any:
    return next((v for k, v in operation.items() if k.lower() == name), None)


def parse_operations(body: Any) -> list[Operation]:
    """The operations of a PatchOp body; raises ScimError if the body is not one."""
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object", "invalidSyntax")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP not in schemas:
        raise ScimError(400, f"A PATCH body must list the schema {PATCH_OP}", "invalidSyntax")
    operations = _field(body, "operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty array", "invalidSyntax")
    if len(operations) > MAX_OPERATIONS:
        raise ScimError(400, f"At most {MAX_OPERATIONS} operations per request", "invalidSyntax")
    return [_operation(index, operation) for index, operation in enumerate(operations)]


def _operation(index: int, operation: Any) -> Operation:
    if not isinstance(operation, dict):
        raise ScimError(400, "Each operation must be an object", "invalidSyntax")
    op = _field(operation, "op")
    if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
        raise ScimError(
            400, f"Operations[{index}].op must be add, replace or remove", "invalidSyntax"
        )
    path = _field(operation, "path")
    if path is not None and not isinstance(path, str):
        raise invalid_path(f"Operations[{index}].path must be a string")
    has_value = "value" in {k.lower() for k in operation}
    if op.lower() != "remove" and not has_value:
        raise invalid_value(f"Operations[{index}]: {op.lower()} needs a value")
    return Operation(
        index=index,
        op=op.lower(),
        path=path or None,
        value=_field(operation, "value"),
        has_value=has_value,
    )
