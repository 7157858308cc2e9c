"""The console in a real browser: Debian's Chromium (/usr/bin/chromium) driven by Playwright,
against `scimledger serve` on both databases (issue 17).

The flows whose outcome depends on storage (a token generated and revoked, a removed admin's
session) run on both databases; the rest, whose storage side test_console.py covers on both,
in the browser on SQLite only. The tests share one server per database (and per xdist
worker), each in an organization of its own (`org`, `acme-` and a random suffix) and a
browser context of its own, so that no cookie, token, admin or audit entry of one test is
seen by another; the browser is launched once per worker. Without Chromium these tests
skip, saying so, except under CI=true, where they fail (.ci/run installs it). With
SCIMLEDGER_SCREENSHOTS=DIR they save the README's screenshots there.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor, RequestInfo, Role
from scimledger.ledger.database import DatabaseURL
from tests.conftest import skip_or_fail
from tests.e2e.conftest import Server, call, cli
from tests.e2e.oidc_provider import Provider
from tests.scim import patch_op

CHROMIUM = Path(os.environ.get("SCIMLEDGER_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = os.environ.get("SCIMLEDGER_SCREENSHOTS")
ADA = "ada@acme.example"
RITA = "rita@acme.example"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        skip_or_fail(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def dialogs() -> list[str]:
    """The messages of every dialog (alert, confirm) a page opened: none, ever."""
    return []


@pytest.fixture
def server(shared_server: Server) -> Server:
    return shared_server


@pytest.fixture
def page(browser: Browser, dialogs: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()

    def seen(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", seen)
    try:
        yield opened
    finally:
        context.close()


def origin(server: Server) -> str:
    return server.base_url.removesuffix("/scim/v2")


OPERATOR = Actor.operator("tests")


@contextmanager
def ledger_of(server: Server) -> Iterator[Ledger]:
    """The server's ledger, opened beside it (quicker than a CLI process for a test's setup;
    the first test goes through the CLI as an operator would)."""
    ledger = Ledger(DatabaseURL.parse(server.database))
    try:
        yield ledger
    finally:
        ledger.close()


def add(server: Server, org: str, email: str, role: Role = "admin") -> None:
    with ledger_of(server) as ledger:
        ledger.add_admin(org, email, OPERATOR, RequestInfo.local(), role=role)


def link(server: Server, org: str, email: str) -> str:
    with ledger_of(server) as ledger:
        presented, _ = ledger.issue_sign_in_link(org, email, OPERATOR, datetime.now(UTC))
    return f"{origin(server)}/console/sign-in/{presented}"


def link_from_the_cli(server: Server, org: str, email: str) -> str:
    result = cli("admins", "add", email, "--org", org, database=server.database)
    assert result.returncode == 0, result.stderr
    result = cli(
        "console",
        "link",
        "--org",
        org,
        "--admin",
        email,
        "--public-url",
        origin(server),
        database=server.database,
    )
    assert result.returncode == 0, result.stderr
    [url] = result.stdout.splitlines()  # the URL alone on stdout
    return url


def tokens(server: Server, org: str) -> list[tuple[str, bool]]:
    """The name and state of every token of `org` (the test's own: the server is shared)."""
    with ledger_of(server) as ledger:
        return [
            (token.name, token.revoked)
            for n in ledger.recorder.select_notifications(start=1, limit=100_000)
            if n.topic.endswith("Token.TokenIssued")
            and (token := ledger.token(UUID(str(n.originator_id)))) is not None
            and token.org_slug == org
        ]


def token_for(server: Server, name: str, org: str) -> str:
    """A token issued by an operator, beside the running server."""
    with ledger_of(server) as ledger:
        issued = ledger.issue_token(
            org=org, name=name, expires_at=None, actor=OPERATOR, request=RequestInfo.local()
        )
    return issued.token


def signed_in(page: Page, server: Server, org: str, email: str = ADA, role: Role = "admin") -> None:
    add(server, org, email, role)
    sign_in(page, server, link(server, org, email), email)


def sign_in(page: Page, server: Server, url: str, email: str) -> None:
    page.goto(url)
    page.get_by_role("button", name=f"Sign in as {email}").click()
    page.wait_for_url(f"{origin(server)}/console/setup")


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


@pytest.mark.sqlite_only  # in a browser; the pages' data on both in test_console*.py
def test_the_first_admin_signs_in_generates_a_token_uses_it_and_revokes_it(
    page: Page, server: Server, org: str
) -> None:
    sign_in(page, server, link_from_the_cli(server, org, ADA), ADA)
    p = page
    assert p.get_by_role("heading", level=1).inner_text() == "SCIM setup"
    base_url = p.get_by_label("SCIM connector base URL").input_value()
    assert base_url == server.base_url
    shot(page, "console-setup")

    p.get_by_role("link", name="Tokens").first.click()
    p.get_by_role("link", name="Generate token").click()
    p.get_by_label("Name").fill("Okta production")
    p.get_by_label("30 days").check()
    p.get_by_role("button", name="Generate token").click()
    token = p.get_by_label("The new token").input_value()
    assert re.fullmatch(r"scl_[0-9a-f]{32}_[A-Za-z0-9_-]{43}", token)
    assert "it is shown this once" in p.inner_text("main")
    shot(page, "console-token-shown")
    assert call(server, "GET", "/Users", token).status == 200

    p.get_by_role("link", name="Back to tokens").click()
    row = p.get_by_role("row").filter(has_text="Okta production")
    assert "active" in row.inner_text()
    assert token not in p.content()
    shot(page, "console-tokens")
    row.get_by_role("link", name="Revoke").click()
    p.get_by_role("button", name="Revoke token").click()
    p.wait_for_url(f"{origin(server)}/console/tokens")
    assert "revoked" in p.get_by_role("row").filter(has_text="Okta production").inner_text()
    assert call(server, "GET", "/Users", token).status == 401


@pytest.mark.sqlite_only  # the storage side: test_console.py, on both
def test_a_sign_in_link_works_once(browser: Browser, server: Server, org: str) -> None:
    add(server, org, ADA)
    url = link(server, org, ADA)
    first_context, second_context = browser.new_context(), browser.new_context()
    first = first_context.new_page()
    first.goto(url)
    first.get_by_role("button", name=f"Sign in as {ADA}").click()
    first.wait_for_url(f"{origin(server)}/console/setup")
    second = second_context.new_page()
    second.goto(url)
    assert "This sign-in link cannot be used" in second.inner_text("main")
    assert second.get_by_role("button").count() == 0
    first_context.close()  # the browser is shared: no session of this test outlives it
    second_context.close()


@pytest.mark.sqlite_only  # the storage side: test_console.py, on both
def test_a_reviewer_reads_tokens_and_reaches_no_change(
    page: Page, server: Server, org: str
) -> None:
    token_for(server, "Okta", org)
    signed_in(page, server, org, RITA, "reviewer")
    p = page
    p.get_by_role("link", name="Tokens").first.click()
    assert p.get_by_role("row").filter(has_text="Okta").count() == 1
    assert p.get_by_role("link", name="Generate token").count() == 0
    assert p.get_by_role("link", name="Revoke").count() == 0
    p.goto(f"{origin(server)}/console/tokens/new")
    assert "Only an admin of this organization can do this" in p.inner_text("main")


@pytest.mark.sqlite_only  # in a browser; the pages' data on both in test_console*.py
def test_a_removed_admin_loses_the_session_at_the_next_request(
    page: Page, server: Server, org: str
) -> None:
    signed_in(page, server, org)
    with ledger_of(server) as ledger:
        ledger.remove_admin(org, ADA, OPERATOR, RequestInfo.local())
    page.reload()
    page.wait_for_url(f"{origin(server)}/console/sign-in?problem=ended")
    assert "Your session has ended" in page.inner_text("main")


@pytest.mark.sqlite_only  # the storage side: test_console.py, on both
def test_a_form_posted_from_another_site_changes_nothing(
    page: Page, server: Server, org: str
) -> None:
    signed_in(page, server, org)
    before = tokens(server, org)
    page.goto("data:text/html,<p>elsewhere</p>")
    page.set_content(
        f'<form method="post" action="{origin(server)}/console/tokens">'
        '<input name="name" value="Forged"><input name="expires" value="never">'
        '<input name="scopes" value="admin"><button>go</button></form>'
    )
    page.get_by_role("button", name="go").click()
    page.wait_for_load_state()
    assert tokens(server, org) == before


@pytest.mark.sqlite_only  # the storage side: test_console.py, on both
def test_values_a_client_sent_are_text_in_the_browser(
    page: Page, server: Server, org: str, dialogs: list[str]
) -> None:
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    token_for(server, hostile, org)
    signed_in(page, server, org)
    page.goto(f"{origin(server)}/console/tokens")
    assert page.get_by_role("cell", name=hostile, exact=True).count() == 1
    assert dialogs == []
    assert page.locator("img").count() == 0


@pytest.mark.sqlite_only  # the storage side: test_console.py, on both
def test_pages_fit_a_phone_and_work_from_the_keyboard(
    browser: Browser, server: Server, org: str
) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    phone = context.new_page()
    signed_in(phone, server, org)
    for path in (
        "/console/setup",
        "/console/tokens",
        "/console/tokens/new",
        "/console/people",
        "/console/groups",
    ):
        phone.goto(origin(server) + path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} is {width} px wide"
    shot(phone, "console-phone")
    phone.goto(origin(server) + "/console/tokens/new")
    phone.keyboard.press("Tab")  # the skip link first
    assert phone.evaluate("document.activeElement.textContent") == "Skip to content"
    phone.get_by_label("Name").focus()
    phone.keyboard.type("Keyboard")
    phone.keyboard.press("Enter")  # submits the form, with its defaults
    assert phone.get_by_label("The new token").input_value().startswith("scl_")
    context.close()


@pytest.mark.sqlite_only  # the storage side: test_console_sso.py, on both
def test_single_sign_on_through_the_identity_providers_page(
    page: Page, server: Server, org: str, oidc_provider: Provider
) -> None:
    add(server, org, ADA)
    with ledger_of(server) as ledger:
        ledger.set_single_sign_on(
            org,
            issuer=oidc_provider.issuer,
            client_id="scimledger-console",
            client_secret="the-client-secret",
            actor=OPERATOR,
            request=RequestInfo.local(),
            now=datetime.now(UTC),
        )
    oidc_provider.person("ada", email=ADA, email_verified=True)
    oidc_provider.person("eve", email="eve@acme.example", email_verified=True)
    for sub, landed in (("eve", f"is not an admin or reviewer of {org}"), ("ada", "SCIM setup")):
        page.goto(f"{origin(server)}/console/sign-in")
        page.get_by_label("Organization").fill(org)
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("link", name=f"Sign in to {org} with your identity provider").click()
        page.get_by_placeholder("sub").first.fill(sub)  # the provider's own form
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_load_state()
        assert landed in page.inner_text("main")
    assert page.url == f"{origin(server)}/console/setup"


@pytest.mark.sqlite_only  # in a browser; the pages' data on both in test_console*.py
@pytest.mark.sqlite_only  # the storage side: test_console_people.py, on both
def test_a_reviewer_finds_a_person_and_sees_them_as_they_were(
    page: Page, server: Server, org: str
) -> None:
    token = token_for(server, "Okta", org)
    ids = {}
    for user_name, name in (("grace@acme.example", "Grace"), ("alan@acme.example", "Alan")):
        body = {"userName": user_name, "name": {"formatted": name}, "title": "Engineer"}
        answer = call(server, "POST", "/Users", token, body)
        assert answer.status == 201
        ids[user_name] = answer.body["id"]
    # A moment after the creations, in whole seconds (the form's precision), then a change.
    between = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    time.sleep(max(0.0, (between - datetime.now(UTC)).total_seconds()) + 0.2)
    change = patch_op({"op": "replace", "path": "title", "value": "Director"})
    assert call(server, "PATCH", f"/Users/{ids['grace@acme.example']}", token, change).status == 200

    signed_in(page, server, org, RITA, "reviewer")
    p = page
    p.get_by_role("link", name="People").first.click()
    p.get_by_label("Search by user name, name or email").fill("grace")
    p.get_by_role("button", name="Search").click()
    assert p.get_by_role("row").filter(has_text="acme.example").count() == 1
    shot(page, "console-people")
    p.get_by_role("link", name="grace@acme.example").click()
    assert p.get_by_role("heading", level=1).inner_text() == "Grace"
    assert "Director" in p.locator("dl.facts").nth(1).inner_text()
    newest = p.locator("#history ~ .table-wrap").get_by_role("row").nth(1).inner_text()
    assert "Engineer -> Director" in newest
    shot(page, "console-user")

    p.get_by_label("Date and time (UTC)").fill(between.strftime("%Y-%m-%dT%H:%M:%S"))
    p.get_by_role("button", name="Show").click()
    then = p.locator("#state-at ~ dl.facts").first.inner_text()
    assert "Engineer" in then
    assert "Director" not in then
    shot(page, "console-user-then")
    p.get_by_label("Date and time (UTC)").fill("2001-01-01T00:00:00")
    p.get_by_role("button", name="Show").click()
    assert "This user did not exist at" in p.inner_text("main")


@pytest.mark.sqlite_only  # the storage side: test_console_audit.py, on both
def test_the_audit_trail_filters_to_one_action(page: Page, server: Server, org: str) -> None:
    signed_in(page, server, org)
    for name in ("Okta", "Entra"):
        token_for(server, name, org)
    page.get_by_role("link", name="Audit trail").first.click()
    page.get_by_label("Action").select_option("token.issued")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("main table tbody tr")
    assert rows.count() == 2
    assert [rows.nth(i).inner_text().count("token.issued") for i in range(2)] == [1, 1]
    assert "console.signed_in" not in page.inner_text("main table")
    shot(page, "console-audit")


@pytest.mark.sqlite_only  # in a browser; the pages' data on both in test_console*.py
@pytest.mark.sqlite_only  # the storage side: test_console.py, on both
def test_a_rotated_token_and_its_successor_both_work_for_the_grace_period(
    page: Page, server: Server, org: str
) -> None:
    old = token_for(server, "Okta", org)
    signed_in(page, server, org)
    page.get_by_role("link", name="Tokens").first.click()
    page.get_by_role("link", name="Rotate Okta").click()
    page.get_by_label("Old token keeps working for").select_option("1h")
    page.get_by_role("button", name="Rotate token").click()
    new = page.get_by_label("The new token").input_value()
    assert new != old
    assert "The token it replaces keeps working until" in page.inner_text("main")
    assert call(server, "GET", "/Users", new).status == 200
    assert call(server, "GET", "/Users", old).status == 200  # until the grace period ends
    page.get_by_role("link", name="Back to tokens").click()
    assert "rotating" in page.get_by_role("row").filter(has_text="Replaced").inner_text()


@pytest.mark.sqlite_only  # the storage side: test_console_audit.py, on both
def test_the_audit_trail_downloads_as_csv(page: Page, server: Server, org: str) -> None:
    signed_in(page, server, org)
    token_for(server, "=cmd|' /C calc'!A0", org)
    page.get_by_role("link", name="Audit trail").first.click()
    page.get_by_label("Action").select_option("token.issued")
    page.get_by_role("button", name="Filter").click()
    with page.expect_download() as downloading:
        page.get_by_role("link", name="CSV").click()
    download = downloading.value
    text = Path(download.path()).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("position,")
    assert len(lines) == 2  # the header and the one token issued
    assert "'=cmd|' /C calc'!A0" in lines[1]  # a formula is text in a spreadsheet
    assert download.suggested_filename.endswith(".csv")


@pytest.mark.sqlite_only  # the storage side: test_console_people.py, on both
def test_another_organizations_person_sees_nothing_of_this_one(
    page: Page, server: Server, org: str
) -> None:
    token = token_for(server, "Okta", org)
    created = call(server, "POST", "/Users", token, {"userName": "secret.person@acme.example"})
    assert created.status == 201
    globex = org.replace("acme-", "globex-")  # an organization of this test's own too
    token_for(server, "Okta", org=globex)
    with ledger_of(server) as ledger:
        ledger.add_admin(globex, "gil@globex.example", OPERATOR, RequestInfo.local())
        presented, _ = ledger.issue_sign_in_link(
            globex, "gil@globex.example", OPERATOR, datetime.now(UTC)
        )
    sign_in(page, server, f"{origin(server)}/console/sign-in/{presented}", "gil@globex.example")
    page.get_by_role("link", name="People").first.click()
    assert "secret.person" not in page.inner_text("main")
    page.goto(f"{origin(server)}/console/people/{created.body['id']}")
    assert "secret.person" not in page.content()
    assert "not found" in page.inner_text("main").lower()
    page.goto(f"{origin(server)}/console/tokens")
    assert page.get_by_role("row").filter(has_text="Okta").count() == 1  # globex's own
    assert "acme" not in page.inner_text("main").lower()
