"""Extension schemas an organization declares (RFC 7643 section 7 documents): what is
declared, what is refused and why, and how stored values show under a declaration."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from scimledger.ledger.schemas import (
    BUILT_IN,
    ENTERPRISE_USER,
    Declared,
    InvalidDeclaration,
    parse_declaration,
)

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
DOCUMENT: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": ACME,
    "name": "AcmeUser",
    "description": "Acme's attributes",
    "attributes": [
        {"name": "costCenter", "type": "string"},
        {"name": "seats", "type": "integer", "required": True},
        {"name": "role", "canonicalValues": ["admin", "member"], "returned": "request"},
        {
            "name": "badges",
            "type": "complex",
            "multiValued": True,
            "subAttributes": [{"name": "value"}, {"name": "issued", "type": "dateTime"}],
        },
    ],
}


def declared(document: dict[str, Any] = DOCUMENT, required: bool = False) -> Declared:
    recorded = parse_declaration(document, [])
    return Declared.of(
        {recorded["id"]: {"resource_type": "User", "required": required, "document": recorded}}
    )


def test_a_declaration_is_recorded_with_every_characteristic_spelled_out() -> None:
    recorded = parse_declaration(DOCUMENT, [])

    assert recorded["id"] == ACME
    assert recorded["name"] == "AcmeUser"
    assert recorded["attributes"][0] == {
        "name": "costCenter",
        "type": "string",
        "multiValued": False,
        "description": "",
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    }
    assert recorded["attributes"][2]["canonicalValues"] == ["admin", "member"]
    assert [s["name"] for s in recorded["attributes"][3]["subAttributes"]] == ["value", "issued"]


def test_a_recorded_declaration_describes_itself_as_it_was_recorded() -> None:
    recorded = parse_declaration(DOCUMENT, [])
    schema = declared().schema(ACME)

    assert schema is not None
    described = schema.describe("https://x/scim/v2")
    assert described["attributes"] == recorded["attributes"]
    assert described["meta"] == {
        "resourceType": "Schema",
        "location": f"https://x/scim/v2/Schemas/{ACME}",
    }


def test_declared_user_extensions_follow_the_enterprise_one() -> None:
    schemas = declared().user

    assert [e.schema.id for e in schemas.extensions] == [ENTERPRISE_USER, ACME]
    assert [e.schema.id for e in schemas.declared] == [ACME]
    assert declared().group.extensions == ()
    assert [s.id for s in declared().schemas()][-1] == ACME


def changed(**fields: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document.update(fields)
    return document


def attribute(**fields: Any) -> dict[str, Any]:
    return changed(attributes=[{"name": "a", **fields}])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "a schema document is a JSON object"),
        (changed(id="urn:ietf:params:scim:schemas:core:2.0:User"), "is a schema of SCIM itself"),
        (changed(id="urn:ietf:params:scim:schemas:core:2.0:Other"), "is a schema of SCIM itself"),
        (changed(id=ENTERPRISE_USER.upper()), "is a schema of SCIM itself"),
        (changed(id="urn:ietf:params:scim:api:messages:2.0:X"), "is a schema of SCIM itself"),
        (changed(id="acme:User"), "id must be a URN"),
        (changed(id="urn:acme:it's:User"), "id must be a URN"),
        (changed(id='urn:acme:"x":User'), "id must be a URN"),
        (changed(id="urn:acme:a b:User"), "id must be a URN"),
        (changed(id="urn:acme:{x}:User"), "id must be a URN"),
        (changed(id="urn:acme:" + "x" * 200), "id must be a URN"),
        (changed(attributes=[]), "attributes must be a list of 1 to 100 attributes"),
        (changed(attributes=[{"name": f"a{i}"} for i in range(101)]), "1 to 100 attributes"),
        (changed(extra=1), "the schema: unknown 'extra'"),
        (changed(description="\x1b[2J"), "description must be printable text"),
        (changed(name=""), "name must be printable text of 1 to 200 characters"),
        (attribute(name="1a") | {}, "attributes[0].name must be a letter"),
        (changed(attributes=[{"name": "a.b"}]), "attributes[0].name must be a letter"),
        (changed(attributes=[{"name": "x" * 65}]), "attributes[0].name must be a letter"),
        (changed(attributes=[{"name": "a"}, {"name": "A"}]), "A is declared twice"),
        (attribute(type="object"), "attributes[0] (a).type must be one of string, boolean"),
        (attribute(multiValued="yes"), "attributes[0] (a).multiValued must be true or false"),
        (attribute(mutability="sometimes"), "mutability must be one of readOnly"),
        (attribute(mutability="writeOnly"), "writeOnly attributes hold secrets"),
        (attribute(uniqueness="global"), "uniqueness global is not kept"),
        (attribute(uniqueness="server", type="boolean"), "uniqueness server applies to a"),
        (attribute(uniqueness="server", multiValued=True), "single-valued top-level"),
        (
            attribute(type="complex", subAttributes=[{"name": "b", "uniqueness": "server"}]),
            "uniqueness server applies to a single-valued top-level attribute of type string,"
            " integer, reference",
        ),
        (attribute(returned="maybe"), "returned must be one of always, never"),
        (attribute(type="integer", canonicalValues=["1"]), "only a string attribute has"),
        (attribute(canonicalValues="admin"), "canonicalValues must be a list"),
        (attribute(canonicalValues=["ok", "\x07"]), "canonicalValues must be printable"),
        (attribute(referenceTypes=["User"]), "only a reference attribute has referenceTypes"),
        (attribute(type="complex"), "a complex attribute has 1 to 50 subAttributes"),
        (attribute(subAttributes=[{"name": "b"}]), "only a complex attribute has subAttributes"),
        (
            attribute(
                type="complex",
                subAttributes=[{"name": "b", "type": "complex", "subAttributes": [{"name": "c"}]}],
            ),
            "a sub-attribute cannot be complex",
        ),
        (attribute(descripton="typo"), "attributes[0]: unknown 'descripton'"),
        (attribute(description="x" * 1001), "printable text of at most 1000 characters"),
    ],
)
def test_a_document_that_cannot_be_declared_is_refused_saying_why(
    document: Any, message: str
) -> None:
    with pytest.raises(InvalidDeclaration) as refused:
        parse_declaration(document, [])

    assert message in str(refused.value)


def test_an_extension_whose_urn_contains_another_declared_one_is_refused() -> None:
    with pytest.raises(InvalidDeclaration) as refused:
        parse_declaration(changed(id=f"{ACME}:More"), [ACME])

    assert str(refused.value) == (
        f"{ACME}:More and the declared {ACME} overlap: an attribute path could name either"
    )
    with pytest.raises(InvalidDeclaration):
        parse_declaration(changed(id=ACME.rsplit(":", 1)[0]), [ACME])


def test_a_document_over_64_kib_is_refused() -> None:
    long = "x" * 1000
    attributes = [{"name": f"a{i}", "description": long} for i in range(70)]

    with pytest.raises(InvalidDeclaration) as refused:
        parse_declaration(changed(attributes=attributes), [])

    assert str(refused.value) == "a schema document has at most 65536 bytes"
    assert len(json.dumps(attributes)) > 65536


# Stored values under a declaration


def test_values_that_fit_the_declaration_are_visible_and_nothing_is_hidden() -> None:
    attributes = {
        "userName": "bjensen",
        ACME: {"costCenter": "42", "seats": 3, "badges": [{"value": "gold"}]},
    }

    assert declared().user.visible(attributes) == (attributes, {})


def test_values_of_an_extension_no_longer_declared_are_hidden_not_lost() -> None:
    attributes = {"userName": "bjensen", "urn:gone:2.0:User": {"x": "1"}}

    assert BUILT_IN.user.visible(attributes) == (
        {"userName": "bjensen"},
        {"urn:gone:2.0:User": {"x": "1"}},
    )


def test_values_of_removed_attributes_or_of_another_type_are_hidden() -> None:
    attributes = {"userName": "b", ACME: {"costCenter": "42", "seats": "3", "shoeSize": "9"}}

    assert declared().user.visible(attributes) == (
        {"userName": "b", ACME: {"costCenter": "42"}},
        {ACME: {"seats": "3", "shoeSize": "9"}},
    )


def test_enterprise_values_are_never_hidden() -> None:
    attributes = {"userName": "b", ENTERPRISE_USER: {"department": "Tours"}}

    assert BUILT_IN.user.visible(attributes) == (attributes, {})


def test_attributes_returned_on_request_only_show_when_asked_for() -> None:
    attributes = {"userName": "b", ACME: {"costCenter": "42", "role": "admin"}}
    schemas = declared().user

    assert schemas.returned(attributes, lambda urn, name: False) == {
        "userName": "b",
        ACME: {"costCenter": "42"},
    }
    assert schemas.returned(attributes, lambda urn, name: name == "role") == attributes
    only_role = {"userName": "b", ACME: {"role": "admin"}}
    assert schemas.returned(only_role, lambda urn, name: False) == {"userName": "b"}
