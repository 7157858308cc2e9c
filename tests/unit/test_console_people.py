"""The console's people pages as pure functions: what the search looks in, the status
filter, values as people read them, and keyset pages."""

from __future__ import annotations

from scimledger.http.console.people import PAGE, facts, keyset, shown, status_filter
from scimledger.projections.filters import AttrPath, Compare
from scimledger.projections.scim import people_text


def test_the_people_search_looks_in_names_and_emails_case_folded_one_a_line() -> None:
    attributes = {
        "userName": "ALovelace",
        "displayName": "Ada",
        "name": {"formatted": "Augusta Ada King", "givenName": "Augusta", "familyName": "KING"},
        "emails": [{"value": "Ada@Example.com"}, {"value": "countess@example.org"}, "odd"],
        "title": "Countess",
        "nickName": "Ada Byron",
    }
    assert people_text(attributes) == (
        "alovelace\nada\naugusta ada king\naugusta\nking\nada@example.com\ncountess@example.org"
    )
    assert people_text({"userName": "x", "name": "not a complex value", "emails": None}) == "x"


def test_people_are_shown_by_status() -> None:
    assert status_filter("active") == Compare(AttrPath("active"), "eq", True)
    assert status_filter("inactive") == Compare(AttrPath("active"), "eq", False)
    assert status_filter("all") is None


def test_values_read_as_text() -> None:
    assert shown(None) == "(none)"
    assert shown([]) == "(none)"
    assert shown(True) == "yes"
    assert shown({"givenName": "Ada", "familyName": "King"}) == "givenName: Ada, familyName: King"
    assert shown([{"value": "a@x.example", "type": "work"}, {"value": "b@x.example"}]) == (
        "a@x.example (type: work); b@x.example"
    )


def test_attributes_read_as_rows_of_lines() -> None:
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    attributes = {
        "userName": "ada",
        "name": {"givenName": "Ada"},
        "emails": [{"value": "a@x.example", "primary": True}, {"value": "b@x.example"}],
        enterprise: {"department": "Analytics", "manager": {"value": "m1"}},
    }
    assert facts(attributes) == [
        ("userName", ["ada"]),
        ("name.givenName", ["Ada"]),
        ("emails", ["a@x.example (primary: yes)", "b@x.example"]),
        ("department", ["Analytics"]),
        ("manager", ["m1"]),
    ]


def test_keyset_pages_go_both_ways_and_fall_back_to_the_first() -> None:
    items = [f"{n:04}" for n in range(PAGE * 2 + 5)]

    def fetch(after: str | None, before: str | None, limit: int) -> list[str]:
        if before is not None:
            return [item for item in items if item < before][-limit:]
        return [item for item in items if after is None or item > after][:limit]

    first = keyset(fetch, str, None, None)
    assert (first.items, first.earlier, first.later) == (items[:PAGE], None, items[PAGE - 1])
    second = keyset(fetch, str, first.later, None)
    assert (second.items, second.earlier) == (items[PAGE : PAGE * 2], items[PAGE])
    last = keyset(fetch, str, second.later, None)
    assert (last.items, last.later) == (items[PAGE * 2 :], None)
    back = keyset(fetch, str, None, last.earlier)
    assert back == second
    assert keyset(fetch, str, None, second.earlier) == first
    assert keyset(fetch, str, items[-1], None) == first  # past the end
