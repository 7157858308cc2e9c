"""The console's people and groups pages over HTTP, on both databases: search, status and
paging; a user's attributes, groups, history and state at a date and time; a group's members
page by page; other organizations' people not found; client values shown as text."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from scimledger.http.services import Services
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.projections.scim import extension_holders
from tests.conftest import issue
from tests.e2e.console import RITA, sign_in
from tests.scim import CORE_GROUP, CORE_USER, ENTERPRISE_USER, Client, bearer, patch_op

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;"
AGENT = "Okta SCIM Client 1.0"


def provision(client: Client, user_name: str, **attributes: Any) -> str:
    response = client.post(
        "/scim/v2/Users",
        json={"schemas": [CORE_USER], "userName": user_name, **attributes},
        headers={"User-Agent": AGENT},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def group_of(client: Client, name: str, members: list[str]) -> str:
    body = {
        "schemas": [CORE_GROUP],
        "displayName": name,
        "members": [{"value": member} for member in members],
    }
    response = client.post("/scim/v2/Groups", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def retitle(client: Client, user_id: str, title: str) -> None:
    response = client.patch(
        f"/scim/v2/Users/{user_id}",
        json=patch_op({"op": "replace", "path": "title", "value": title}),
        headers={"User-Agent": AGENT},
    )
    assert response.status_code == 200, response.text


def linked(page: str, kind: str = "people") -> list[str]:
    """The names a page's table cells link to, in order (the user names of a people list)."""
    found = re.findall(rf'<td><a href="/console/{kind}/[0-9a-f-]{{36}}">([^<]*)</a></td>', page)
    return [html.unescape(name) for name in found]


def text_of(page: str) -> str:
    """A page's text, tags removed (a cell's, a line's or an item's end as a space), spaces
    collapsed."""
    text = re.sub(r"<(?:br|/td|/th|/li|/dt|/dd|/p)>", " ", page)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split())


def test_search_finds_people_by_user_name_name_or_email_in_this_organization_only(
    console: Client, services: Services, client: Client
) -> None:
    provision(
        client,
        "alovelace",
        name={"formatted": "Augusta Ada King", "givenName": "Augusta", "familyName": "King"},
        emails=[{"value": "countess@analytical.example", "type": "work"}],
    )
    provision(client, "cbabbage", displayName="Charles Babbage")
    globex = issue(services.ledger, org="globex", name="Globex")
    other = client.post(
        "/scim/v2/Users",
        json={"userName": "alovelace-of-globex", "name": {"formatted": "Augusta"}},
        headers=bearer(globex.token),
    )
    assert other.status_code == 201
    sign_in(console, services)
    for search, found in (
        ("alovelace", ["alovelace"]),
        ("AUGUSTA ada", ["alovelace"]),
        ("king", ["alovelace"]),
        ("countess@analytical", ["alovelace"]),
        ("babbage", ["cbabbage"]),
        ("a", ["alovelace", "cbabbage"]),
        ('" or userName pr or "', []),
        ("nobody", []),
    ):
        page = console.get("/console/people", params={"q": search})
        assert page.status_code == 200
        assert linked(page.text) == found, search
    assert linked(console.get("/console/people").text) == ["alovelace", "cbabbage"]
    assert "No one matches “nobody”." in text_of(
        console.get("/console/people", params={"q": "nobody"}).text
    )


def test_a_search_follows_renames_and_deletions_and_takes_what_is_typed_literally(
    console: Client, services: Services, client: Client
) -> None:
    provision(client, "odd", displayName="100% off_sale \\ today")
    renamed = provision(client, "renamed", displayName="Before Rename")
    gone = provision(client, "gone", displayName="Soon Gone")
    provision(client, "plain", displayName="Plain Name")
    sign_in(console, services)

    def found(search: str) -> list[str]:
        page = console.get("/console/people", params={"q": search})
        assert page.status_code == 200, page.text
        return linked(page.text)

    # LIKE's and GLOB's wildcards and escapes are characters like any other.
    assert [found(typed) for typed in ("%", "_", "\\", "0% o", "f_s", "sale \\ to")] == [
        ["odd"]
    ] * 6
    assert found("before rename") == ["renamed"]
    response = client.patch(
        f"/scim/v2/Users/{renamed}",
        json=patch_op({"op": "replace", "path": "displayName", "value": "After Change"}),
    )
    assert response.status_code == 200, response.text
    assert client.delete(f"/scim/v2/Users/{gone}").status_code == 204
    assert (found("before rename"), found("after change"), found("soon gone")) == (
        [],
        ["renamed"],
        [],
    )
    assert found("e") == ["odd", "plain", "renamed"]  # short: read in name order


def test_people_are_shown_by_status(console: Client, services: Services, client: Client) -> None:
    provision(client, "stays")
    provision(client, "leaves", active=False)
    sign_in(console, services)
    shown = {
        status: linked(console.get("/console/people", params={"status": status}).text)
        for status in ("all", "active", "inactive")
    }
    assert shown == {"all": ["leaves", "stays"], "active": ["stays"], "inactive": ["leaves"]}
    row = re.search(r">leaves</a></td>.*?</tr>", console.get("/console/people").text, re.S)
    assert row is not None
    assert '<span class="status inactive">inactive</span>' in row.group(0)


def link(page: str, rel: str) -> str | None:
    """Where a page's Previous (rel="prev") or Next (rel="next") link leads, if it has one."""
    found = re.search(rf'href="([^"]+)" rel="{rel}"', page)
    return html.unescape(found.group(1)) if found else None


def test_people_are_paged_fifty_at_a_time_in_user_name_order(
    console: Client, services: Services, client: Client
) -> None:
    for n in reversed(range(120)):
        provision(client, f"user{n:03}", active=n % 2 == 0)
    last = provision(client, "zed")
    sign_in(console, services)
    first = console.get("/console/people").text
    assert linked(first) == [f"user{n:03}" for n in range(50)]
    assert link(first, "prev") is None
    following = link(first, "next")
    assert following is not None
    assert following.startswith("/console/people?status=all&after=")
    second = console.get(following).text
    assert linked(second) == [f"user{n:03}" for n in range(50, 100)]
    following = link(second, "next")
    assert following is not None
    third = console.get(following).text
    assert linked(third) == [*(f"user{n:03}" for n in range(100, 120)), "zed"]
    assert link(third, "next") is None
    previous = link(third, "prev")
    assert previous is not None
    assert linked(console.get(previous).text) == [f"user{n:03}" for n in range(50, 100)]
    past_the_end = console.get(f"/console/people?after={last}").text
    assert linked(past_the_end) == linked(first)
    inactive = console.get("/console/people", params={"status": "inactive", "q": "user1"})
    assert linked(inactive.text) == [f"user{n:03}" for n in range(101, 120, 2)]


def test_the_empty_lists_say_what_to_do(console: Client, services: Services) -> None:
    sign_in(console, services)
    people = text_of(console.get("/console/people").text)
    assert "No people yet. Connect your identity provider (see SCIM setup)" in people
    assert 'href="/console/setup"' in console.get("/console/people").text
    groups = text_of(console.get("/console/groups").text)
    assert "No groups yet. Your identity provider pushes them once it is connected" in groups


def history(page: str) -> list[tuple[str, ...]]:
    """The history's entries as the page shows them: (actor, action, what changed, from
    where) of each, in order (the time left out)."""
    table = page[page.index('id="history"') :]
    rows = re.findall(r"<tr>\s*<td>.*?</tr>", table, re.S)
    return [
        tuple(text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S))[1:]
        for row in rows
    ]


def section(page: str, start: str, end: str) -> str:
    """The part of a page from the element with id `start` to the one with id `end`."""
    return page[page.index(f'id="{start}"') : page.index(f'id="{end}"')]


def test_a_users_page_shows_attributes_groups_and_who_changed_what_from_where(
    console: Client, services: Services, client: Client
) -> None:
    user_id = provision(
        client,
        "grace@example.com",
        name={"givenName": "Grace", "familyName": "Hopper"},
        displayName="Grace Hopper",
        title="Engineer",
        emails=[{"value": "grace@example.com", "type": "work", "primary": True}],
    )
    group_id = group_of(client, "Engineers", [user_id])
    retitle(client, user_id, "Director")
    sign_in(console, services)
    page = console.get(f"/console/people/{user_id}")
    assert page.status_code == 200
    assert "<h1>Grace Hopper</h1>" in page.text
    attributes = section(page.text, "attributes", "groups")
    for name, value in (
        ("userName", "grace@example.com"),
        ("name.givenName", "Grace"),
        ("name.familyName", "Hopper"),
        ("displayName", "Grace Hopper"),
        ("title", "Director"),
        ("emails", "grace@example.com (type: work, primary: yes)"),
    ):
        assert f"<dt>{name}</dt><dd>{value}</dd>" in attributes
    groups = section(page.text, "groups", "state-at")
    assert f'<a href="/console/groups/{group_id}">Engineers</a>' in groups
    okta = "Okta (token, issued by operator:tester)"
    origin = "testclient Okta SCIM Client 1.0"
    assert history(page.text) == [
        (okta, "user.updated", "title Engineer -> Director", origin),
        (
            okta,
            "user.created",
            "userName (none) -> grace@example.com"
            ' name (none) -> {"givenName":"Grace","familyName":"Hopper"}'
            " displayName (none) -> Grace Hopper"
            " title (none) -> Engineer"
            ' emails (none) -> [{"value":"grace@example.com","type":"work","primary":true}]'
            " active (none) -> true",
            origin,
        ),
    ]


def test_the_state_at_a_past_time_shows_the_values_of_then(
    console: Client, services: Services, client: Client
) -> None:
    user_id = provision(client, "grace@example.com", title="Engineer")
    between = datetime.now(UTC)
    time.sleep(0.01)
    retitle(client, user_id, "Director")
    sign_in(console, services)
    page = console.get(f"/console/people/{user_id}", params={"at": between.isoformat()})
    assert page.status_code == 200
    then = section(page.text, "state-at", "history")
    assert "<dt>title</dt><dd>Engineer</dd>" in then
    assert "Director" not in then
    assert f'value="{between:%Y-%m-%dT%H:%M:%S}"' in then
    assert "In UTC, not your time zone" in then
    assert f"As at {between:%Y-%m-%d %H:%M:%S} UTC:" in text_of(then)
    before = console.get(f"/console/people/{user_id}", params={"at": "2001-01-01T00:00"})
    assert before.status_code == 200
    assert "This user did not exist at 2001-01-01 00:00:00 UTC: they had not been created yet" in (
        text_of(section(before.text, "state-at", "history"))
    )


@pytest.mark.parametrize(
    ("at", "problem"),
    [
        ("yesterday", "'yesterday' is not an ISO date or date-time."),
        ("2026-02-30T10:00", "'2026-02-30T10:00' is not an ISO date or date-time."),
        ("9999-01-01T00:00", "'9999-01-01T00:00' is out of range: dates go from 1970-01-01"),
        ("2026-01-01T00:00:00" + "0" * 40, "That date and time is too long"),
    ],
)
def test_a_bad_date_and_time_is_refused_with_what_is_wrong(
    console: Client, services: Services, client: Client, at: str, problem: str
) -> None:
    user_id = provision(client, "grace@example.com")
    sign_in(console, services)
    page = console.get(f"/console/people/{user_id}", params={"at": at})
    assert page.status_code == 400
    then = text_of(section(page.text, "state-at", "history"))
    assert problem in then
    assert '<div class="notice error" role="alert">' in page.text


def test_the_history_is_paged_newest_first(
    console: Client, services: Services, client: Client
) -> None:
    user_id = provision(client, "grace@example.com")
    for n in range(1, 56):
        retitle(client, user_id, f"t{n}")
    sign_in(console, services)
    path = f"/console/people/{user_id}"
    first = console.get(path).text
    titles = [f"title t{n - 1} -> t{n}" for n in range(55, 1, -1)] + ["title (none) -> t1"]
    assert [changes for _, _, changes, _ in history(first)] == titles[:50]
    older = re.search(r'href="([^"]+)" rel="next">Older</a>', first)
    assert older is not None
    assert 'rel="prev"' not in first
    second = console.get(html.unescape(older.group(1))).text
    assert [changes for _, _, changes, _ in history(second)][:5] == titles[50:]
    assert [action for _, action, _, _ in history(second)] == [
        *["user.updated"] * 5,
        "user.created",
    ]
    assert 'rel="next"' not in second
    newer = re.search(r'href="([^"]+)" rel="prev">Newer</a>', second)
    assert newer is not None
    assert [
        changes for _, _, changes, _ in history(console.get(html.unescape(newer.group(1))).text)
    ] == titles[:50]


def test_a_groups_members_are_paged_by_id(
    console: Client, services: Services, client: Client
) -> None:
    ids = {provision(client, f"m{n:03}"): f"m{n:03}" for n in range(120)}
    group_id = group_of(client, "Everyone", list(ids))
    names = [ids[user_id] for user_id in sorted(ids)]
    sign_in(console, services)
    page = console.get(f"/console/groups/{group_id}").text
    assert "<dt>Members</dt><dd>120</dd>" in page
    assert linked(page) == names[:50]
    following = re.search(r'href="([^"]+)" rel="next">Next</a>', page)
    assert following is not None
    second = console.get(html.unescape(following.group(1))).text
    assert linked(second) == names[50:100]
    previous = re.search(r'href="([^"]+)" rel="prev">Previous</a>', second)
    assert previous is not None
    assert linked(console.get(html.unescape(previous.group(1))).text) == names[:50]
    following = re.search(r'href="([^"]+)" rel="next">Next</a>', second)
    assert following is not None
    third = console.get(html.unescape(following.group(1))).text
    assert linked(third) == names[100:]
    assert 'rel="next">Next' not in third
    first_ten = ",".join(f'"{user_id}"' for user_id in sorted(ids)[:10])  # as recorded
    assert history(page)[:2] == [
        (
            "Okta (token, issued by operator:tester)",
            "group.members_added",
            f"members added: [{first_ten}] and 110 more",
            "testclient testclient",
        ),
        (
            "Okta (token, issued by operator:tester)",
            "group.created",
            "displayName (none) -> Everyone",
            "testclient testclient",
        ),
    ]
    listed = console.get("/console/groups").text
    assert '">Everyone</a></td>' in listed
    assert "<td>120</td>" in listed


def test_another_organizations_people_and_groups_are_not_found(
    console: Client, services: Services, client: Client
) -> None:
    globex = bearer(issue(services.ledger, org="globex", name="Globex").token)
    theirs = client.post("/scim/v2/Users", json={"userName": "x@globex.example"}, headers=globex)
    their_group = client.post("/scim/v2/Groups", json={"displayName": "G"}, headers=globex)
    sign_in(console, services)
    for path in (
        f"/console/people/{theirs.json()['id']}",
        f"/console/people/{theirs.json()['id']}?at=2030-01-01",
        f"/console/groups/{their_group.json()['id']}",
        "/console/people/not-an-id",
        "/console/groups/00000000-0000-4000-8000-000000000000",
    ):
        page = console.get(path)
        assert page.status_code == 404, path
        assert "no such person, group, token or webhook in your organization" in page.text
        assert "globex" not in page.text


def test_client_values_are_shown_as_text_on_every_people_page(
    console: Client, services: Services, client: Client
) -> None:
    user_id = provision(client, HOSTILE, displayName=HOSTILE, title=HOSTILE)
    group_id = group_of(client, HOSTILE, [user_id])
    response = client.patch(
        f"/scim/v2/Users/{user_id}",
        json=patch_op({"op": "replace", "path": "displayName", "value": HOSTILE + "!"}),
        headers={"User-Agent": HOSTILE},
    )
    assert response.status_code == 200
    sign_in(console, services)
    for path, params in (
        ("/console/people", {}),
        ("/console/people", {"q": HOSTILE}),
        (f"/console/people/{user_id}", {"at": datetime.now(UTC).isoformat()}),
        ("/console/groups", {}),
        ("/console/groups", {"q": HOSTILE}),
        (f"/console/groups/{group_id}", {}),
    ):
        page = console.get(path, params=params)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text, path
        assert "<img src=x" not in page.text, path
        assert ESCAPED in page.text, path


def test_a_reviewer_sees_every_people_page(
    console: Client, services: Services, client: Client
) -> None:
    user_id = provision(client, "grace@example.com")
    group_id = group_of(client, "Engineers", [user_id])
    sign_in(console, services, RITA)
    for path in (
        "/console/people",
        "/console/groups",
        f"/console/people/{user_id}",
        f"/console/groups/{group_id}",
    ):
        page = console.get(path)
        assert page.status_code == 200, path
        assert '<a href="/console/people"' in page.text
        assert '<a href="/console/groups"' in page.text
    assert "grace@example.com" in console.get("/console/people").text


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/console/groups?page=0", "page must be a whole number from 1 to 100000."),
        ("/console/groups?page=two", "page must be a whole number from 1 to 100000."),
        ("/console/people?after=user000", "after must be a person's id."),
        ("/console/people?before=%00", "before must be a person's id."),
        ("/console/groups?page=100001", "page must be a whole number from 1 to 100000."),
        ("/console/groups?page=%C2%B2", "page must be a whole number from 1 to 100000."),
        ("/console/people/{user}?newer=" + "9" * 5000, "newer must be a whole number from 1 to"),
        ("/console/people?status=gone", "Show all, active or inactive people."),
        ("/console/people?q=" + "x" * 201, "A search is at most 200 characters long."),
        ("/console/people?q=a%00b", "A search cannot hold a NUL character."),
        ("/console/people/{user}?older=-1", "older must be a whole number from 1 to"),
        ("/console/groups/{group}?after=zzz", "after must be a person's id."),
    ],
)
def test_bad_query_parameters_are_refused_with_what_is_wrong(
    console: Client, services: Services, client: Client, path: str, problem: str
) -> None:
    user_id = provision(client, "grace@example.com")
    group_id = group_of(client, "Engineers", [user_id])
    sign_in(console, services)
    page = console.get(path.format(user=user_id, group=group_id))
    assert page.status_code == 400
    assert problem in html.unescape(page.text)


def test_a_users_page_shows_declared_extension_values_by_schema_name_as_text(
    console: Client, services: Services, client: Client
) -> None:
    urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
    schema = {"id": urn, "name": "AcmeUser", "attributes": [{"name": "costCenter"}]}
    actor, request = Actor.operator("tests"), RequestInfo.local()
    holders = extension_holders(services.sql)
    services.ledger.declare_schema("acme", schema, actor, request, holders)
    user_id = provision(
        client,
        "ada@example.com",
        **{urn: {"costCenter": HOSTILE}, ENTERPRISE_USER: {"costCenter": "CC-7"}},
    )
    narrower = {**schema, "attributes": [{"name": "site"}]}
    sign_in(console, services)

    shown = section(console.get(f"/console/people/{user_id}").text, "attributes", "groups")
    services.ledger.declare_schema("acme", narrower, actor, request, holders)
    hidden = section(console.get(f"/console/people/{user_id}").text, "attributes", "groups")

    assert f"<dt>AcmeUser.costCenter</dt><dd>{ESCAPED}</dd>" in shown
    assert "<dt>costCenter</dt><dd>CC-7</dd>" in shown  # the enterprise one's
    assert "AcmeUser" not in hidden  # no longer declared: not shown
    assert "<dt>costCenter</dt><dd>CC-7</dd>" in hidden
