"""Pure parts of the operator CLI and configuration: expiry and database URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scimledger.ledger.database import DatabaseURL, InvalidDatabaseURL
from scimledger.ledger.tokens import TokenRequestError, parse_expiry

NOW = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)


def test_never_expires() -> None:
    assert parse_expiry("never", NOW) is None
    assert parse_expiry("Never", NOW) is None


def test_days_count_from_now() -> None:
    assert parse_expiry("30d", NOW) == NOW + timedelta(days=30)


def test_iso_date_means_its_start_in_utc() -> None:
    assert parse_expiry("2027-06-30", NOW) == datetime(2027, 6, 30, tzinfo=UTC)


def test_iso_datetime_keeps_its_offset_and_is_converted_to_utc() -> None:
    assert parse_expiry("2027-06-30T09:00:00+02:00", NOW) == datetime(2027, 6, 30, 7, tzinfo=UTC)
    assert parse_expiry("2027-06-30T09:00:00", NOW) == datetime(2027, 6, 30, 9, tzinfo=UTC)


@pytest.mark.parametrize("text", ["0d", "2026-11-01", "soon", "30", "-1d", "2027-13-01"])
def test_unusable_expiries_are_refused(text: str) -> None:
    with pytest.raises(TokenRequestError):
        parse_expiry(text, NOW)


def test_relative_sqlite_url() -> None:
    url = DatabaseURL.parse("sqlite:///var/scimledger.db")
    assert (url.kind, url.path) == ("sqlite", "var/scimledger.db")


def test_absolute_sqlite_url() -> None:
    assert DatabaseURL.parse("sqlite:////tmp/x/scim.db").path == "/tmp/x/scim.db"


def test_postgresql_url() -> None:
    url = DatabaseURL.parse("postgresql://scim:p%40ss@db.example:6543/ledger")
    assert (url.kind, url.host, url.port, url.user, url.password, url.dbname) == (
        "postgresql",
        "db.example",
        6543,
        "scim",
        "p@ss",
        "ledger",
    )
    assert url.redacted() == "postgresql://scim:***@db.example:6543/ledger"


def test_postgresql_url_defaults_port_and_user() -> None:
    url = DatabaseURL.parse("postgresql://127.0.0.1/scim")
    assert (url.port, url.user, url.password) == (5432, "postgres", "")


@pytest.mark.parametrize(
    "text", ["mysql://x/y", "sqlite://relative.db", "sqlite:///", "postgresql://host", "nonsense"]
)
def test_unsupported_database_urls_are_rejected(text: str) -> None:
    with pytest.raises(InvalidDatabaseURL):
        DatabaseURL.parse(text)


def test_environment_variable_is_used_when_no_url_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCIMLEDGER_DATABASE_URL", "sqlite:///elsewhere.db")
    assert DatabaseURL.from_setting(None).path == "elsewhere.db"
    assert DatabaseURL.from_setting("sqlite:///given.db").path == "given.db"
    monkeypatch.delenv("SCIMLEDGER_DATABASE_URL")
    assert DatabaseURL.from_setting(None).url == "sqlite:///var/scimledger.db"
