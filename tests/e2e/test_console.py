"""The web console over HTTP, on both databases: sign-in links, sessions, the guards every
form passes, the SCIM setup and tokens pages (issue 17). Browser tests: test_console_browser.py."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from litestar.testing import TestClient

from scimledger.http.app import create_app
from scimledger.http.services import Services
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import RequestInfo
from scimledger.ledger.sessions import ConsoleSession, Presented, SignInLink
from scimledger.ledger.tokens import Token
from scimledger.projections.sql_filters import scim_datetime
from tests.e2e.console import (
    ADA,
    OPERATOR,
    ORIGIN,
    RITA,
    events_of,
    link_for,
    once_of,
    sign_in,
)
from tests.scim import CORE_USER, Client, bearer, patch_op


def test_a_sign_in_link_asks_before_it_signs_in_then_works_once(
    console: Client, services: Services
) -> None:
    link = link_for(services)
    page = console.get(link)
    assert page.status_code == 200
    assert "This one-time link signs <strong>ada@acme.example</strong> in" in page.text
    assert events_of(services, SignInLink.Used) == []  # a GET (a mail scanner) uses nothing
    used = console.post(link, headers=ORIGIN, follow_redirects=False)
    assert used.status_code == 303
    cookie = used.headers["set-cookie"]
    assert cookie.startswith("scimledger_console=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # served over http here (see the https test)
    again = console.post(link, headers=ORIGIN, follow_redirects=False)
    assert again.status_code == 410
    assert "This sign-in link cannot be used" in again.text
    assert console.get(link).status_code == 410
    assert len(events_of(services, SignInLink.Used)) == 1
    assert len(events_of(services, ConsoleSession.Started)) == 1


def test_a_sign_in_from_another_site_is_refused(console: Client, services: Services) -> None:
    link = link_for(services)
    for headers in ({}, {"origin": "https://evil.example"}, {"referer": "https://evil.example/"}):
        refused = console.post(link, headers=headers, follow_redirects=False)
        assert refused.status_code == 403
        assert "did not come from the console" in refused.text
    assert events_of(services, SignInLink.Used) == []
    assert console.post(link, headers=ORIGIN, follow_redirects=False).status_code == 303


def test_pages_without_a_session_lead_to_the_sign_in_page(console: Client) -> None:
    for path in ("/console/", "/console/setup", "/console/tokens", "/console/tokens/new"):
        response = console.get(path, follow_redirects=True)
        assert response.url.path == "/console/sign-in"
        assert "scimledger console link --org ORGANIZATION --admin you@example.com" in (
            html.unescape(response.text)
        )
    console.cookies.set("scimledger_console", "0" * 32 + "_" + "x" * 43)  # no such session
    response = console.get("/console/setup", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/console/sign-in?problem=ended",
    )


def test_the_setup_page_shows_the_base_url_and_each_tokens_last_use(
    console: Client, services: Services, client: Client
) -> None:
    sign_in(console, services)
    page = console.get("/console/setup").text
    assert 'value="http://scim.test/scim/v2" readonly' in page
    assert "No token yet" not in page  # the client fixture's token, "Okta"
    assert "<td>Okta</td>" in page
    assert client.get("/scim/v2/Users").status_code == 200
    page = console.get("/console/setup").text
    assert "Last SCIM request</dt><dd><time" in page
    services.ledger.change_settings(
        "acme",
        {"scim_base_url": "https://scim.acme.example/scim/v2"},
        OPERATOR,
        RequestInfo.local(),
    )
    assert 'value="https://scim.acme.example/scim/v2"' in console.get("/console/setup").text


def test_a_generated_token_is_shown_once_and_provisions(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    form = console.get("/console/tokens/new")
    assert form.status_code == 200
    sent = {"csrf": csrf, "name": "Okta prod", "expires": "90d", "scopes": "scim"}
    sent["once"] = once_of(form.text)
    generated = console.post("/console/tokens", data=sent, headers=ORIGIN)
    assert generated.status_code == 201
    token = re.search(r'id="token" value="(scl_[0-9a-f]{32}_[A-Za-z0-9_-]{43})"', generated.text)
    assert token is not None
    assert "it is shown this once" in generated.text
    assert console.get("/scim/v2/Users", headers=bearer(token.group(1))).status_code == 200
    listing = console.get("/console/tokens").text
    assert "<td>Okta prod</td>" in listing
    assert token.group(1) not in listing
    # Its secret part (which may itself hold "_": split("_") once cut it to "" and failed).
    assert token.group(1).removeprefix("scl_")[33:] not in listing
    [issued] = [
        found
        for n in events_of(services, Token.TokenIssued)
        if (found := services.ledger.token(UUID(str(n.originator_id))))
        and found.name == "Okta prod"
    ]
    assert issued.issued_by_admin == ADA
    assert issued.issued_by.kind == "person"
    assert (issued.issued_by.name, issued.issued_by.role) == (ADA, "admin")
    assert issued.expires_at is not None
    assert timedelta(days=89) < issued.expires_at - datetime.now(UTC) <= timedelta(days=90)
    # Reloading the page sends the form again: no second token.
    again = console.post("/console/tokens", data=sent, headers=ORIGIN)
    assert again.status_code == 409
    assert "This form was already sent, and the token it generated was shown once." in again.text
    assert "scl_" not in again.text
    assert len(events_of(services, Token.TokenIssued)) == 1
    # A new form (opened again) generates another.
    sent["once"] = once_of(console.get("/console/tokens/new").text)
    assert console.post("/console/tokens", data=sent, headers=ORIGIN).status_code == 201
    assert len(events_of(services, Token.TokenIssued)) == 2


def test_a_token_form_without_its_once_only_key_generates_nothing(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    before = len(events_of(services, Token.TokenIssued))
    for once in (None, "", "short", "x" * 65, "../../etc/passwd+++++++"):
        data = {"csrf": csrf, "name": "x", "expires": "never", "scopes": "scim"}
        if once is not None:
            data["once"] = once
        refused = console.post("/console/tokens", data=data, headers=ORIGIN)
        assert refused.status_code == 403, once
        assert "This form is out of date: open it again from the console." in refused.text
    assert len(events_of(services, Token.TokenIssued)) == before


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "", "expires": "never", "scopes": "scim"}, "a token needs a name"),
        (
            {"name": "x", "expires": "date", "expires_on": "2020-01-01", "scopes": "scim"},
            "is in the past",
        ),
        ({"name": "x", "expires": "date", "expires_on": "9999-12-31", "scopes": "scim"}, "expiry"),
        ({"name": "x", "expires": "forever", "scopes": "scim"}, "choose when the token expires"),
        ({"name": "x", "expires": "never"}, "choose at least one scope"),
        ({"name": "x", "expires": "never", "scopes": "root"}, "choose at least one scope"),
    ],
)
def test_a_token_form_with_a_problem_is_shown_again_and_issues_nothing(
    console: Client, services: Services, fields: dict[str, str], problem: str
) -> None:
    csrf = sign_in(console, services)
    before = len(events_of(services, Token.TokenIssued))
    once = once_of(console.get("/console/tokens/new").text)
    response = console.post(
        "/console/tokens", data={"csrf": csrf, "once": once, **fields}, headers=ORIGIN
    )
    assert response.status_code == 400
    assert problem in html.unescape(response.text)
    assert 'role="alert"' in response.text
    assert len(events_of(services, Token.TokenIssued)) == before
    # The form shown again keeps its key, and corrected, it is sent once.
    assert once_of(response.text) == once
    corrected = {"csrf": csrf, "once": once, "name": "y", "expires": "never", "scopes": "scim"}
    assert console.post("/console/tokens", data=corrected, headers=ORIGIN).status_code == 201
    assert console.post("/console/tokens", data=corrected, headers=ORIGIN).status_code == 409
    assert len(events_of(services, Token.TokenIssued)) == before + 1


def test_a_form_without_the_sessions_csrf_token_changes_nothing(
    console: Client, services: Services
) -> None:
    sign_in(console, services)
    before = len(events_of(services, Token.TokenIssued))
    for csrf in (None, "", "0" * 64):
        data = {"name": "Forged", "expires": "never", "scopes": "admin"}
        if csrf is not None:
            data["csrf"] = csrf
        refused = console.post("/console/tokens", data=data, headers=ORIGIN)
        assert refused.status_code == 403
        assert "This form has expired or did not come from the console" in refused.text
    assert len(events_of(services, Token.TokenIssued)) == before


def test_revoking_a_token_from_the_console_ends_its_scim_access(
    console: Client, services: Services, client: Client, token: IssuedToken
) -> None:
    csrf = sign_in(console, services)
    assert client.get("/scim/v2/Users").status_code == 200
    token_id = str(token.id)
    confirm = console.get(f"/console/tokens/{token_id}/revoke")
    assert "Revoke token “Okta”?" in html.unescape(confirm.text)
    revoked = console.post(
        f"/console/tokens/{token_id}/revoke",
        data={"csrf": csrf},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert (revoked.status_code, revoked.headers["location"]) == (303, "/console/tokens")
    assert client.get("/scim/v2/Users").status_code == 401
    assert '<span class="status revoked">revoked</span>' in console.get("/console/tokens").text


def test_rotating_shows_the_successor_once_and_keeps_the_old_one_for_the_grace(
    console: Client, services: Services, client: Client, token: IssuedToken
) -> None:
    csrf = sign_in(console, services)
    token_id = str(token.id)
    once = once_of(console.get(f"/console/tokens/{token_id}/rotate").text)
    sent = {"csrf": csrf, "grace": "1h", "once": once}
    rotated = console.post(f"/console/tokens/{token_id}/rotate", data=sent, headers=ORIGIN)
    assert rotated.status_code == 201
    successor = re.search(r'id="token" value="(scl_[^"]+)"', rotated.text)
    assert successor is not None
    assert "The token it replaces keeps working until" in rotated.text
    assert client.get("/scim/v2/Users").status_code == 200  # within the grace
    assert console.get("/scim/v2/Users", headers=bearer(successor.group(1))).status_code == 200
    again = console.post(f"/console/tokens/{token_id}/rotate", data=sent, headers=ORIGIN)
    assert again.status_code == 409
    assert "This token was already rotated" in again.text
    assert len(events_of(services, Token.TokenIssued)) == 2  # the fixture's and its successor


def test_a_reviewer_sees_tokens_but_cannot_change_them(
    console: Client, services: Services, token: IssuedToken
) -> None:
    csrf = sign_in(console, services, RITA)
    listing = console.get("/console/tokens").text
    assert "<td>Okta</td>" in listing
    assert "Generate token" not in listing
    assert "/revoke" not in listing
    token_id = str(token.id)
    before = len(services.ledger.recorder.select_notifications(start=1, limit=10_000))
    for path in ("/console/tokens/new", f"/console/tokens/{token_id}/revoke"):
        refused = console.get(path)
        assert refused.status_code == 403
        assert "Only an admin of this organization can do this" in refused.text
    for path, data in (
        ("/console/tokens", {"name": "x", "expires": "never", "scopes": "admin"}),
        (f"/console/tokens/{token_id}/revoke", {}),
        (f"/console/tokens/{token_id}/rotate", {"grace": "0"}),
    ):
        assert console.post(path, data={"csrf": csrf, **data}, headers=ORIGIN).status_code == 403
    after = len(services.ledger.recorder.select_notifications(start=1, limit=10_000))
    assert after == before


def test_another_organizations_token_is_not_found(console: Client, services: Services) -> None:
    other = services.ledger.issue_token(
        org="globex", name="Globex", expires_at=None, actor=OPERATOR, request=RequestInfo.local()
    )
    csrf = sign_in(console, services)
    assert console.get(f"/console/tokens/{other.id}/revoke").status_code == 404
    response = console.post(
        f"/console/tokens/{other.id}/revoke", data={"csrf": csrf}, headers=ORIGIN
    )
    assert response.status_code == 404
    unrevoked = services.ledger.token(other.id)
    assert unrevoked is not None
    assert unrevoked.revoked is False
    assert "Globex" not in console.get("/console/tokens").text


def test_a_session_ends_when_its_admin_is_removed(console: Client, services: Services) -> None:
    sign_in(console, services)
    services.ledger.remove_admin("acme", ADA, OPERATOR, RequestInfo.local())
    response = console.get("/console/tokens", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/console/sign-in?problem=ended",
    )
    assert "Your session has ended" in console.get(response.headers["location"]).text


def test_a_session_ends_after_thirty_idle_minutes(console: Client, services: Services) -> None:
    sign_in(console, services)
    cookie = console.cookies["scimledger_console"]
    session = Presented.parse(cookie)
    with services.sql.transaction(commit=True) as cursor:
        cursor.execute(
            "UPDATE console_activity SET last_seen = ? WHERE session_id = ?",
            (scim_datetime(datetime.now(UTC) - timedelta(minutes=31)), session.id.hex),
        )
    response = console.get("/console/setup", follow_redirects=False)
    assert response.headers["location"] == "/console/sign-in?problem=idle"


def test_signing_out_ends_the_session_for_good(console: Client, services: Services) -> None:
    csrf = sign_in(console, services)
    cookie = console.cookies["scimledger_console"]
    out = console.post(
        "/console/sign-out", data={"csrf": csrf}, headers=ORIGIN, follow_redirects=False
    )
    assert (out.status_code, out.headers["location"]) == (
        303,
        "/console/sign-in?problem=signed-out",
    )
    console.cookies.set("scimledger_console", cookie)  # a copy of the cookie, kept
    assert console.get("/console/setup", follow_redirects=False).status_code == 303
    [ended] = events_of(services, ConsoleSession.Ended)
    assert ended.originator_id == Presented.parse(cookie).id


def test_values_a_client_sent_are_shown_as_text(console: Client, services: Services) -> None:
    services.ledger.issue_token(
        org="acme",
        name='<script>alert(1)</script>"><img src=x onerror=alert(2)>',
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo.local(),
    )
    sign_in(console, services)
    page = console.get("/console/tokens").text
    assert "<script>alert(1)" not in page
    assert "<img src=x" not in page
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    )


def test_console_pages_have_a_strict_policy_and_assets_are_cached(
    console: Client, services: Services
) -> None:
    page = console.get("/console/sign-in")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"  # a form's Origin is sent
    assert "<script>" not in page.text  # no inline script anywhere
    [stylesheet] = re.findall(r'href="(/console/static/console\.[0-9a-f]{12}\.css)"', page.text)
    asset = console.get(stylesheet)
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-type"].startswith("text/css")
    assert console.get("/console/static/console.css").status_code == 404
    scim = console.get("/scim/v2/ServiceProviderConfig")
    assert scim.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_over_https_the_cookie_is_secure_and_host_bound(services: Services) -> None:
    services.ledger.add_admin("acme", ADA, OPERATOR, RequestInfo.local())
    secure = Services(**{**vars(services), "public_url": "https://console.acme.example"})
    with TestClient(app=create_app(secure), base_url="https://console.acme.example") as client:
        used = client.post(
            link_for(services),
            headers={"origin": "https://console.acme.example"},
            follow_redirects=False,
        )
        cookie = used.headers["set-cookie"]
        assert cookie.startswith("__Host-scimledger_console=")
        assert "Secure" in cookie
        assert "Path=/" in cookie
        setup = client.get("/console/setup").text
        assert 'value="https://console.acme.example/scim/v2"' in setup


def test_a_session_ends_when_the_identity_provider_deactivates_its_person(
    console: Client, services: Services, client: Client
) -> None:
    sign_in(console, services)
    created = client.post(
        "/scim/v2/Users",
        json={"schemas": [CORE_USER], "userName": ADA, "active": True},
    )
    assert created.status_code == 201
    assert console.get("/console/setup", follow_redirects=False).status_code == 200
    deactivated = client.patch(
        f"/scim/v2/Users/{created.json()['id']}",
        json=patch_op({"op": "replace", "value": {"active": False}}),
    )
    assert deactivated.status_code == 200
    response = console.get("/console/setup", follow_redirects=False)
    assert response.headers["location"] == "/console/sign-in?problem=ended"
