"""The console's check of an ID token (http.console.sso.verified_email), with tokens signed
here: only a token signed by the provider's key, for this client, from this issuer, unexpired,
with the nonce sent and a verified email lets anyone in."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from scimledger.http.console.sso import Provider, ProviderError, Unverified, verified_email
from scimledger.ledger.commands import SingleSignOn

SSO = SingleSignOn("https://acme.okta.com", "scimledger", "secret")
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
PROVIDER = Provider("https://acme.okta.com/authorize", "https://acme.okta.com/token", KeySet([KEY]))


def token(key: RSAKey = KEY, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": SSO.issuer,
        "aud": SSO.client_id,
        "sub": "00u1",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
        "email": "ada@acme.example",
        "email_verified": True,
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def test_a_sound_token_gives_its_verified_email() -> None:
    assert verified_email(SSO, PROVIDER, token(), "n-1") == "ada@acme.example"


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "https://evil.example"},
        {"aud": "another-client"},
        {"nonce": "n-2"},
        {"nonce": None},
        {"exp": int(time.time()) - 600},
        {"sub": None},
    ],
)
def test_a_token_for_someone_else_or_out_of_date_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as refused:
        verified_email(SSO, PROVIDER, token(**changes), "n-1")
    assert not isinstance(refused.value, Unverified)


def test_a_token_signed_by_another_key_is_refused() -> None:
    with pytest.raises(ProviderError):
        verified_email(SSO, PROVIDER, token(OTHER_KEY), "n-1")


@pytest.mark.parametrize("text", ["", "not.a.token", "e30.e30."])
def test_a_token_that_is_none_is_refused(text: str) -> None:
    with pytest.raises(ProviderError):
        verified_email(SSO, PROVIDER, text, "n-1")


@pytest.mark.parametrize(
    "changes", [{"email_verified": False}, {"email_verified": "true"}, {"email": None}]
)
def test_a_token_without_a_verified_email_is_unverified(changes: dict[str, Any]) -> None:
    with pytest.raises(Unverified):
        verified_email(SSO, PROVIDER, token(**changes), "n-1")
