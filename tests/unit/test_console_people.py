"""The console's people pages as pure functions: the search's SCIM filter, values as people
read them, and keyset pages."""

from __future__ import annotations

from scimledger.http.console.people import PAGE, facts, keyset, people_filter, shown
from scimledger.projections.filters import And, AttrPath, Compare, Or


def test_a_search_is_one_string_value_whatever_it_holds() -> None:
    typed = '" or userName pr or "\\'
    found = people_filter(typed, "active")
    matches = [
        Compare(AttrPath("userName"), "co", typed),
        Compare(AttrPath("displayName"), "co", typed),
        Compare(AttrPath("name", "formatted"), "co", typed),
        Compare(AttrPath("name", "givenName"), "co", typed),
        Compare(AttrPath("name", "familyName"), "co", typed),
        Compare(AttrPath("emails", "value"), "co", typed),
    ]
    either = Or(Or(Or(Or(Or(*matches[:2]), matches[2]), matches[3]), matches[4]), matches[5])
    assert found == And(either, Compare(AttrPath("active"), "eq", True))
    assert people_filter("", "inactive") == Compare(AttrPath("active"), "eq", False)
    assert people_filter("", "all") is None


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
