"""Console single sign-on against a real OpenID Connect provider process (oidc-provider-mock),
on both databases: authorization code with PKCE, the ID token's verified email, and who is
refused (issue 17)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from scimledger.http.services import Services
from scimledger.ledger.context import RequestInfo
from scimledger.ledger.sessions import ConsoleSession
from tests.conftest import all_stored, payload_of
from tests.e2e.console import ADA, OPERATOR, events_of
from tests.e2e.oidc_provider import Provider
from tests.scim import Client

CLIENT_ID = "scimledger-console"


@pytest.fixture
def sso(services: Services, oidc_provider: Provider) -> Provider:
    services.ledger.add_admin("acme", ADA, OPERATOR, RequestInfo.local())
    services.ledger.set_single_sign_on(
        "acme",
        issuer=oidc_provider.issuer,
        client_id=CLIENT_ID,
        client_secret="the-client-secret",
        actor=OPERATOR,
        request=RequestInfo.local(),
        now=datetime.now(UTC),
    )
    return oidc_provider


def through_the_provider(console: Client, provider: Provider, sub: str) -> httpx.Response:
    """Starts single sign-on, signs `sub` in at the provider as a browser would, and brings
    the provider's answer back to the console's callback."""
    start = console.get("/console/sso?org=acme", follow_redirects=False)
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(f"{provider.issuer}/oauth2/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == ["openid email"]
    assert query["redirect_uri"] == ["http://scim.test/console/sso/callback"]
    assert {"state", "nonce", "code_challenge"} <= set(query)
    signed = httpx.post(authorize, data={"sub": sub}, follow_redirects=False, timeout=10)
    assert signed.status_code in (302, 303), signed.text
    back = urlsplit(signed.headers["location"])
    assert back.path == "/console/sso/callback"
    return console.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_an_admin_with_a_verified_email_signs_in(
    console: Client,
    services: Services,
    sso: Provider,
) -> None:
    sso.person("ada", email="Ada@acme.example", email_verified=True)
    back = through_the_provider(console, sso, "ada")
    assert (back.status_code, back.headers["location"]) == (303, "/console/setup")
    page = console.get("/console/setup")
    assert "ada@acme.example · admin of <strong>acme</strong>" in page.text
    [started] = events_of(services, ConsoleSession.Started)
    assert b'"method":"sso"' in payload_of(services.ledger, started)
    assert b"the-client-secret" not in all_stored(services.ledger)


def test_someone_who_is_no_admin_or_reviewer_is_refused(
    console: Client,
    services: Services,
    sso: Provider,
) -> None:
    sso.person("mallory", email="mallory@acme.example", email_verified=True)
    back = through_the_provider(console, sso, "mallory")
    assert back.status_code == 403
    assert "mallory@acme.example is not an admin or reviewer of acme" in back.text
    assert events_of(services, ConsoleSession.Started) == []
    assert console.get("/console/setup", follow_redirects=False).status_code == 303


def test_an_email_the_provider_did_not_verify_is_refused(
    console: Client,
    services: Services,
    sso: Provider,
) -> None:
    sso.person("ada", email=ADA, email_verified=False)
    back = through_the_provider(console, sso, "ada")
    assert back.status_code == 403
    assert "did not confirm your email address" in back.text
    assert events_of(services, ConsoleSession.Started) == []


def test_a_callback_that_did_not_start_here_is_refused(
    console: Client,
    services: Services,
    sso: Provider,
) -> None:
    sso.person("ada", email=ADA, email_verified=True)
    start = console.get("/console/sso?org=acme", follow_redirects=False)
    signed = httpx.post(start.headers["location"], data={"sub": "ada"}, follow_redirects=False)
    back = urlsplit(signed.headers["location"])
    code = parse_qs(back.query)["code"][0]
    forged = console.get(f"/console/sso/callback?code={code}&state=forged")
    assert forged.status_code == 400
    assert "did not start here" in forged.text
    console.cookies.clear()
    assert console.get(f"{back.path}?{back.query}").status_code == 400
    assert events_of(services, ConsoleSession.Started) == []


def test_the_sign_in_page_offers_single_sign_on_only_where_it_is_set_up(
    console: Client,
    services: Services,
    sso: Provider,
) -> None:
    offered = console.get("/console/sign-in?org=ACME").text
    assert 'href="/console/sso?org=acme"' in offered
    services.ledger.add_admin("globex", "g@globex.example", OPERATOR, RequestInfo.local())
    plain = console.get("/console/sign-in?org=globex").text
    assert "globex has no single sign-on set up here" in plain
    refused = console.get("/console/sso?org=globex", follow_redirects=False)
    assert refused.status_code == 400
    assert "globex has no single sign-on set up" in refused.text
    hostile = console.get("/console/sign-in", params={"org": "<script>x</script>"})
    assert "<script>x" not in hostile.text


@pytest.mark.parametrize(
    "cookie",
    [
        '{"org":"acme","state":"s","nonce":"n","verifier":"v","at":"x"}',
        '{"org":"acme","state":"s","nonce":"n","verifier":"v","at":[1]}',
        '{"org":"acme","state":"s","nonce":"n","verifier":"v","at":1e999}',
        "[1, 2]",
    ],
)
def test_a_forged_pending_cookie_is_refused_not_an_error(
    console: Client, services: Services, sso: Provider, cookie: str
) -> None:
    console.cookies.set(
        "scimledger_sso", base64.urlsafe_b64encode(cookie.encode()).decode(), path="/console/sso"
    )
    answer = console.get("/console/sso/callback?code=c&state=s")
    assert answer.status_code == 400
    assert "did not start here" in answer.text
    assert events_of(services, ConsoleSession.Started) == []
