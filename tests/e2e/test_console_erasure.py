"""The console's erasure: an admin erases a person from their page, after a confirmation
page that asks the reason (and, for an active user, to confirm that too); a deleted user's
page shows their history and the same button; a reviewer cannot erase."""

from __future__ import annotations

import html
from uuid import UUID

import pytest

from scimledger.http.services import Services
from scimledger.ledger.commands import NewUser
from scimledger.ledger.users import User
from tests.e2e.console import ORIGIN, RITA, events_of, sign_in
from tests.integration.test_ledger import context_for
from tests.scim import Client

pytestmark = pytest.mark.sqlite_only  # the pages' part; erasure runs on both elsewhere

HOSTILE = "<script>alert(1)</script>@example.com"


def user(services: Services, name: str = HOSTILE, *, active: bool = True) -> UUID:
    return services.ledger.create_user(
        context_for(services.ledger), NewUser({"userName": name}, active=active)
    ).id


def test_an_admin_erases_an_active_user_after_confirming_both(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    user_id = user(services)
    shown = console.get(f"/console/people/{user_id}").text
    assert f'<a href="/console/people/{user_id}/erase" class="danger">' in shown
    confirm = console.get(f"/console/people/{user_id}/erase")
    assert confirm.status_code == 200
    assert "This user is active: erasing them deletes them first" in confirm.text
    assert html.escape(HOSTILE) in confirm.text
    assert HOSTILE not in confirm.text
    assert 'name="force" value="yes" required' in confirm.text
    unforced = console.post(
        f"/console/people/{user_id}/erase",
        data={"csrf": csrf, "reason": "DSR-3"},
        headers=ORIGIN,
    )
    assert unforced.status_code == 409
    assert events_of(services, User.UserErased) == []
    done = console.post(
        f"/console/people/{user_id}/erase",
        data={"csrf": csrf, "reason": "DSR-3", "force": "yes"},
        headers=ORIGIN,
    )
    assert done.status_code == 200, done.text
    assert "Personal data erased" in done.text
    assert len(events_of(services, User.UserErased)) == 1
    gone = console.get(f"/console/people/{user_id}").text
    assert "Erased: their personal data can no longer be read" in gone
    assert "/erase" not in gone
    assert "alert(1)" not in gone
    assert "[erased]" in gone


def test_a_deleted_users_page_has_their_history_and_the_erase_button(
    console: Client, services: Services
) -> None:
    sign_in(console, services)
    user_id = user(services, "gone@example.com")
    services.ledger.delete_user(context_for(services.ledger), user_id)
    page = console.get(f"/console/people/{user_id}")
    assert page.status_code == 200
    assert "<h1>Deleted user gone@example.com</h1>" in page.text
    assert f'<a href="/console/people/{user_id}/erase" class="danger">' in page.text
    confirm = console.get(f"/console/people/{user_id}/erase").text
    assert "This user is active" not in confirm
    assert 'name="force"' not in confirm


def test_a_request_without_the_forms_token_or_a_reason_erases_nothing(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    user_id = user(services, active=False)
    forged = console.post(
        f"/console/people/{user_id}/erase", data={"reason": "DSR-3"}, headers=ORIGIN
    )
    assert forged.status_code == 403
    blank = console.post(
        f"/console/people/{user_id}/erase", data={"csrf": csrf, "reason": " "}, headers=ORIGIN
    )
    assert blank.status_code == 400
    assert "give the erasure&#39;s reason" in blank.text
    assert events_of(services, User.UserErased) == []


def test_a_reviewer_sees_no_button_and_cannot_erase(console: Client, services: Services) -> None:
    csrf = sign_in(console, services, RITA)
    user_id = user(services, active=False)
    assert "/erase" not in console.get(f"/console/people/{user_id}").text
    assert console.get(f"/console/people/{user_id}/erase").status_code == 403
    refused = console.post(
        f"/console/people/{user_id}/erase", data={"csrf": csrf, "reason": "x"}, headers=ORIGIN
    )
    assert refused.status_code == 403
    assert events_of(services, User.UserErased) == []


def test_an_admin_sets_the_retention_period_and_a_reviewer_reads_it(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    assert 'name="period" value="never"' in console.get("/console/admins").text
    saved = console.post(
        "/console/admins/retention", data={"csrf": csrf, "period": "30d"}, headers=ORIGIN
    )
    assert saved.status_code == 200  # followed to the page
    assert services.ledger.settings("acme")["erase_deleted_after_seconds"] == 30 * 86_400
    assert 'name="period" value="30d"' in saved.text
    bad = console.post(
        "/console/admins/retention", data={"csrf": csrf, "period": "<b>1y"}, headers=ORIGIN
    )
    assert bad.status_code == 400
    assert "use never, or days or hours such as 30d, 12h" in bad.text
    assert "<b>1y" not in bad.text
    sign_in(console, services, RITA)
    assert "Erased after: <strong>30d</strong>." in console.get("/console/admins").text
