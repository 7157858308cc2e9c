"""The console's Admins and reviewers page over HTTP, on both databases: who may sign in and
in which role, removing them, and the departed-issuer policy (issue 17)."""

from __future__ import annotations

import html
import re

from scimledger.http.services import Services
from tests.e2e.console import ADA, ORIGIN, RITA, sign_in
from tests.scim import Client


def rows(page: str) -> list[tuple[str, str]]:
    """(email, role) of each person listed."""
    return [
        (html.unescape(email), role)
        for email, role in re.findall(r"<tr>\s*<td>([^<]*)</td>\s*<td>(admin|reviewer)</td>", page)
    ]


def test_an_admin_adds_a_reviewer_and_removes_them(console: Client, services: Services) -> None:
    csrf = sign_in(console, services)
    page = console.get("/console/admins").text
    assert rows(page) == [(ADA, "admin"), (RITA, "reviewer")]
    added = console.post(
        "/console/admins",
        data={"csrf": csrf, "email": "Bob@ACME.example", "role": "reviewer"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert (added.status_code, added.headers["location"]) == (303, "/console/admins")
    assert rows(console.get("/console/admins").text)[-1] == ("bob@acme.example", "reviewer")
    confirm = console.get("/console/admins/remove", params={"email": "bob@acme.example"})
    assert "Remove bob@acme.example?" in confirm.text
    removed = console.post(
        "/console/admins/remove",
        data={"csrf": csrf, "email": "bob@acme.example"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert services.ledger.reviewers("acme") == [RITA]
    person = services.ledger.organization("acme")
    assert "bob@acme.example" in person.departed


def test_a_bad_email_or_role_is_shown_and_changes_nothing(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    for data, problem in (
        ({"email": "not an email", "role": "admin"}, "'not an email' is not an email address"),
        ({"email": "eve@acme.example", "role": "owner"}, "choose admin or reviewer"),
    ):
        refused = console.post("/console/admins", data={"csrf": csrf, **data}, headers=ORIGIN)
        assert refused.status_code == 400
        assert problem in html.unescape(refused.text)
    assert (services.ledger.admins("acme"), services.ledger.reviewers("acme")) == ([ADA], [RITA])


def test_the_departed_policy_is_set_from_the_page(console: Client, services: Services) -> None:
    csrf = sign_in(console, services)
    changed = console.post(
        "/console/admins/policy",
        data={"csrf": csrf, "policy": "revoke-after", "grace": "24h"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert changed.status_code == 303
    settings = services.ledger.settings("acme")
    assert (settings["departed_policy"], settings["departed_grace_seconds"]) == (
        "revoke-after",
        86400,
    )
    page = console.get("/console/admins").text
    assert '<option value="24h" selected>' in page
    bad = console.post(
        "/console/admins/policy",
        data={"csrf": csrf, "policy": "panic", "grace": "24h"},
        headers=ORIGIN,
    )
    assert bad.status_code == 400
    assert services.ledger.settings("acme")["departed_policy"] == "revoke-after"


def test_a_reviewer_sees_the_people_and_changes_nothing(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services, RITA)
    page = console.get("/console/admins").text
    assert rows(page) == [(ADA, "admin"), (RITA, "reviewer")]
    assert '<form method="post" action="/console/admins"' not in page
    assert "kept working, shown as issuer departed" in page
    for path, data in (
        ("/console/admins", {"email": "eve@acme.example", "role": "admin"}),
        ("/console/admins/remove", {"email": ADA}),
        ("/console/admins/policy", {"policy": "revoke-after", "grace": "0"}),
    ):
        refused = console.post(path, data={"csrf": csrf, **data}, headers=ORIGIN)
        assert refused.status_code == 403
    assert console.get("/console/admins/remove", params={"email": ADA}).status_code == 403
    assert (services.ledger.admins("acme"), services.ledger.reviewers("acme")) == ([ADA], [RITA])


def test_an_email_with_markup_is_shown_as_text(console: Client, services: Services) -> None:
    csrf = sign_in(console, services)
    hostile = '"><script>alert(1)</script>@acme.example'
    console.post(
        "/console/admins",
        data={"csrf": csrf, "email": hostile, "role": "reviewer"},
        headers=ORIGIN,
    )
    page = console.get("/console/admins").text
    assert "<script>alert(1)" not in page
    assert (hostile.lower(), "reviewer") in rows(page)
