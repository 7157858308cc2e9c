"""A write the ledger committed, after which the read model cannot be waited for (the
database went away right after the commit, or the read model is far behind).

A create or a delete is answered from what was written, not from the read model: it is
answered as done (201, 204), since it is; a 503 there made the client retry, and a retried
create met its own user: 409. The read model catches up once it can.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from scimledger.http.app import create_app
from scimledger.http.services import Following, Services
from scimledger.ledger.availability import DatabaseUnavailable
from scimledger.ledger.commands import IssuedToken
from tests.scim import Client


class Stalled:
    """The SCIM read model, but waiting for it fails as `failure` says."""

    def __init__(self, following: Following, failure: Exception) -> None:
        self._following = following
        self.failure = failure

    def wait_for(self, position: int | None, timeout: float = 30.0) -> None:
        raise self.failure

    def catch_up(self) -> int:
        return self._following.catch_up()


@pytest.fixture(
    params=[
        DatabaseUnavailable("the database is unreachable"),
        TimeoutError("scim_read_model_v6 did not reach position 9"),
    ],
    ids=["unavailable", "behind"],
)
def stalled(
    request: pytest.FixtureRequest, services: Services, token: IssuedToken
) -> Iterator[Client]:
    app = create_app(dataclasses.replace(services, scim=Stalled(services.scim, request.param)))
    with TestClient(app=app, base_url="http://scim.test") as client:
        client.headers["Authorization"] = f"Bearer {token.token}"
        yield client


def test_a_committed_create_is_answered_201(
    stalled: Client,
    client: Client,
    services: Services,
) -> None:
    created = stalled.post("/scim/v2/Users", json={"userName": "bjensen@example.com"})
    assert created.status_code == 201, created.text
    assert created.json()["userName"] == "bjensen@example.com"
    user_id = created.json()["id"]
    services.scim.catch_up()  # as it does once it can
    found = client.get(f"/scim/v2/Users/{user_id}")
    assert (found.status_code, found.json()["userName"]) == (200, "bjensen@example.com")
    again = stalled.post("/scim/v2/Users", json={"userName": "bjensen@example.com"})
    assert again.status_code == 409  # still a conflict for a real duplicate


def test_a_committed_delete_is_answered_204(
    stalled: Client,
    client: Client,
    services: Services,
) -> None:
    user = client.post("/scim/v2/Users", json={"userName": "gone@example.com"}).json()
    group = client.post("/scim/v2/Groups", json={"displayName": "Gone"}).json()
    assert stalled.delete(f"/scim/v2/Users/{user['id']}").status_code == 204
    assert stalled.delete(f"/scim/v2/Groups/{group['id']}").status_code == 204
    services.scim.catch_up()
    assert client.get(f"/scim/v2/Users/{user['id']}").status_code == 404
    assert client.get(f"/scim/v2/Groups/{group['id']}").status_code == 404


def test_a_write_answered_from_the_read_model_still_answers_503(
    stalled: Client,
    client: Client,
    services: Services,
) -> None:
    """A PATCH's answer is the resource as the read model has it: without it, no answer but
    503 (a retried PATCH applies the same change again, harmlessly)."""
    user = client.post("/scim/v2/Users", json={"userName": "patched@example.com"}).json()
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    answered = stalled.patch(f"/scim/v2/Users/{user['id']}", json=patch)
    assert answered.status_code == 503
    services.scim.catch_up()
    assert client.get(f"/scim/v2/Users/{user['id']}").json()["active"] is False
