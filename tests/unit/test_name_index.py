"""The NameIndex aggregate and name normalization (ledger.names) on their own. No ledger, no
event store."""

from __future__ import annotations

from uuid import UUID

import pytest

from scimledger.ledger.names import NameIndex, normalize_name
from tests.unit.events import ORG_ID, OTHER_ORG_ID, T0, at, clock, recorded, replay

ADA_ID, BOB_ID = UUID(int=1), UUID(int=2)


def new_index() -> NameIndex:
    """ada@acme.example's userName claimed for Ada at T0, its event already collected."""
    with clock():
        index = NameIndex(
            org_id=ORG_ID, kind="userName", name=normalize_name("Ada@ACME.example"), owner_id=ADA_ID
        )
    index.collect_events()
    return index


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("Ada@ACME.Example", "ada@acme.example"),
        ("Straße", "strasse"),  # case-folded, not only lower-cased
        ("Cafe\u0301", "caf\u00e9"),  # composed (NFC) first
        ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),  # every sigma folds alike
    ],
)
def test_names_compare_case_folded_and_composed(name: str, normalized: str) -> None:
    assert normalize_name(name) == normalized


def test_an_index_id_is_derived_from_organization_kind_and_normalized_name() -> None:
    # Stored events refer to this id: it must never change for a name.
    assert NameIndex.create_id(ORG_ID, "userName", "ADA@acme.example") == UUID(
        "19121af5-23fa-5437-b1d6-73df6b67a8df"
    )


def test_names_differing_only_in_case_share_one_index() -> None:
    assert NameIndex.create_id(ORG_ID, "userName", "Ada@Acme.Example") == NameIndex.create_id(
        ORG_ID, "userName", "ada@acme.example"
    )


def test_the_same_name_has_one_index_per_organization_and_kind() -> None:
    ids = {
        NameIndex.create_id(ORG_ID, "userName", "admins"),
        NameIndex.create_id(ORG_ID, "displayName", "admins"),
        NameIndex.create_id(OTHER_ORG_ID, "userName", "admins"),
    }
    assert len(ids) == 3


def test_claiming_a_new_name_records_name_claimed() -> None:
    with clock():
        index = NameIndex(
            org_id=ORG_ID, kind="displayName", name=normalize_name("Admins"), owner_id=ADA_ID
        )
    assert index.id == NameIndex.create_id(ORG_ID, "displayName", "ADMINS")
    assert recorded(index) == [
        (
            NameIndex.NameClaimed,
            {
                "originator_version": 1,
                "timestamp": T0,
                "originator_topic": "scimledger.ledger.names:NameIndex",
                "org_id": ORG_ID,
                "kind": "displayName",
                "name": "admins",
                "owner_id": ADA_ID,
            },
        )
    ]
    assert (index.org_id, index.kind, index.owner_id) == (ORG_ID, "displayName", ADA_ID)


def test_releasing_a_name_records_name_released_and_frees_it() -> None:
    index = new_index()
    with clock(at(1)):
        index.release()
    assert recorded(index) == [
        (NameIndex.NameReleased, {"originator_version": 2, "timestamp": at(1)})
    ]
    assert index.owner_id is None


def test_claiming_a_released_name_records_name_reclaimed() -> None:
    index = new_index()
    index.release()
    index.collect_events()
    with clock(at(2)):
        index.claim(BOB_ID)
    assert recorded(index) == [
        (NameIndex.NameReclaimed, {"originator_version": 3, "timestamp": at(2), "owner_id": BOB_ID})
    ]
    assert index.owner_id == BOB_ID


def test_replaying_an_indexs_events_rebuilds_the_same_index() -> None:
    with clock():
        index = NameIndex(org_id=ORG_ID, kind="userName", name="ada@acme.example", owner_id=ADA_ID)
        index.release()
        index.claim(BOB_ID)
    events = index.collect_events()
    assert len(events) == 3
    assert replay(NameIndex, events) == index
