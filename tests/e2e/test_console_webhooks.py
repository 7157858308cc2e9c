"""The console's Webhooks pages over HTTP: an admin adds an endpoint (its secret shown once),
disables, enables, replays and removes it and rotates its secret; a reviewer sees them; a
failing endpoint is said so; a hostile URL is shown as text."""

from __future__ import annotations

import html
import re
from uuid import UUID

import pytest
from httpx import Response

from scimledger.http.services import Services
from scimledger.ledger.webhooks import Webhook
from tests.e2e.console import ADA, ORIGIN, RITA, events_of, once_of, sign_in
from tests.scim import Client

URL = "https://hooks.example.com/scim"

pytestmark = pytest.mark.sqlite_only  # the pages' part; the commands run on both elsewhere


def add(console: Client, csrf: str, **more: object) -> Response:
    once = once_of(console.get("/console/webhooks/new").text)
    data = {"csrf": csrf, "once": once, "url": URL, **more}
    return console.post("/console/webhooks", data=data, headers=ORIGIN)


def secret_of(page: str) -> str:
    found = re.search(r'value="(whsec_[A-Za-z0-9+/=]{44})" readonly', page)
    assert found is not None, "no secret on the page"
    return found.group(1)


def only_webhook(services: Services) -> UUID:
    [added] = events_of(services, Webhook.Added)
    return UUID(str(added.originator_id))


def test_an_admin_adds_a_webhook_and_its_secret_is_shown_once(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    added = add(console, csrf, types=["user.deactivated", "user.deleted"])
    assert added.status_code == 201
    secret = secret_of(added.text)
    assert "it is shown this once" in added.text
    webhook_id = only_webhook(services)
    webhook = services.ledger.webhook(webhook_id)
    assert (webhook.url, webhook.types) == (URL, ["user.deactivated", "user.deleted"])
    listed = console.get("/console/webhooks").text
    assert f'<a href="/console/webhooks/{webhook_id}">{URL}</a>' in listed
    assert "user.deactivated, user.deleted" in listed
    assert '<span class="status enabled">enabled</span>' in listed
    shown = console.get(f"/console/webhooks/{webhook_id}").text
    for page in (listed, shown):
        assert secret.removeprefix("whsec_") not in page
    assert "No attempt yet." in shown


def test_the_same_form_sent_twice_adds_one_endpoint(console: Client, services: Services) -> None:
    csrf = sign_in(console, services)
    once = once_of(console.get("/console/webhooks/new").text)
    sent = {"csrf": csrf, "once": once, "url": URL}
    assert console.post("/console/webhooks", data=sent, headers=ORIGIN).status_code == 201
    again = console.post("/console/webhooks", data=sent, headers=ORIGIN)
    assert again.status_code == 409
    assert "the endpoint's signing secret was shown once" in html.unescape(again.text)
    assert len(events_of(services, Webhook.Added)) == 1


def test_disable_enable_rotate_replay_and_remove_from_the_pages(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    first = secret_of(add(console, csrf).text)
    webhook_id = only_webhook(services)
    path = f"/console/webhooks/{webhook_id}"

    def post(action: str, **data: str) -> int:
        sent = console.post(
            f"{path}/{action}", data={"csrf": csrf, **data}, headers=ORIGIN, follow_redirects=False
        )
        return sent.status_code

    assert post("disable") == 303
    assert '<span class="status disabled">disabled</span>' in console.get(path).text
    assert post("enable") == 303
    rotated = console.post(
        f"{path}/rotate",
        data={"csrf": csrf, "once": once_of(console.get(path).text), "grace": "1h"},
        headers=ORIGIN,
    )
    assert rotated.status_code == 201
    assert secret_of(rotated.text) != first
    assert "The previous secret signs deliveries too until" in rotated.text
    assert post("replay", **{"from": "evt_0"}) == 303
    assert post("replay", **{"from": "=cmd|calc"}) == 400
    assert console.get(f"{path}/remove").status_code == 200
    assert post("remove") == 303
    assert console.get(path).status_code == 404
    events = list(services.ledger.events.get(webhook_id))
    kinds = [type(event).__name__ for event in events]
    assert kinds == ["Added", "Disabled", "Enabled", "SecretRotated", "Replayed", "Removed"]
    actors = {(e.context.actor.kind, e.context.actor.name) for e in events}  # type: ignore[attr-defined]
    assert actors == {("person", ADA)}


def test_a_reviewer_sees_the_webhooks_and_changes_none(console: Client, services: Services) -> None:
    admin_csrf = sign_in(console, services)
    add(console, admin_csrf)
    webhook_id = only_webhook(services)
    console.cookies.clear()
    csrf = sign_in(console, services, RITA)
    listed = console.get("/console/webhooks").text
    assert URL in listed
    assert "Add webhook" not in listed
    page = console.get(f"/console/webhooks/{webhook_id}").text
    assert "Rotate secret" not in page
    assert console.get("/console/webhooks/new").status_code == 403
    for action in ("disable", "remove", "replay"):
        sent = console.post(
            f"/console/webhooks/{webhook_id}/{action}",
            data={"csrf": csrf, "from": "evt_0"},
            headers=ORIGIN,
        )
        assert sent.status_code == 403, action
    assert len(list(services.ledger.events.get(webhook_id))) == 1


def test_a_failing_endpoint_is_told_on_setup_and_on_its_pages(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    add(console, csrf)
    webhook_id = only_webhook(services)
    services.ledger.mark_webhook_failing(webhook_id, "500 Internal Server Error for 3 days")
    setup = console.get("/console/setup").text
    assert "1 webhook endpoint failing: your product no longer receives changes there." in setup
    assert f'<a href="/console/webhooks/{webhook_id}">{URL}</a>' in setup
    listed = console.get("/console/webhooks").text
    assert "1 endpoint failing" in listed
    assert "500 Internal Server Error for 3 days" in listed
    shown = console.get(f"/console/webhooks/{webhook_id}").text
    assert "Deliveries stopped after 3 days of errors" in shown
    assert '<button type="submit">Enable</button>' in shown
    enabled = console.post(
        f"/console/webhooks/{webhook_id}/enable",
        data={"csrf": csrf},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert enabled.status_code == 303
    assert "webhook endpoint failing" not in console.get("/console/setup").text


def test_a_bad_url_is_shown_with_the_form_kept_and_nothing_recorded(
    console: Client, services: Services
) -> None:
    csrf = sign_in(console, services)
    refused = add(console, csrf, url='http://x.example/"><script>alert(1)</script>')
    assert refused.status_code == 400
    assert "<script>alert(1)</script>" not in refused.text
    assert "&lt;script&gt;" in refused.text
    assert "https" in html.unescape(refused.text)
    assert once_of(refused.text)  # the form, kept, may be corrected and sent again
    assert events_of(services, Webhook.Added) == []


def test_a_hostile_url_is_shown_as_text(console: Client, services: Services) -> None:
    hostile = 'https://x.example/"><script>alert(1)</script>'
    csrf = sign_in(console, services)
    assert add(console, csrf, url=hostile).status_code == 201
    webhook_id = only_webhook(services)
    for path in ("/console/webhooks", f"/console/webhooks/{webhook_id}"):
        page = console.get(path).text
        assert "<script>alert(1)</script>" not in page
        assert "x.example/&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
