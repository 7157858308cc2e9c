"""An organization's single sign-on settings (OpenID Connect), on both databases: the client
secret is kept beside the events, never in one (ledger.secrets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag

from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import SingleSignOn
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.errors import InvalidSettings
from scimledger.ledger.secrets import bound
from tests.conftest import all_stored

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
OPERATOR = Actor.operator("settings set")
SECRET = "s3cret-from-the-identity-provider"


def configure(ledger: Ledger, secret: str = SECRET, now: datetime = NOW) -> None:
    ledger.set_single_sign_on(
        "acme",
        issuer="https://acme.okta.com",
        client_id="0oa1scimledger",
        client_secret=secret,
        actor=OPERATOR,
        request=RequestInfo.local(),
        now=now,
    )


def stored(ledger: Ledger) -> bytes:
    return all_stored(ledger)


def secret_rows(ledger: Ledger) -> int:
    with ledger.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute("SELECT count(*) AS n FROM organization_secrets")
        return int(cursor.fetchone()["n"])


def test_the_client_secret_is_kept_beside_the_events_never_in_one(ledger: Ledger) -> None:
    ledger.add_admin("acme", "ada@acme.example", OPERATOR, RequestInfo.local())
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    assert ledger.single_sign_on(org_id) is None
    configure(ledger)
    assert ledger.single_sign_on(org_id) == SingleSignOn(
        "https://acme.okta.com", "0oa1scimledger", SECRET
    )
    assert SECRET not in repr(ledger.single_sign_on(org_id))
    settings = ledger.settings("acme")
    assert settings["oidc_client_secret_set_at"] == NOW.isoformat()
    assert SECRET.encode() not in stored(ledger)
    assert b"oidc_client_secret_set_at" in stored(ledger)


def test_a_new_secret_replaces_the_old_one(ledger: Ledger) -> None:
    ledger.add_admin("acme", "ada@acme.example", OPERATOR, RequestInfo.local())
    configure(ledger)
    configure(ledger, "the-new-one", NOW + timedelta(days=1))
    org_id = ledger.organization_id("acme")
    assert org_id is not None
    sso = ledger.single_sign_on(org_id)
    assert sso is not None
    assert sso.client_secret == "the-new-one"
    assert secret_rows(ledger) == 1


@pytest.mark.parametrize(
    ("issuer", "secret"),
    [("http://idp.example.com", SECRET), ("https://idp.example.com", ""), ("https://i", "a\nb")],
)
def test_bad_single_sign_on_settings_store_nothing(
    ledger: Ledger, issuer: str, secret: str
) -> None:
    ledger.add_admin("acme", "ada@acme.example", OPERATOR, RequestInfo.local())
    before = stored(ledger)
    with pytest.raises(InvalidSettings):
        ledger.set_single_sign_on(
            "acme",
            issuer=issuer,
            client_id="scim",
            client_secret=secret,
            actor=OPERATOR,
            request=RequestInfo.local(),
            now=NOW,
        )
    assert stored(ledger) == before
    assert secret_rows(ledger) == 0


def secret_values(ledger: Ledger) -> list[tuple[str, str, str, str]]:
    with ledger.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute("SELECT org_id, name, set_at, value FROM organization_secrets")
        return [
            (str(r["org_id"]), str(r["name"]), str(r["set_at"]), str(r["value"]))
            for r in cursor.fetchall()
        ]


def test_the_client_secret_is_stored_sealed_by_the_master_key_and_bound_to_its_row(
    ledger: Ledger,
) -> None:
    ledger.add_admin("acme", "ada@acme.example", OPERATOR, RequestInfo.local())
    configure(ledger)
    [(org_id, name, set_at, value)] = secret_values(ledger)

    assert value.startswith("sealed:")
    assert SECRET not in value
    assert ledger.secrets.get(org_id, name, set_at) == SECRET
    with pytest.raises(InvalidTag):  # moved to another organization or moment: unreadable
        ledger.keys.master.open(value, bound(org_id, name, "2031-01-01T00:00:00+00:00"))


def test_a_secret_stored_in_clear_before_sealing_is_still_read(ledger: Ledger) -> None:
    ledger.add_admin("acme", "ada@acme.example", OPERATOR, RequestInfo.local())
    configure(ledger)
    [(org_id, name, set_at, _)] = secret_values(ledger)
    with ledger.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
        statement = "UPDATE organization_secrets SET value = ?"
        if ledger.database.kind == "postgresql":
            statement = statement.replace("?", "%s")
        cursor.execute(statement, ("stored-in-clear",))

    assert ledger.secrets.get(org_id, name, set_at) == "stored-in-clear"
