"""Property-based fuzzing of SCIM PATCH (issue 8): the PatchOp body, Users and Groups.

Whatever JSON a client sends to PATCH, `parse_operations`, `apply_user_patch` and
`plan_group_patch` give a result or raise `ScimError` with status 400, never another
exception (which would be a 500). Nothing they are given is changed, whether they succeed or
fail: a rejected PATCH writes nothing, not even to the caller's copy of the user.

Each property runs 200 examples by default, so CI stays short. Set the environment variable
`SCIMLEDGER_FUZZ_EXAMPLES` to another number for a longer run, e.g.
`SCIMLEDGER_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/unit/test_fuzz_patch.py`.
No example database is kept (`database=None`); Hypothesis still writes caches to `.hypothesis/`.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scimledger.http.errors import ScimError
from scimledger.http.group_patch import plan_group_patch
from scimledger.http.patch import MAX_OPERATIONS, Operation, parse_operations
from scimledger.http.schemas import UserInput, parse_user
from scimledger.http.user_patch import apply_user_patch
from scimledger.ledger.commands import KEEP, GroupUpdate
from tests.fuzz import FUZZ
from tests.scim import CORE_GROUP, CORE_USER, PATCH_OP
from tests.scim import ENTERPRISE_USER as ENTERPRISE

SCIM_TYPES = {"invalidSyntax", "invalidPath", "invalidValue", "noTarget", "mutability"}


# JSON, as a decoded request body can hold it (no NaN: JSON has none, and NaN != NaN would
# make every "unchanged" check fail).

KEYS = [
    "value",
    "type",
    "primary",
    "display",
    "givenName",
    "familyName",
    "userName",
    "displayName",
    "emails",
    "members",
    "active",
    "id",
    "$ref",
    "department",
    "manager",
    "Value",
]
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["", " ", "work", "True", "false", "x@example.com", PATCH_OP, ENTERPRISE]),
)
json_keys = st.sampled_from(KEYS) | st.text(max_size=6)


def _json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)


json_values = st.recursive(json_scalars, _json_containers, max_leaves=8)

OPS = st.sampled_from(["add", "replace", "remove"])
ODD_OPS = st.sampled_from(["Add", "Replace", "REMOVE", "delete", "", "add "]) | json_scalars
ONE_IN_20 = st.integers(0, 19)  # 19 is the rare case: Hypothesis leans to 0, not to 19


def _rarely(draw: st.DrawFn) -> bool:
    return draw(ONE_IN_20) == 19


@st.composite
def operations(
    draw: st.DrawFn, paths: st.SearchStrategy[Any], values: st.SearchStrategy[Any]
) -> dict[str, Any]:
    """One operation, usually well-formed, its member names in any case."""
    operation: dict[str, Any] = {}
    if not _rarely(draw):
        op = draw(ODD_OPS) if _rarely(draw) else draw(OPS)
        operation[draw(st.sampled_from(["op", "Op", "OP"]))] = op
    if draw(st.integers(0, 3)) != 3:
        path = draw(json_scalars) if _rarely(draw) else draw(paths)
        operation[draw(st.sampled_from(["path", "Path"]))] = path
    if draw(st.integers(0, 4)) != 4:
        operation[draw(st.sampled_from(["value", "Value", "VALUE"]))] = draw(values)
    if _rarely(draw):
        operation[draw(st.text(max_size=6))] = draw(json_values)
    return operation


SCHEMAS = st.sampled_from([[PATCH_OP], [CORE_USER, PATCH_OP], [PATCH_OP.lower()], []])


@st.composite
def patch_bodies(
    draw: st.DrawFn,
    paths: st.SearchStrategy[Any],
    values: st.SearchStrategy[Any],
    good_operations: st.SearchStrategy[dict[str, Any]],
) -> Any:
    """A PatchOp body, usually near-valid, sometimes any JSON at all."""
    if _rarely(draw):
        return draw(json_values)
    body: dict[str, Any] = {}
    if not _rarely(draw):
        body["schemas"] = draw(json_values) if _rarely(draw) else [PATCH_OP]
        if _rarely(draw):
            body["schemas"] = draw(SCHEMAS)
    if not _rarely(draw):
        key = draw(st.sampled_from(["Operations", "operations", "OPERATIONS"]))
        if _rarely(draw):
            body[key] = draw(st.lists(json_values, max_size=2) | json_scalars)
        else:
            body[key] = draw(
                st.lists(good_operations | operations(paths, values), min_size=1, max_size=3)
            )
    if _rarely(draw):
        body[draw(st.text(max_size=6))] = draw(json_values)
    return body


def _unchanged_after(call: Any, *arguments: Any) -> Any:
    """call(*arguments): its result, or the ScimError it raised; either way the arguments
    are checked to be as they were. Any other exception escapes and fails the test."""
    before = copy.deepcopy(arguments)
    shown = repr(arguments)  # repr also tells 1, 1.0 and True apart, and sees reordering
    try:
        result = call(*arguments)
    except ScimError as exc:
        result = exc
    assert arguments == before
    assert repr(arguments) == shown
    return result


def _check_error(error: ScimError) -> None:
    assert error.status == 400
    assert error.scim_type in SCIM_TYPES
    assert isinstance(error.detail, str)
    assert error.detail
    assert error.headers == {}


def _same_error(left: ScimError, right: ScimError) -> bool:
    return (left.status, left.scim_type, left.detail) == (
        right.status,
        right.scim_type,
        right.detail,
    )


# Paths: a User's attributes, sub-attributes, value filters and extension, spelled well or not

USER_ATTRIBUTES = [
    "userName",
    "USERNAME",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "Emails",
    "phoneNumbers",
    "addresses",
    "groups",
    "externalId",
    "id",
    "meta",
    "schemas",
    "unknownThing",
]
ENTERPRISE_ATTRIBUTES = [
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
    "userName",
]
SUB_ATTRIBUTES = [
    "value",
    "type",
    "primary",
    "display",
    "givenName",
    "familyName",
    "formatted",
    "locality",
    "displayName",
    "$ref",
    "nope",
]
VALUE_FILTERS = [
    'type eq "work"',
    'TYPE EQ "Work"',
    'value co "@"',
    "primary eq true",
    'primary eq "True"',
    'type eq "work" and value ew ".com"',
    'type eq "work" and type eq "home"',
    'type eq "work" and primary eq true',
    'type eq "work" or type eq "home"',
    'not (type eq "home")',
    "display pr",
    "value eq null",
    'type eq "]"',
    'type eq "a\\"]"',
    'type eq "[["',
    "",
    'emails[type eq "work"]',
    "type[value pr]",
    'urn:x:type eq "a"',
    'type.value eq "a"',
    "nope eq 1",
    "(type eq 1) or (value gt 2.5)",
    'type eq "work" and',
    "type eq",
    '"',
    "(",
]


@st.composite
def user_paths(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=30))
    if kind == 1:
        return draw(st.sampled_from([ENTERPRISE, ENTERPRISE.upper(), CORE_USER, "urn:x", ""]))
    prefix, attributes = draw(
        st.sampled_from(
            [
                ("", USER_ATTRIBUTES),
                ("", USER_ATTRIBUTES),
                (CORE_USER + ":", USER_ATTRIBUTES),
                (ENTERPRISE + ":", ENTERPRISE_ATTRIBUTES),
                (ENTERPRISE.lower() + ":", ENTERPRISE_ATTRIBUTES),
                ("urn:x:", USER_ATTRIBUTES),
            ]
        )
    )
    path = prefix + draw(st.sampled_from(attributes))
    if not draw(st.integers(0, 2)):
        path += "[" + draw(st.sampled_from(VALUE_FILTERS) | st.text(max_size=12)) + "]"
    if not draw(st.integers(0, 2)):
        path += "." + draw(st.sampled_from(SUB_ATTRIBUTES))
    if not draw(st.integers(0, 14)):
        path += draw(st.sampled_from(["]", "[", ".", "..", " ", ".value.x", '"']))
    return path


emails = st.fixed_dictionaries(
    {},
    optional={
        "value": st.sampled_from(["a@example.com", "b@example.com", ""]) | json_scalars,
        "type": st.sampled_from(["work", "home", "WORK"]),
        "primary": st.sampled_from([True, False, "True", "false", "yes", None]),
        "display": st.text(max_size=6),
    },
)
user_values = st.one_of(
    json_values,
    st.sampled_from(["bjensen", "", "  ", "True", "False", True, False]),
    st.lists(emails, max_size=3),
    emails,
    st.fixed_dictionaries(
        {},
        optional={
            "givenName": json_scalars,
            "familyName": st.text(max_size=6),
            "formatted": json_scalars,
        },
    ),
    st.dictionaries(
        st.sampled_from(
            [*USER_ATTRIBUTES, f"{ENTERPRISE}:department", "name.givenName", ENTERPRISE]
        ),
        json_values | st.lists(emails, max_size=2),
        max_size=4,
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "department": json_scalars,
            "manager": st.text(max_size=6) | st.fixed_dictionaries({"value": json_scalars}),
            "employeeNumber": st.text(max_size=6),
        },
    ),
)

user_documents = st.fixed_dictionaries(
    {"userName": st.sampled_from(["bjensen", "Babs Jensen", "x"])},
    optional={
        "name": st.fixed_dictionaries(
            {}, optional={"givenName": st.text(max_size=6), "familyName": st.just("Jensen")}
        ),
        "displayName": st.text(max_size=6),
        "emails": st.lists(emails, max_size=3),
        "phoneNumbers": st.lists(emails, max_size=2),
        "addresses": st.lists(
            st.fixed_dictionaries({}, optional={"locality": st.text(max_size=4)}), max_size=2
        ),
        "active": st.booleans(),
        "externalId": st.text(max_size=6),
        "password": st.text(max_size=6),
        ENTERPRISE: st.fixed_dictionaries(
            {},
            optional={
                "department": st.text(max_size=6),
                "manager": st.fixed_dictionaries({"value": st.text(max_size=6)}),
            },
        ),
    },
)
# Stored users are always valid; any JSON object is tried too, for robustness.
any_documents = user_documents | st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4)

texts = st.sampled_from(["bjensen", "Babs", "", " ", "a@example.com"]) | st.text(max_size=8)
good_user_changes = st.one_of(
    st.tuples(st.sampled_from(["userName", "displayName", "title", "name.givenName"]), texts),
    st.tuples(st.sampled_from(["active", "Active"]), st.sampled_from([True, False, "True"])),
    st.tuples(st.just("name"), user_values),
    st.tuples(st.sampled_from(["emails", "phoneNumbers"]), st.lists(emails, max_size=3)),
    st.tuples(
        st.sampled_from(
            [
                'emails[type eq "work"].value',
                'emails[type eq "work" and primary eq true].display',
                "phoneNumbers[value pr].type",
                f"{ENTERPRISE}:manager",
                f"{ENTERPRISE}:manager.value",
                f"{ENTERPRISE}:department",
                "externalId",
                "password",
            ]
        ),
        texts | st.none(),
    ),
    st.tuples(st.sampled_from(['emails[type eq "work"]', 'EMAILS[value co "@"]']), emails),
    st.tuples(st.sampled_from([ENTERPRISE, None]), user_values),
)


@st.composite
def good_user_operations(draw: st.DrawFn) -> dict[str, Any]:
    """An operation that is valid PatchOp syntax, on an attribute a User has."""
    path, value = draw(good_user_changes)
    op = draw(OPS)
    operation: dict[str, Any] = {"op": op} if path is None else {"op": op, "path": path}
    if op != "remove" or draw(st.booleans()):
        operation["value"] = value
    return operation


user_patches = patch_bodies(user_paths(), user_values, good_user_operations())


# parse_operations


def _check_operations(body: Any) -> list[Operation] | ScimError:
    """parse_operations(body), checked against the body: one Operation for each, in order,
    with the op, path and value given (member names in any case, the first spelling wins)."""
    result: list[Operation] | ScimError = _unchanged_after(parse_operations, body)
    if isinstance(result, ScimError):
        _check_error(result)
        return result
    given_operations = next(v for k, v in body.items() if k.lower() == "operations")
    assert len(result) == len(given_operations)
    for index, (operation, given_operation) in enumerate(
        zip(result, given_operations, strict=True)
    ):
        fields = {key.lower(): value for key, value in reversed(given_operation.items())}
        assert isinstance(operation, Operation)
        assert operation.index == index
        assert operation.op == fields["op"].lower()
        assert operation.op in ("add", "replace", "remove")
        assert operation.path == (fields.get("path") or None)
        assert operation.has_value == ("value" in fields)
        assert operation.value == fields.get("value")
        if operation.op != "remove":
            assert operation.has_value
    return result


@FUZZ
@given(st.integers(MAX_OPERATIONS - 20, MAX_OPERATIONS + 20))
def test_at_most_max_operations_per_request(count: int) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "title"}] * count}
    if count <= MAX_OPERATIONS:
        assert len(parse_operations(body)) == count
    else:
        with pytest.raises(ScimError) as caught:
            parse_operations(body)
        assert caught.value.status == 400
        assert caught.value.scim_type == "invalidSyntax"
        assert caught.value.detail == f"At most {MAX_OPERATIONS} operations per request"


# apply_user_patch


def _as_put_body(user: UserInput) -> dict[str, Any]:
    body = dict(user.attributes)
    if user.active is not None:
        body["active"] = user.active
    if user.password is not None:
        body["password"] = user.password
    return body


@FUZZ
@given(any_documents, user_patches)
def test_user_patch_gives_a_valid_user_or_a_400_changing_nothing(
    document: dict[str, Any], body: Any
) -> None:
    """parse_operations, then apply_user_patch, on the same body: a valid user or a 400."""
    operations = _check_operations(body)
    result = _unchanged_after(apply_user_patch, document, body)
    again = _unchanged_after(apply_user_patch, document, body)
    if isinstance(result, ScimError):
        _check_error(result)
        assert isinstance(again, ScimError)
        assert _same_error(again, result)
        if isinstance(operations, ScimError):  # no PatchOp: fails as parse_operations says
            assert _same_error(result, operations)
        return
    assert not isinstance(operations, ScimError)
    assert isinstance(result, UserInput)
    assert again == result
    user_name = result.attributes["userName"]
    assert isinstance(user_name, str)
    assert user_name.strip()
    assert result.active is None or isinstance(result.active, bool)
    assert result.password is None or isinstance(result.password, str)
    # The result is what a PUT of it would store: a PATCH cannot store what a PUT could not.
    assert parse_user(_as_put_body(result)) == result


@FUZZ
@given(user_documents, st.lists(st.sampled_from(VALUE_FILTERS), min_size=1, max_size=2))
def test_user_patch_value_filters_never_escape_as_other_errors(
    document: dict[str, Any], filters: list[str]
) -> None:
    """Every value-filter path, in every operation, on a valid user."""
    steps: list[dict[str, Any]] = [
        {"op": op, "path": f"emails[{text}]{sub}", "value": value}
        for text in filters
        for op, sub, value in [
            ("replace", ".value", "new@example.com"),
            ("add", "", {"display": "d", "primary": True}),
            ("remove", ".display", None),
            ("remove", "", None),
        ]
    ]
    for count in range(1, len(steps) + 1):
        partial = {"schemas": [PATCH_OP], "Operations": steps[:count]}
        result = _unchanged_after(apply_user_patch, document, partial)
        if isinstance(result, ScimError):
            _check_error(result)
        else:
            assert parse_user(_as_put_body(result)) == result


# plan_group_patch

GROUP_PATHS = st.one_of(
    st.sampled_from(
        [
            "members",
            "Members",
            "displayName",
            "DISPLAYNAME",
            "externalId",
            "id",
            "meta",
            "schemas",
            f"{CORE_GROUP}:displayName",
            f"{CORE_GROUP}:members",
            f"{CORE_GROUP.upper()}:members",
            f'{CORE_GROUP}:members[value eq "a"]',
            "unknown",
            "",
        ]
    ),
    st.sampled_from([*VALUE_FILTERS, 'value eq "a" or value eq "b"', 'VALUE EQ "c"']).map(
        lambda text: f"members[{text}]"
    ),
    st.text(max_size=20),
    st.text(max_size=20).map(lambda text: f"members[{text}]"),
)
member_lists = st.lists(
    st.fixed_dictionaries(
        {"value": st.sampled_from(["a", "b", "c", "A"]) | json_scalars},
        optional={"display": json_scalars, "$ref": st.text(max_size=4)},
    )
    | json_values,
    max_size=4,
)
group_values = st.one_of(
    json_values,
    member_lists,
    st.fixed_dictionaries({"value": st.sampled_from(["a", "b"])}),
    st.sampled_from(["Group A", "", "  ", None]),
    st.fixed_dictionaries(
        {},
        optional={
            "displayName": st.sampled_from(["Group A", "", 5]),
            "externalId": json_scalars,
            "members": member_lists,
            "id": st.text(max_size=4),
            "Members": member_lists,
        },
    ),
)


good_group_changes = st.one_of(
    st.tuples(st.sampled_from(["members", "Members", f"{CORE_GROUP}:members"]), member_lists),
    st.tuples(st.sampled_from(["displayName", "externalId"]), st.sampled_from(["G", "", None])),
    st.tuples(
        st.sampled_from(['members[value eq "a"]', 'members[value eq "b" or value eq "c"]']),
        st.none(),
    ),
    st.tuples(st.none(), group_values),
)


@st.composite
def good_group_operations(draw: st.DrawFn) -> dict[str, Any]:
    """An operation that is valid PatchOp syntax, on an attribute a Group has."""
    path, value = draw(good_group_changes)
    op = draw(OPS)
    operation: dict[str, Any] = {"op": op} if path is None else {"op": op, "path": path}
    if op != "remove" or draw(st.booleans()):
        operation["value"] = value
    return operation


@FUZZ
@given(patch_bodies(GROUP_PATHS, group_values, good_group_operations()))
def test_group_patch_gives_a_consistent_plan_or_a_400_changing_nothing(body: Any) -> None:
    """parse_operations, then plan_group_patch, on the same body: a plan or a 400."""
    operations = _check_operations(body)
    plan = _unchanged_after(plan_group_patch, body)
    if isinstance(plan, ScimError):
        _check_error(plan)
        if isinstance(operations, ScimError):  # no PatchOp: fails as parse_operations says
            assert _same_error(plan, operations)
        return
    assert not isinstance(operations, ScimError)
    assert isinstance(plan, GroupUpdate)
    assert plan.display_name is KEEP or (
        isinstance(plan.display_name, str) and plan.display_name.strip()
    )
    assert plan.external_id is KEEP or plan.external_id is None or isinstance(plan.external_id, str)
    assert not plan.add & plan.remove
    if plan.replace_members is not None:
        assert plan.add == set()
        assert plan.remove == set()
    for ids in (plan.add, plan.remove, plan.replace_members or set()):
        assert all(isinstance(member, str) and member for member in ids)


IDS = ["a", "b", "c", "d", "A"]
member_ops: st.SearchStrategy[tuple[str, list[str]]] = st.one_of(
    st.tuples(st.sampled_from(["add", "replace", "remove"]), st.lists(st.sampled_from(IDS))),
    st.tuples(st.just("remove all"), st.just([])),
    st.tuples(st.just("remove filter"), st.lists(st.sampled_from(IDS), min_size=1, max_size=3)),
)


def _member_operation(kind: str, ids: list[str]) -> dict[str, Any]:
    values = [{"value": member} for member in ids]
    if kind == "remove all":
        return {"op": "remove", "path": "members"}
    if kind == "remove filter":
        text = " or ".join(f'value eq "{member}"' for member in ids)
        return {"op": "remove", "path": f"members[{text}]"}
    return {"op": kind, "path": "members", "value": values}


@FUZZ
@given(st.sets(st.sampled_from(IDS)), st.lists(member_ops, min_size=1, max_size=6))
def test_group_patch_plan_does_what_the_operations_do_in_order(
    members: set[str], steps: list[tuple[str, list[str]]]
) -> None:
    """The plan, applied to any member set, gives what the operations give one by one."""
    body = {"schemas": [PATCH_OP], "Operations": [_member_operation(*step) for step in steps]}
    expected = set(members)
    for kind, ids in steps:
        if kind == "add":
            expected |= set(ids)
        elif kind == "replace":
            expected = set(ids)
        elif kind == "remove all":
            expected = set()
        else:  # remove with a value list (Entra ID), or with a filter
            expected -= set(ids)
    plan = plan_group_patch(body)
    if plan.replace_members is not None:
        assert plan.replace_members == expected
    else:
        assert (members | plan.add) - plan.remove == expected
    assert plan.display_name is KEEP
    assert plan.external_id is KEEP
