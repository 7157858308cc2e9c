"""The console's Audit trail page over HTTP, on both databases: filters, keyset paging, the
CSV and JSON Lines exports, and the hash chain's verification run from the page (issue 17)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time

from scimledger.http.services import Services
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.projections import audit
from tests.conftest import issue
from tests.e2e.console import ORIGIN, RITA, sign_in
from tests.scim import Client


def rows(page: str) -> list[tuple[str, str]]:
    """(action, subject) of each entry shown, in order."""
    found = re.findall(
        r'<td class="action"><code>([^<]*)</code></td>\s*<td class="subject">[^:<]*: '
        r"(?:<a href=\"[^\"]*\">)?([^<]*)",
        page,
    )
    return [(action, html.unescape(subject)) for action, subject in found]


def create(services: Services, *names: str, actor: str = "hr-sync", org: str = "acme") -> None:
    """Users created by an operator named `actor`, a few milliseconds apart."""
    org_id = services.ledger.organization_id(org)
    assert org_id is not None
    context = CommandContext(
        org_id, Actor(kind="operator", id=f"op-{actor}", name=actor), RequestInfo("r-1")
    )
    for name in names:
        services.ledger.create_user(context, NewUser(attributes={"userName": name}))
        time.sleep(0.005)  # distinct timestamps (milliseconds) for the time window


def created(*names: str) -> list[tuple[str, str]]:
    return [("user.created", name) for name in names]


def test_each_filter_narrows_the_entries(console: Client, services: Services) -> None:
    sign_in(console, services)
    create(services, "alice@acme.example")
    create(services, "bob@acme.example", actor="tester")
    by_action = console.get("/console/audit", params={"action": "user.created"})
    assert rows(by_action.text) == created("alice@acme.example", "bob@acme.example")
    by_actor = console.get("/console/audit", params={"actor": "tester"})
    assert rows(by_actor.text) == created("bob@acme.example")
    by_subject = console.get("/console/audit", params={"subject": "ALICE@acme.example"})
    assert rows(by_subject.text) == created("alice@acme.example")


def test_a_time_window_keeps_the_entries_within_it(console: Client, services: Services) -> None:
    sign_in(console, services)
    create(services, "alice@acme.example", "bob@acme.example", "carol@acme.example")
    services.audit.catch_up()
    with services.sql.transaction(commit=False) as cursor:
        times = {
            item["subject_name"]: item["occurred_at"].rstrip("Z")
            for item in audit.page(cursor, audit.AuditQuery(actions=("user.created",)), 10)
        }
    window = {"since": times["bob@acme.example"], "until": times["carol@acme.example"]}
    page = console.get("/console/audit", params=window)
    assert rows(page.text) == created("bob@acme.example")
    long_ago = console.get("/console/audit", params={"until": "2000-01-01T00:00"})
    assert rows(long_ago.text) == []
    assert "No entry matches these filters" in long_ago.text


def test_another_organizations_entries_never_appear(console: Client, services: Services) -> None:
    sign_in(console, services)
    issue(services.ledger, org="globex")
    create(services, "spy@globex.example", org="globex")
    create(services, "alice@acme.example")
    assert rows(console.get("/console/audit", params={"action": "user.created"}).text) == created(
        "alice@acme.example"
    )
    everything = console.get("/console/audit").text
    assert "globex" not in everything
    assert rows(console.get("/console/audit", params={"subject": "spy@globex.example"}).text) == []


def test_paging_shows_every_entry_once(console: Client, services: Services) -> None:
    sign_in(console, services)
    names = [f"user{n:02}@acme.example" for n in range(60)]
    create(services, *names)
    first = console.get("/console/audit", params={"action": "user.created"}).text
    following = re.search(r'<a class="button secondary" href="([^"]*)" rel="next">Next</a>', first)
    assert following is not None
    second = console.get(html.unescape(following.group(1))).text
    assert rows(first) == created(*names[:50])
    assert rows(second) == created(*names[50:])
    assert 'rel="next"' not in second


def test_the_csv_export_has_the_header_and_neutralizes_formulas(
    console: Client, services: Services
) -> None:
    sign_in(console, services)
    create(services, "=1+2", "alice@acme.example")
    exported = console.get("/console/audit/export.csv", params={"action": "user.created"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="audit.csv"'
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0] == list(audit.COLUMNS)
    subject = audit.COLUMNS.index("subject_name")
    assert [row[subject] for row in table[1:]] == ["'=1+2", "alice@acme.example"]


def test_the_json_lines_export_has_one_entry_a_line(console: Client, services: Services) -> None:
    sign_in(console, services, RITA)  # a reviewer exports too
    create(services, "alice@acme.example")
    exported = console.get("/console/audit/export.jsonl", params={"subject": "alice@acme.example"})
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == 'attachment; filename="audit.jsonl"'
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert len(lines) == 1
    entry = lines[0]
    assert set(entry) == set(audit.COLUMNS)
    assert {key: entry[key] for key in ("actor_kind", "actor_name", "action", "subject_type")} == {
        "actor_kind": "operator",
        "actor_name": "hr-sync",
        "action": "user.created",
        "subject_type": "User",
    }
    assert entry["subject_name"] == "alice@acme.example"
    assert entry["changes"] == {
        "userName": {"before": None, "after": "alice@acme.example"},
        "active": {"before": None, "after": True},
    }


def test_a_bad_date_is_a_400_that_says_which(console: Client, services: Services) -> None:
    sign_in(console, services)
    refused = console.get("/console/audit", params={"since": "yesterday"})
    assert refused.status_code == 400
    assert "since: 'yesterday' is not an ISO date or date-time" in html.unescape(refused.text)
    exported = console.get("/console/audit/export.csv", params={"until": "2026-13-01"})
    assert exported.status_code == 400


def test_a_script_in_a_user_name_is_shown_as_text(console: Client, services: Services) -> None:
    sign_in(console, services)
    create(services, "<script>alert(1)</script>")
    page = console.get("/console/audit", params={"action": "user.created"}).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert rows(page) == created("<script>alert(1)</script>")


def test_an_admin_verifies_the_chain_and_the_page_shows_ok(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    create(services, "alice@acme.example")
    assert "Not verified since the server started" in console.get("/console/audit").text
    events = services.ledger.recorder.max_notification_id()
    started = console.post(
        "/console/audit/verify", data={"csrf": csrf}, headers=ORIGIN, follow_redirects=False
    )
    assert (started.status_code, started.headers["location"]) == (
        303,
        "/console/audit#verification",
    )
    deadline = time.monotonic() + 30
    page = console.get("/console/audit").text
    while "<strong>Verifying:</strong>" in page and time.monotonic() < deadline:
        time.sleep(0.05)
        page = console.get("/console/audit").text
    assert f"<strong>OK:</strong> {events} events verified; head at position {events}." in page


def test_a_reviewer_cannot_start_a_verification(console: Client, services: Services) -> None:
    csrf = sign_in(console, services, RITA)
    refused = console.post(
        "/console/audit/verify", data={"csrf": csrf}, headers=ORIGIN, follow_redirects=False
    )
    assert refused.status_code == 403
    page = console.get("/console/audit").text
    assert "Not verified since the server started" in page
    assert "Verify now" not in page
