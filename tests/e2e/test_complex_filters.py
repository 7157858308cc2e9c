"""A filter within the documented limits runs on both databases; a statement the database
refuses to run is the client's 400, never a 503 (which tells a client to retry forever)."""

from __future__ import annotations

import pytest

from scimledger.http.services import Services
from scimledger.projections.sql import SQL, StatementRefused
from tests.scim import SEARCH_REQUEST as SEARCH
from tests.scim import Client


def chain(joiner: str, count: int) -> str:
    return f" {joiner} ".join(f'userName co "{n:03d}"' for n in range(count))


@pytest.mark.parametrize("count", [100, 190])
def test_a_long_chain_of_or_terms_runs(
    client: Client,
    count: int,
) -> None:
    for name in ("u-007@example.com", "u-150@example.com", "u-999@example.com"):
        assert client.post("/scim/v2/Users", json={"userName": name}).status_code == 201
    expression = chain("or", count)
    assert len(expression) <= 4096
    found = client.get("/scim/v2/Users", params={"filter": expression})
    assert found.status_code == 200, found.text
    expected = ["u-007@example.com"] + (["u-150@example.com"] if count > 150 else [])
    assert sorted(user["userName"] for user in found.json()["Resources"]) == expected
    searched = client.post(
        "/scim/v2/Users/.search", json={"schemas": [SEARCH], "filter": expression}
    )
    assert searched.status_code == 200, searched.text
    assert searched.json()["totalResults"] == len(expected)


def test_a_long_chain_of_and_terms_and_mixed_chains_run(
    client: Client,
) -> None:
    assert client.post("/scim/v2/Users", json={"userName": "abc@example.com"}).status_code == 201
    ands = " and ".join(['userName co "a"'] * 100)
    mixed = " or ".join(f'(userName co "{n:03d}" and active eq true)' for n in range(40))
    for expression, total in [(ands, 1), (mixed, 0), (f"{mixed} or {ands}", 1)]:
        assert len(expression) <= 4096
        found = client.get("/scim/v2/Users", params={"filter": expression})
        assert (found.status_code, found.json()["totalResults"]) == (200, total), found.text


def test_a_statement_the_database_refuses_is_statement_refused(services: Services) -> None:
    if services.ledger.database.kind == "sqlite":  # its parser's stack: 100 levels
        too_deep = "SELECT " + "(" * 300 + "1" + ")" * 300
    else:  # PostgreSQL's stack depth (SQLSTATE 54001)
        too_deep = "SELECT 1" + " + 1" * 200_000
    with services.sql.transaction(commit=False) as cursor, pytest.raises(StatementRefused):
        cursor.execute(too_deep)
    with SQL(services.ledger).transaction(commit=False) as cursor:
        cursor.execute("SELECT 1")  # the connection is still good
        assert cursor.fetchall()
