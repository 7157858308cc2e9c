"""`scimledger schemas` from a terminal, against a running server: a declaration counts on
the server at once (another process wrote it), scim2-client's strict validation accepts the
resources by the server's own discovery, and a removal is refused while values exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Resource

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.errors import ValueTaken
from scimledger.projections import scim
from scimledger.projections.sql import SQL
from tests.e2e.conftest import Server, call, cli, cli_in_process, issue_token
from tests.integration.test_ledger import context_for
from tests.scim import CORE_USER

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
SCHEMA: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": ACME,
    "name": "AcmeUser",
    "description": "Acme's custom attributes",
    "attributes": [
        {"name": "costCenter", "type": "string"},
        {"name": "seats", "type": "integer"},
        {"name": "role", "canonicalValues": ["admin", "member"]},
    ],
}


def schema_file(tmp_path: Path, document: Any, name: str = "schema.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_declared_on_the_command_line_provisioned_through_a_running_server(
    server: Server, tmp_path: Path
) -> None:
    token = issue_token(server.database)["token"]
    refused = call(server, "POST", "/Users", token, {"userName": "ada", ACME: {"seats": 3}})
    assert refused.status == 400

    added = cli("schemas", "add", "--org", "acme", "--file", schema_file(tmp_path, SCHEMA),
                database=server.database)  # fmt: skip
    assert (added.returncode, added.stderr) == (0, "")
    assert added.stdout == f"declared {ACME} for Users (3 attributes, optional)\n"

    # The server learnt of it from another process, in time for the next request.
    headers = {"Authorization": f"Bearer {token}"}
    with Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        scim = SyncSCIMClient(http)  # validates every response against the discovery
        scim.discover()
        user_model = scim.get_resource_model("User")
        assert user_model is not None
        body: dict[str, Any] = {"schemas": [CORE_USER, ACME], "userName": "ada"}
        body[ACME] = {"costCenter": "42", "seats": 3, "role": "admin"}
        created = scim.create(user_model, body)
        assert isinstance(created, Resource)
        user_id = str(created.id)
        got = scim.query(user_model, user_id)
        assert isinstance(got, Resource)
    assert got.model_dump()[ACME] == {"costCenter": "42", "seats": 3, "role": "admin"}

    listed = cli("schemas", "list", "--org", "acme", database=server.database)
    assert listed.stdout.splitlines() == [
        "schema                                                resource_type  required  attributes",
        f"{ACME}  User           False     costCenter, seats, role",
    ]

    kept = cli("schemas", "remove", ACME, "--org", "acme", database=server.database)
    assert kept.returncode == 1
    assert kept.stderr == (
        f"scimledger: error: 1 resource(s) hold values of {ACME}: remove it with force to"
        " stop returning them (they stay in the ledger's events)\n"
    )
    removed = cli("schemas", "remove", ACME, "--org", "acme", "--force", database=server.database)
    assert removed.stdout == f"removed {ACME}: its values are no longer accepted or returned\n"
    after = call(server, "GET", f"/Users/{user_id}", token)
    assert after.status == 200
    assert ACME not in after.body


@pytest.mark.sqlite_only  # the command's own checks: no database involved in them
def test_a_document_that_cannot_be_declared_is_refused_with_its_reason(
    database_url: str, tmp_path: Path
) -> None:
    issue_token(database_url)
    bad = {**SCHEMA, "attributes": [{"name": "cost center"}]}

    refused = cli_in_process("schemas", "add", "--org", "acme", "--file",
                             schema_file(tmp_path, bad), database=database_url)  # fmt: skip
    not_json = tmp_path / "not.json"
    not_json.write_text("{'id': 1}")
    unreadable = cli_in_process("schemas", "add", "--org", "acme", "--file", str(not_json),
                                database=database_url)  # fmt: skip
    hostile = {**SCHEMA, "description": "\x1b[2J\x1b[31mowned"}
    escaped = cli_in_process("schemas", "add", "--org", "acme", "--file",
                             schema_file(tmp_path, hostile), database=database_url)  # fmt: skip
    missing = cli_in_process("schemas", "show", "urn:nothing:User", "--org", "acme",
                             database=database_url)  # fmt: skip

    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        "scimledger: error: attributes[0].name must be a letter then letters, digits, '-' or"
        " '_' (at most 64 characters)\n"
    )
    assert unreadable.returncode == 2
    assert unreadable.stderr.startswith(f"scimledger: error: {not_json} is not JSON:")
    assert escaped.stderr == (
        "scimledger: error: description must be printable text of at most 1000 characters\n"
    )
    assert (missing.returncode, missing.stderr) == (
        1,
        "scimledger: error: no extension schema urn:nothing:User is declared\n",
    )


@pytest.mark.sqlite_only
def test_show_prints_the_declaration_as_discovery_describes_it(
    database_url: str, tmp_path: Path
) -> None:
    issue_token(database_url)
    cli_in_process("schemas", "add", "--org", "acme", "--file", schema_file(tmp_path, SCHEMA),
                   "--required", database=database_url)  # fmt: skip
    again = cli_in_process("schemas", "add", "--org", "acme", "--file",
                           schema_file(tmp_path, SCHEMA), "--required",
                           database=database_url)  # fmt: skip

    shown = cli_in_process("schemas", "show", ACME.lower(), "--org", "acme",
                           database=database_url)  # fmt: skip

    assert again.stdout == f"unchanged: {ACME} for Users (3 attributes, required)\n"
    described = json.loads(shown.stdout)
    assert {k: described[k] for k in ("resourceType", "required", "id", "name")} == {
        "resourceType": "User",
        "required": True,
        "id": ACME,
        "name": "AcmeUser",
    }
    assert described["attributes"][2]["canonicalValues"] == ["admin", "member"]


@pytest.mark.sqlite_only
def test_uniqueness_is_declared_on_a_database_whose_read_model_is_of_an_older_version(
    database_url: str, tmp_path: Path
) -> None:
    """After an upgrade, before any server started: the command sets the read model up
    and catches it up itself, then claims the values users hold."""
    issue_token(database_url)
    plain = {"id": ACME, "attributes": [{"name": "costCenter"}]}
    cli_in_process("schemas", "add", "--org", "acme", "--file", schema_file(tmp_path, plain),
                   database=database_url)  # fmt: skip
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        context = context_for(ledger)
        for name, value in (("ada", "CC-1"), ("bob", "CC-2")):
            ledger.create_user(context, NewUser({"userName": name, ACME: {"costCenter": value}}))
        # As a version before left it: tracked under its own name, and tables of its shape
        # (here: without the rows this version reads).
        with SQL(ledger).transaction(commit=True) as cursor:
            cursor.execute(
                "UPDATE projection_tracking SET name = 'scim_read_model_v0' WHERE name = ?",
                (scim.NAME,),
            )
            cursor.execute(f"DELETE FROM {scim.TABLES.users}")
    finally:
        ledger.close()
    unique = {"id": ACME, "attributes": [{"name": "costCenter", "uniqueness": "server"}]}

    added = cli_in_process("schemas", "add", "--org", "acme", "--file",
                           schema_file(tmp_path, unique, "unique.json"),
                           database=database_url)  # fmt: skip

    assert (added.returncode, added.stderr) == (0, "")
    ledger = Ledger(DatabaseURL.parse(database_url))
    try:
        with pytest.raises(ValueTaken):
            ledger.create_user(
                context_for(ledger), NewUser({"userName": "cy", ACME: {"costCenter": "cc-2"}})
            )
    finally:
        ledger.close()
