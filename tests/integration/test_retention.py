"""The retention policy (issue 21): users deleted longer ago than their organization's
`erase_deleted_after_seconds` are erased, by the policy, once; the others are left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scimledger.http.services import Services
from scimledger.ledger import retention
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import NewUser
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.errors import InvalidSettings
from scimledger.ledger.users import User
from scimledger.projections.audit import AuditProjection
from scimledger.projections.tokens import TokensProjection
from scimledger.scripts.serve import retention_candidates
from tests.e2e.conftest import cli_in_process
from tests.integration.test_ledger import context_for, head, loaded, stored

OPERATOR = Actor.operator("tests")
DAY = 86_400


def keep_deleted_for(ledger: Ledger, seconds: int | None, org: str = "acme") -> None:
    ledger.change_settings(
        org, {"erase_deleted_after_seconds": seconds}, OPERATOR, RequestInfo.local()
    )


def test_a_user_deleted_longer_ago_than_kept_is_erased_by_the_policy(ledger: Ledger) -> None:
    context = context_for(ledger)
    user_id = ledger.create_user(context, NewUser({"userName": "ada@example.com"})).id
    ledger.delete_user(context, user_id)
    deleted_at = loaded(ledger, user_id).modified_on
    assert not ledger.sweep_retention(user_id, deleted_at + timedelta(days=365))  # no policy
    keep_deleted_for(ledger, 30 * DAY)
    assert not ledger.sweep_retention(user_id, deleted_at + timedelta(days=29, hours=23))
    before = head(ledger)

    assert ledger.sweep_retention(user_id, deleted_at + timedelta(days=30))

    [erased] = stored(ledger, before)
    assert isinstance(erased, User.UserErased)
    assert erased.reason == "retention policy: deleted more than 30d ago"
    assert (erased.context.actor.kind, erased.context.actor.id) == ("operator", "retention policy")
    assert not ledger.sweep_retention(user_id, deleted_at + timedelta(days=31))  # once


def test_the_policy_leaves_users_not_deleted_and_other_organizations_alone(
    ledger: Ledger,
) -> None:
    context = context_for(ledger)
    keep_deleted_for(ledger, 0)
    active = ledger.create_user(context, NewUser({"userName": "ada@example.com"})).id
    globex = context_for(ledger, "globex")
    theirs = ledger.create_user(globex, NewUser({"userName": "bob@example.com"})).id
    ledger.delete_user(globex, theirs)
    later = loaded(ledger, theirs).modified_on + timedelta(days=3650)
    assert not ledger.sweep_retention(active, later)
    assert not ledger.sweep_retention(theirs, later)


def test_the_server_sweeps_the_users_the_audit_trail_has_as_deleted(
    ledger: Ledger, services: Services
) -> None:
    context = context_for(ledger)
    kept, gone = (
        ledger.create_user(context, NewUser({"userName": f"{name}@example.com"})).id
        for name in ("kept", "gone")
    )
    ledger.delete_user(context, gone)
    followers = {
        TokensProjection().name: services.tokens,
        AuditProjection().name: services.audit,
    }
    assert retention_candidates(ledger, services.sql, followers) == []  # no policy yet
    keep_deleted_for(ledger, 0)
    assert retention_candidates(ledger, services.sql, followers) == [gone]
    assert ledger.sweep_retention(gone, loaded(ledger, gone).modified_on)
    assert retention_candidates(ledger, services.sql, followers) == []
    assert not loaded(ledger, kept).deleted


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * DAY), ("12h", 12 * 3600), (" 0d ", 0), ("never", None), ("3650d", 3650 * DAY)],
)
def test_a_period_is_days_or_hours_or_never(text: str, seconds: int | None) -> None:
    assert retention.parse_period(text) == seconds


@pytest.mark.parametrize("text", ["30", "1y", "3651d", "-1d", "30d\x1b[2J", "99999999d"])
def test_a_bad_period_is_refused(text: str) -> None:
    with pytest.raises(InvalidSettings):
        retention.parse_period(text)


def test_the_period_is_set_and_shown_by_the_cli(database_url: str, ledger: Ledger) -> None:
    context_for(ledger)
    done = cli_in_process(
        "settings", "set", "--org", "acme", "--erase-deleted-after", "30d", database=database_url
    )
    assert done.returncode == 0, done.stderr
    assert '"erase_deleted_after_seconds": 2592000' in done.stdout
    never = cli_in_process(
        "settings", "set", "--org", "acme", "--erase-deleted-after", "never", database=database_url
    )
    assert '"erase_deleted_after_seconds": null' in never.stdout
    bad = cli_in_process(
        "settings", "set", "--org", "acme", "--erase-deleted-after", "1y", database=database_url
    )
    assert bad.returncode == 1
    assert "use never, or days or hours such as 30d, 12h" in bad.stderr


@pytest.mark.parametrize("value", [-1, 3651 * DAY, True, "30d", 2**70])
def test_the_settings_bound_the_period(ledger: Ledger, value: object) -> None:
    context_for(ledger)
    before = head(ledger)
    with pytest.raises(InvalidSettings, match="erase_deleted_after_seconds must be 0 to"):
        keep_deleted_for(ledger, value)  # type: ignore[arg-type]
    assert head(ledger) == before
