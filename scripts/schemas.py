"""`scimledger schemas`: the extension schemas an organization declares, so that the custom
attributes an identity provider maps (Okta's profile editor, Entra's attribute mappings) are
kept, validated, filtered and audited instead of refused (ledger.schemas)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.schemas import MAX_DOCUMENT_BYTES, RESOURCE_TYPES, declaration_view
from scimledger.projections.runner import Runner
from scimledger.projections.scim import extension_holders, extension_values_counter
from scimledger.projections.scim_projection import ScimProjection
from scimledger.projections.sql import SQL
from scimledger.scripts import output
from scimledger.scripts.command import Commands, UsageError, family, opened, runs


def _document(path: str) -> Any:
    """The schema document in the file `path` (JSON, bounded in size)."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(4 * MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > 4 * MAX_DOCUMENT_BYTES:
        raise UsageError(f"{path} is too large for a schema document")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None


def _read_model(ledger: Ledger) -> SQL:
    """The SCIM read model brought up to the end of the log, and set up first if this
    version has none yet (after an upgrade, before any server started): declaring
    uniqueness and removing an extension read the values users hold from it."""
    Runner(ledger, ScimProjection()).run_once()
    return SQL(ledger)


def add(args: argparse.Namespace) -> int:
    document = _document(args.file)
    with opened(args) as ledger:
        urn, changed = ledger.declare_schema(
            args.org,
            document,
            Actor.operator("scimledger schemas add"),
            RequestInfo.local(),
            extension_holders(_read_model(ledger)),
            resource_type=args.resource_type,
            required=args.required,
        )
        declaration = ledger.organization(args.org).extensions[urn]
    attributes = len(declaration["document"]["attributes"])
    print(
        f"{'declared' if changed else 'unchanged:'} {urn} for {declaration['resource_type']}s"
        f" ({attributes} attribute{'s' if attributes != 1 else ''},"
        f" {'required' if declaration['required'] else 'optional'})"
    )
    return 0


def list_schemas(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        declared = ledger.organization(args.org).extensions
    rows = [
        {
            "schema": urn,
            "resource_type": declaration["resource_type"],
            "required": declaration["required"],
            "attributes": ", ".join(a["name"] for a in declaration["document"]["attributes"]),
        }
        for urn, declaration in declared.items()
    ]
    output.write(rows, ("schema", "resource_type", "required", "attributes"), args.format)
    return 0


def show(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        declaration = ledger.organization(args.org).declaration(args.schema)
    output.print_json(declaration_view(declaration))
    return 0


def remove(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        urn = ledger.remove_schema(
            args.org,
            args.schema,
            extension_values_counter(_read_model(ledger)),
            Actor.operator("scimledger schemas remove"),
            RequestInfo.local(),
            force=args.force,
        )
    print(f"removed {urn}: its values are no longer accepted or returned")
    return 0


def add_commands(commands: Commands) -> None:
    actions = family(commands, "schemas", "extension schemas: custom attributes")
    parser = actions.add_parser(
        "add",
        help="declare an extension schema (RFC 7643 section 7 JSON), or change its declaration",
    )
    parser.add_argument("--org", required=True)
    parser.add_argument("--file", required=True, metavar="FILE", help="the schema document")
    parser.add_argument(
        "--resource-type",
        choices=RESOURCE_TYPES,
        help="the resource type it extends (default: the URN's last part, User or Group)",
    )
    parser.add_argument(
        "--required",
        action="store_true",
        help="every resource of the type must carry it (refused without)",
    )
    runs(parser, add)

    parser = actions.add_parser("list", help="the extension schemas an organization declared")
    parser.add_argument("--org", required=True)
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, list_schemas)

    parser = actions.add_parser("show", help="one declared extension schema, in full")
    parser.add_argument("schema", metavar="URN")
    parser.add_argument("--org", required=True)
    runs(parser, show)

    parser = actions.add_parser(
        "remove",
        help="stop accepting and returning an extension's values (kept in the events)",
    )
    parser.add_argument("schema", metavar="URN")
    parser.add_argument("--org", required=True)
    parser.add_argument(
        "--force", action="store_true", help="remove it even though users hold values of it"
    )
    runs(parser, remove)
