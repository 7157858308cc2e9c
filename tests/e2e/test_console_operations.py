"""The console's Operations page over HTTP, on both databases: each read model's lag and the
command that rebuilds it; admins only (issue 17)."""

from __future__ import annotations

import re

import pytest

from scimledger.http.services import Services
from tests.e2e.console import RITA, sign_in
from tests.scim import Client


@pytest.mark.no_read_models
def test_an_admin_sees_each_read_models_lag_and_its_rebuild_command(
    console: Client, services: Services
) -> None:
    sign_in(console, services)
    services.scim.catch_up()
    services.tokens.catch_up()
    services.audit.catch_up()
    page = console.get("/console/operations")
    assert page.status_code == 200
    rows = re.findall(
        r"<tr>\s*<td>([a-z0-9_]+)</td>\s*<td>([^<]+)</td>.*?class=\"status \w+\">(\w+)</span>",
        page.text,
        re.DOTALL,
    )
    head = services.ledger.recorder.max_notification_id()
    assert rows == [
        ("scim_read_model_v6", str(head), "ok"),
        ("ledger_chain_v1", "never started", "stalled"),  # no chain follower in these tests
        ("audit_trail_v4", str(head), "ok"),
        ("tokens_v4", str(head), "ok"),
    ]
    assert "<code>scimledger projections rebuild ledger_chain_v1</code>" not in page.text
    assert "<code>scimledger projections rebuild audit_trail_v4</code>" in page.text
    assert '<a href="/console/operations" aria-current="page">Operations</a>' in page.text


def test_a_reviewer_has_no_operations_page(console: Client, services: Services) -> None:
    sign_in(console, services, RITA)
    assert "/console/operations" not in console.get("/console/setup").text
    assert console.get("/console/operations").status_code == 403
