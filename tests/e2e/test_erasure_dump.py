"""The proof of erasure (issue 21): after a person is erased, a full dump of the database
(`pg_dump`; SQLite's `.dump`), every event's payload uncompressed, and the server's logs hold
none of their values, in any encoding the code writes them in. The same search finds the
values of a person who was not erased: it can fail."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest

from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.names import NameIndex, normalize_name
from scimledger.ledger.schemas import CORE_GROUP, CORE_USER
from tests.conftest import all_stored
from tests.e2e.conftest import Server, call, cli_in_process

pytestmark = pytest.mark.slow


def person(tag: str) -> dict[str, Any]:
    """A person whose every value is their own (`tag` in each), with characters that take
    another form in JSON, SQL and case folding."""
    return {
        "schemas": [CORE_USER],
        "userName": f"Ærin.{tag}@Example.COM",
        "externalId": f"okta-{tag}-00u1",
        "name": {"givenName": f"Zoë{tag}", "familyName": f"O'Quennell{tag}"},
        "displayName": f"Zoë O'Quennell {tag}",
        "nickName": f"Zed{tag}",
        "title": f'=HYPERLINK("http://{tag}.example")',
        "emails": [{"value": f"home.{tag}@example.org", "type": "home"}],
        "phoneNumbers": [{"value": f"+44 20 7946 {tag}"}],
        "addresses": [{"streetAddress": f"{tag} Baker Street", "locality": "London"}],
        "password": f"Secret-{tag}-Passw0rd",
        "active": True,
        # A declared extension's values (issue 22), one of them unique (a keyed index).
        ACME: {"badge": f"Badge-{tag}", "employeeId": f"E-{tag}"},
    }


ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
ACME_SCHEMA = {
    "id": ACME,
    "attributes": [{"name": "badge"}, {"name": "employeeId", "uniqueness": "server"}],
}


def values(tag: str) -> list[str]:
    """Every value of the person's, as sent."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and tag in value:
            found.append(value)

    walk({k: v for k, v in person(tag).items() if k != "password"})
    return [*found, f"Lead {tag}"]  # and a value an update gave


def encodings(value: str) -> set[str]:
    """The forms the code writes a value in: as it is, JSON-escaped (ASCII or not),
    case-folded and normalized (the userName index's form); and those the dumps write it in:
    SQL-quoted (`.dump`), with backslashes doubled (pg_dump's COPY text)."""
    escaped = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {
        value,
        *escaped,
        *(form.replace("\\", "\\\\") for form in escaped),
        normalize_name(value),
        value.replace("'", "''"),
    }


def admin_call(server: Server, method: str, path: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        server.base_url.removesuffix("/scim/v2") + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def token(database: str, *scopes: str) -> str:
    argv = ["tokens", "issue", "--org", "acme", "--name", "t", "--expires", "never", "--json"]
    for scope in scopes:
        argv += ["--scope", scope]
    issued = cli_in_process(*argv, database=database)
    assert issued.returncode == 0, issued.stderr
    return str(json.loads(issued.stdout)["token"])


def dumped(database: str) -> str:
    url = DatabaseURL.parse(database)
    if url.kind == "sqlite":
        command = ["sqlite3", url.path, ".dump"]
    else:
        command = ["pg_dump", "--no-owner", database]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert len(done.stdout) > 10_000  # a dump of everything
    return done.stdout


def payloads(database: str) -> str:
    """Every event's payload uncompressed, and every event as the ledger reads it with the
    master key and the data keys in the database: what a dump and the master key give."""
    ledger = Ledger(DatabaseURL.parse(database))
    try:
        notifications = ledger.recorder.select_notifications(start=1, limit=100_000)
        read = [
            json.dumps(vars(ledger.mapper.to_domain_event(n)), default=str, ensure_ascii=False)
            for n in notifications
        ]
        return "\n".join((all_stored(ledger).decode("utf-8", "replace"), *read))
    finally:
        ledger.close()


def test_an_erased_persons_values_are_in_no_dump_payload_or_log(server: Server) -> None:
    scim = token(server.database)
    admin = token(server.database, "admin", "audit:read")
    admin_call(server, "POST", "/admin/v1/schemas", admin, {"schema": ACME_SCHEMA})
    ids: dict[str, str] = {}
    for tag in ("4711", "5822"):  # the one erased, and the one kept
        # Okta looks a user up by userName before it creates them.
        lookup = quote(f'userName eq "{person(tag)["userName"]}"')
        looked = call(server, "GET", f"/Users?filter={lookup}", scim)
        assert looked.status == 200
        created = call(server, "POST", "/Users", scim, person(tag))
        assert created.status == 201, created.body
        ids[tag] = created.body["id"]
        patched = call(
            server,
            "PATCH",
            f"/Users/{ids[tag]}",
            scim,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"title": f"Lead {tag}"}}],
            },
        )
        assert patched.status == 200, patched.body
    group = call(
        server,
        "POST",
        "/Groups",
        scim,
        {
            "schemas": [CORE_GROUP],
            "displayName": "Staff",
            "members": [{"value": ids["4711"]}, {"value": ids["5822"]}],
        },
    )
    assert group.status == 201, group.body
    assert call(server, "DELETE", f"/Users/{ids['4711']}", scim).status == 204
    erased = admin_call(
        server, "POST", f"/admin/v1/users/{ids['4711']}/erase", admin, {"reason": "DSR-1"}
    )
    assert erased["changed"] is True
    deadline = time.monotonic() + 20
    while True:  # the server's audit trail follows the log: until it has the erasure
        history = admin_call(server, "GET", f"/admin/v1/users/{ids['4711']}/history", admin)
        if history["entries"][-1]["action"] == "user.erased" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert history["entries"][-1]["action"] == "user.erased"

    haystack = "\n".join((dumped(server.database), payloads(server.database), server.output()))
    folded = normalize_name(haystack)

    def found(value: str) -> list[str]:
        return sorted(
            form for form in encodings(value) if form in haystack or normalize_name(form) in folded
        )

    kept = {value: found(value) for value in values("5822")}
    assert all(kept.values()), kept  # the search finds a person who was not erased
    leaks = {value: forms for value in values("4711") if (forms := found(value))}
    assert leaks == {}
    for tag in ("4711", "5822"):  # passwords: never stored, but as a hash
        assert found(person(tag)["password"]) == []
    # The userName index's id, as it was made before it was keyed: a guessed name's finds nothing.
    ledger = Ledger(DatabaseURL.parse(server.database))
    try:
        acme = ledger.organization_id("acme")
        assert acme is not None
    finally:
        ledger.close()
    old_index_id = str(NameIndex.create_id(acme, "userName", person("4711")["userName"]))
    assert old_index_id not in haystack
