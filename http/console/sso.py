"""Single sign-on to the console with an organization's own identity provider: OpenID Connect,
authorization code flow with PKCE.

authlib's OAuth 2 client builds the authorization request and redeems the code; the ID token
is checked with joserfc (authlib's JOSE library): signature against the provider's published
keys, issuer, audience, expiry and the nonce. A person is let in only with a verified email
that is a current admin or reviewer of that organization (ledger.sessions).

What the browser carries between the two legs (state, nonce, PKCE verifier) is a short-lived
HttpOnly cookie scoped to /console/sso: tampering with it can only spoil the bearer's own
sign-in, since the state must match the provider's redirect, the verifier the challenge the
provider saw, and the nonce the ID token.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError as OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from litestar import Request, Response, get
from litestar.datastructures import Cookie
from litestar.params import FromQuery
from litestar.response import Redirect

from scimledger.http.auth import request_info
from scimledger.http.console.pages import message
from scimledger.http.console.sessions import session_cookie
from scimledger.http.services import Injected, Services
from scimledger.ledger.commands import SingleSignOn
from scimledger.ledger.errors import LedgerError
from scimledger.ledger.organizations import normalize_slug

PENDING = "scimledger_sso"
PENDING_SECONDS = 600  # to come back from the identity provider
PATH = "/console/sso"
TIMEOUT = 10.0  # seconds for each request to the identity provider
DISCOVERY_SECONDS = 3600  # how long a provider's metadata and keys are kept
MAX_DOCUMENT = 1024 * 1024  # bytes of metadata or keys read from a provider
log = logging.getLogger(__name__)

SIGNING = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class ProviderError(Exception):
    """The identity provider could not be used: unreachable, or it answered nonsense."""


class Unverified(ProviderError):
    """The ID token is sound but vouches for no verified email."""


@dataclass(frozen=True)
class Provider:
    authorization_endpoint: str
    token_endpoint: str
    keys: KeySet


_providers: dict[str, tuple[float, Provider]] = {}
_lock = threading.Lock()


def _document(client: httpx.Client, url: str) -> dict[str, Any]:
    try:
        response = client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ProviderError(f"{url}: {exc}") from exc
    if len(response.content) > MAX_DOCUMENT:
        raise ProviderError(f"{url}: answered more than {MAX_DOCUMENT} bytes")
    try:
        found = response.json()
    except ValueError as exc:
        raise ProviderError(f"{url}: not JSON") from exc
    if not isinstance(found, dict):
        raise ProviderError(f"{url}: not a JSON object")
    return found


def provider(issuer: str) -> Provider:
    """The provider's endpoints and signing keys (OpenID Connect discovery), kept an hour."""
    with _lock:
        kept = _providers.get(issuer)
    if kept is not None and time.monotonic() - kept[0] < DISCOVERY_SECONDS:
        return kept[1]
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
        metadata = _document(client, issuer.rstrip("/") + "/.well-known/openid-configuration")
        try:
            found = Provider(
                authorization_endpoint=str(metadata["authorization_endpoint"]),
                token_endpoint=str(metadata["token_endpoint"]),
                keys=KeySet.import_key_set(_document(client, str(metadata["jwks_uri"]))),  # type: ignore[arg-type]
            )
        except (KeyError, ValueError, JoseError) as exc:
            raise ProviderError(f"{issuer}: incomplete metadata or keys ({exc})") from exc
    with _lock:
        _providers[issuer] = (time.monotonic(), found)
    return found


def _client(sso: SingleSignOn, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=sso.client_id,
        client_secret=sso.client_secret,
        scope="openid email",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=TIMEOUT,
    )


def _callback(services: Services, request: Request[Any, Any, Any]) -> str:
    return (services.public_url or str(request.base_url)).rstrip("/") + f"{PATH}/callback"


def _pending_cookie(services: Services, value: str | None) -> Cookie:
    return Cookie(
        key=PENDING,
        value=value or "",
        path=PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's redirect back, a top-level GET
        secure=(services.public_url or "").startswith("https://"),
        max_age=PENDING_SECONDS if value else 0,
    )


def _sign_in_problem(text: str, status: int = 400) -> Response[Any]:
    return message(
        "Single sign-on", text, status=status, back="/console/sign-in", back_label="Back to sign-in"
    )


@get("/sso", sync_to_thread=True)
def start(
    request: Request[Any, Any, Any], services: Injected[Services], org: FromQuery[str] = ""
) -> Response[Any]:
    """To the organization's identity provider, with a fresh state, nonce and PKCE pair."""
    try:
        slug = normalize_slug(org)
    except LedgerError:
        return _sign_in_problem("Give your organization's name as scimledger knows it.")
    org_id = services.ledger.organization_id(slug)
    sso = services.ledger.single_sign_on(org_id) if org_id is not None else None
    if org_id is None or sso is None:
        return _sign_in_problem(
            f"{slug} has no single sign-on set up: ask an operator for a sign-in link."
        )
    try:
        found = provider(sso.issuer)
    except ProviderError:
        return _sign_in_problem(
            "Your identity provider could not be reached; try again later.", status=502
        )
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    url, _ = _client(sso, _callback(services, request)).create_authorization_url(
        found.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier
    )
    pending = {"org": slug, "state": state, "nonce": nonce, "verifier": verifier, "at": time.time()}
    encoded = base64.urlsafe_b64encode(json.dumps(pending).encode()).decode()
    return Redirect(url, status_code=303, cookies=[_pending_cookie(services, encoded)])


def _pending(request: Request[Any, Any, Any]) -> dict[str, Any] | None:
    try:
        found = json.loads(base64.urlsafe_b64decode(request.cookies.get(PENDING, "")))
    except ValueError:
        return None
    if not isinstance(found, dict) or not all(
        isinstance(found.get(key), str) for key in ("org", "state", "nonce", "verifier")
    ):
        return None
    started = found.get("at")
    if not isinstance(started, int | float) or isinstance(started, bool):
        return None  # the cookie is the browser's to forge: refused, never a 500
    age = time.time() - started
    return found if 0 <= age <= PENDING_SECONDS else None


def verified_email(sso: SingleSignOn, found: Provider, id_token: str, nonce: str) -> str:
    """The ID token's verified email; ProviderError if the token does not hold one."""
    try:
        token = jwt.decode(id_token, found.keys, algorithms=SIGNING)
        jwt.JWTClaimsRegistry(
            leeway=120,
            iss={"essential": True, "value": sso.issuer},
            aud={"essential": True, "value": sso.client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise ProviderError(f"ID token refused: {exc}") from exc
    email = token.claims.get("email")
    if not isinstance(email, str) or token.claims.get("email_verified") is not True:
        raise Unverified("the ID token holds no verified email")
    return email


@get("/sso/callback", sync_to_thread=True)
def callback(request: Request[Any, Any, Any], services: Injected[Services]) -> Response[Any]:
    """Back from the identity provider: the code redeemed, the ID token checked, the person
    signed in if they are an admin or reviewer of the organization."""
    code = request.query_params.get("code") or ""
    state = request.query_params.get("state") or ""  # `state` is a name Litestar reserves
    pending = _pending(request)
    if pending is None or not state or not hmac.compare_digest(state, pending["state"]):
        return _sign_in_problem("This sign-in took too long or did not start here: try again.")
    org_id = services.ledger.organization_id(pending["org"])
    sso = services.ledger.single_sign_on(org_id) if org_id is not None else None
    if org_id is None or sso is None or not code:
        return _sign_in_problem("Your identity provider did not sign you in: try again.")
    try:
        found = provider(sso.issuer)
        tokens = _client(sso, _callback(services, request)).fetch_token(
            found.token_endpoint, code=code, code_verifier=pending["verifier"]
        )
        email = verified_email(sso, found, str(tokens.get("id_token", "")), pending["nonce"])
    except Unverified:
        return _sign_in_problem(
            "Your identity provider did not confirm your email address, so it cannot sign you "
            "in here: ask its administrator, or an operator for a sign-in link.",
            status=403,
        )
    except (ProviderError, httpx.HTTPError, OAuthError, ValueError) as exc:
        log.warning("single sign-on for %s failed: %s", pending["org"], exc)
        return _sign_in_problem(
            "Your identity provider's answer could not be used; try again, and if it "
            "persists, tell your operator.",
            status=502,
        )
    now = datetime.now(UTC)
    try:
        session = services.ledger.sign_in_with_sso(org_id, email, request_info(request), now)
    except LedgerError:  # SignInRefused, or an email that is none
        return _sign_in_problem(
            f"{email} is not an admin or reviewer of {pending['org']} in scimledger: ask an "
            "admin of your organization to add you.",
            status=403,
        )
    services.activity.started(session.id, now)
    return Redirect(
        "/console/setup",
        status_code=303,
        cookies=[session_cookie(services, session), _pending_cookie(services, None)],
    )


ROUTES = [start, callback]
