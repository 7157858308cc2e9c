"""Values an attacker with a valid token provisions, read back where reviewers read them:
a spreadsheet (CSV over HTTP and from the CLI) and a terminal (the CLI's tables). The CLI
runs in this process (`cli_in_process`): what it prints is the subject, not its process."""

from __future__ import annotations

import csv
import io
import json

from scimledger.http.services import Services
from scimledger.ledger.context import Actor, RequestInfo
from tests.e2e.conftest import cli_in_process
from tests.scim import Client

FORMULA = '=HYPERLINK("http://evil.example","x")'
ESCAPES = "\x1b[2J\x1b[H#1 2026-01-01 user.deleted\n\x9b31m"
AGENT = "@SUM(1+1)*cmd|' /C calc'!A0"


def provision(client: Client, user_name: str) -> str:
    response = client.post(
        "/scim/v2/Users", json={"userName": user_name}, headers={"User-Agent": AGENT}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def reviewer(services: Services) -> dict[str, str]:
    issued = services.ledger.issue_token(
        org="acme",
        name="Reviewer",
        expires_at=None,
        actor=Actor(kind="operator", id="tests", name="tester"),
        request=RequestInfo(request_id="t"),
        scopes=("audit:read",),
    )
    return {"Authorization": f"Bearer {issued.token}"}


def test_the_audit_csv_over_http_neutralizes_formulas(
    client: Client,
    services: Services,
) -> None:
    user_id = provision(client, FORMULA)
    response = client.get(
        "/admin/v1/audit", params={"format": "csv", "subject": user_id}, headers=reviewer(services)
    )
    assert response.status_code == 200
    [row] = csv.DictReader(io.StringIO(response.text))
    assert (row["subject_name"], row["user_agent"]) == ("'" + FORMULA, "'" + AGENT)
    exact = client.get(
        "/admin/v1/audit", params={"subject": user_id}, headers=reviewer(services)
    ).json()
    [entry] = exact["entries"]
    assert (entry["subject_name"], entry["user_agent"]) == (FORMULA, AGENT)


def test_the_cli_neutralizes_formulas_in_csv_and_keeps_json_lines_exact(
    client: Client,
    services: Services,
) -> None:
    provision(client, FORMULA)
    url = services.ledger.database.url
    created = ("--action", "user.created")
    exported = cli_in_process("audit", "list", *created, "--format", "csv", database=url)
    assert exported.returncode == 0, exported.stderr
    [row] = csv.DictReader(io.StringIO(exported.stdout))
    assert (row["subject_name"], row["user_agent"]) == ("'" + FORMULA, "'" + AGENT)
    lines = cli_in_process("audit", "list", *created, "--format", "jsonl", database=url)
    [entry] = map(json.loads, lines.stdout.splitlines())
    assert (entry["subject_name"], entry["user_agent"]) == (FORMULA, AGENT)


def test_the_cli_tables_show_control_characters_escaped(
    client: Client,
    services: Services,
) -> None:
    provision(client, ESCAPES)
    url = services.ledger.database.url
    issued = cli_in_process(
        "tokens", "issue", "--org", "acme", "--name", ESCAPES, "--expires", "never", database=url
    )
    assert issued.returncode == 0, issued.stderr
    shown = "\\x1b[2J\\x1b[H#1 2026-01-01 user.deleted\\n\\x9b31m"
    for command in (["audit", "list"], ["tokens", "list"]):
        table = cli_in_process(*command, database=url)
        assert table.returncode == 0, table.stderr
        assert shown in table.stdout
        assert not any(c in table.stdout for c in "\x1b\x9b")
    listed = cli_in_process("tokens", "list", "--format", "csv", database=url)
    names = [row["name"] for row in csv.DictReader(io.StringIO(listed.stdout))]
    assert sorted(names) == sorted(["Okta", ESCAPES])
    entries = cli_in_process("audit", "list", "--format", "jsonl", database=url).stdout.splitlines()
    audit_lines = cli_in_process("audit", "list", database=url).stdout.splitlines()
    starts = [line.split(" ")[0] for line in audit_lines if line.startswith("#")]
    assert starts == [f"#{json.loads(entry)['position']}" for entry in entries]  # none forged
