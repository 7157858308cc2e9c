"""The ledger's payload decoder reads exactly what the library's JSON decoder reads."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from scimledger.ledger.application import Ledger
from scimledger.ledger.context import Actor
from scimledger.ledger.transcoding import LedgerTranscoder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "events_v1.json"


def transcoders() -> tuple[LedgerTranscoder, LedgerTranscoder]:
    ours, reference = LedgerTranscoder(), LedgerTranscoder()
    Ledger.register_transcodings(Ledger.__new__(Ledger), ours)
    Ledger.register_transcodings(Ledger.__new__(Ledger), reference)
    return ours, reference


def test_every_stored_payload_decodes_as_the_library_decodes_it() -> None:
    ours, reference = transcoders()
    payloads = [event["state"].encode() for event in json.loads(FIXTURE.read_text())]
    assert len(payloads) > 10
    for payload in payloads * 2:  # the second time, from the decoders' memory
        assert ours.decode(payload) == JSONTranscoder.decode(reference, payload)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"a":[{"_type_":"uuid_hex","_data_":"2850eb72bb545279b5c99661a9910be9"},[1,{}]]}',
        b'{"context":{"_type_":"context","_data_":{"org_id":"not wrapped",'
        b'"actor":{"_type_":"actor","_data_":{"kind":"operator","id":"i","name":"n",'
        b'"issued_by":null}},"request":{"_type_":"request","_data_":{"request_id":"r"}}}}}',
        b'{"_type_":"x"}',
        b'{"_type_":"x","_data_":1,"other":2}',
        b"[1,2]",
        b'"text"',
    ],
)
def test_unusual_shapes_decode_as_the_library_decodes_them(payload: bytes) -> None:
    ours, reference = transcoders()
    assert ours.decode(payload) == JSONTranscoder.decode(reference, payload)


def test_an_unknown_type_is_refused_as_the_library_refuses_it() -> None:
    ours, _ = transcoders()
    with pytest.raises(TranscodingNotRegisteredError):
        ours.decode(b'{"x":{"_type_":"nope","_data_":1}}')


def test_an_actor_is_stored_with_a_role_only_when_it_has_one() -> None:
    ours, _ = transcoders()
    operator = Actor.operator("tokens issue")
    person = Actor.person(UUID(int=7), "ada@acme.example", "reviewer")
    assert json.loads(ours.encode({"a": operator})) == {
        "a": {
            "_type_": "actor",
            "_data_": {
                "kind": "operator",
                "id": "tokens issue",
                "name": operator.name,
                "issued_by": None,
            },
        }
    }
    assert json.loads(ours.encode({"a": person}))["a"]["_data_"] == {
        "kind": "person",
        "id": "00000000000000000000000000000007",
        "name": "ada@acme.example",
        "issued_by": None,
        "role": "reviewer",
    }
    for actor in (operator, person):
        assert ours.decode(ours.encode({"a": actor})) == {"a": actor}
