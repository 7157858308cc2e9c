"""How the console shows an audit entry's changes (http.console.audit.readable): each shape
the trail records, as one line per attribute."""

from __future__ import annotations

from scimledger.http.console.audit import readable


def test_a_value_set_reads_before_then_after() -> None:
    changes = {"userName": {"before": None, "after": "ada@acme.example"}}
    assert readable(changes) == [("userName", "(none) -> ada@acme.example")]


def test_values_that_are_not_text_read_as_json() -> None:
    changes = {"active": {"before": True, "after": False}, "emails": {"before": [], "after": None}}
    assert readable(changes) == [("active", "true -> false"), ("emails", "[] -> (none)")]


def test_members_and_admins_read_as_what_happened() -> None:
    assert readable({"members": {"added": ["u1", "u2"]}}) == [("members", 'added: ["u1","u2"]')]


def test_a_long_list_names_its_first_ten() -> None:
    added = [f"u{n}" for n in range(50_000)]
    listed = ",".join(f'"u{n}"' for n in range(10))
    assert readable({"members": {"added": added}}) == [
        ("members", f"added: [{listed}] and 49990 more")
    ]


def test_a_bare_value_reads_as_itself() -> None:
    assert readable({"password": "changed", "role": "admin"}) == [
        ("password", "changed"),
        ("role", "admin"),
    ]
