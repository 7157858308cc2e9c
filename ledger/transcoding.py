"""How event payloads become bytes in the store and back.

The library's JSON transcoder looks a value's exact type up in a table, so a subclass of
`datetime` (freezegun's `FakeDatetime`) cannot be stored. This transcoder walks the type's
MRO instead, and knows the value objects that events carry. It reads payloads with msgspec:
the same JSON, parsed about six times faster than by `json` with an object hook, which is
most of what replaying the log costs.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    JSONTranscoder,
    Transcoding,
    TranscodingNotRegisteredError,
)

from scimledger.ledger.context import Actor, CommandContext, RequestInfo

_parse = msgspec.json.Decoder().decode
CACHE_SIZE = 4096  # values remembered per kind while decoding


class LedgerTranscoder(JSONTranscoder):
    def decode(self, data: bytes) -> Any:
        value = _parse(data)
        if type(value) is dict:
            return self._revive(value)
        if type(value) is list:
            self._revive_items(value)
        return value

    def _revive(self, obj: dict[str, Any]) -> Any:
        """Turns `{"_type_": name, "_data_": data}` objects back into values, innermost
        first, as the library's object hook does; other containers are changed in place.
        Data that holds no such object (a string, a flat dataclass) is not walked."""
        if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
            name = obj["_type_"]
            transcoding = self.names.get(name)
            if transcoding is None:
                raise TranscodingNotRegisteredError(
                    f"Data serialized with name {name!r} is not deserializable."
                )
            data = obj["_data_"]
            kind = type(data)
            if kind is dict:
                decode_raw = getattr(transcoding, "decode_raw", None)
                if decode_raw is not None:
                    return decode_raw(data, self)
                data = self._revive(data)
            elif kind is list:
                self._revive_items(data)
            return transcoding.decode(data)
        for key, item in obj.items():
            kind = type(item)
            if kind is dict:
                obj[key] = self._revive(item)
            elif kind is list:
                self._revive_items(item)
        return obj

    def _revive_items(self, items: list[Any]) -> None:
        for index, item in enumerate(items):
            kind = type(item)
            if kind is dict:
                items[index] = self._revive(item)
            elif kind is list:
                self._revive_items(item)

    def _encode_obj(self, o: Any) -> dict[str, Any]:
        for cls in type(o).__mro__:
            transcoding = self.types.get(cls)
            if transcoding is not None:
                return {"_type_": transcoding.name, "_data_": transcoding.encode(o)}
        return super()._encode_obj(o)


class DataclassAsDict(Transcoding):
    """Stores a frozen dataclass as a dict of its fields.

    Fields may be added later only with defaults, so old payloads still decode.
    """

    def __init__(self) -> None:
        # Events replayed together share actors, requests and contexts: the values are
        # immutable, so equal data can share one object.
        self._decoded: dict[tuple[tuple[str, Any], ...], Any] = {}
        self._by_form: dict[Any, Any] = {}

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        key = tuple(data.items())
        try:
            return self._decoded[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable field value
            return self.type(**data)
        if len(self._decoded) >= CACHE_SIZE:
            self._decoded.clear()
        value = self._decoded[key] = self.type(**data)
        return value

    def decode_raw(self, data: dict[str, Any], transcoder: LedgerTranscoder) -> Any:
        return self.decode(data)  # its fields are plain values (CommandContext's are not)


class UUIDAsHex(Transcoding):
    """The library's `uuid_hex`, remembering recent values: an organization's id is in
    every one of its events."""

    type = UUID
    name = "uuid_hex"

    def __init__(self) -> None:
        self._decoded: dict[str, UUID] = {}

    def encode(self, obj: UUID) -> str:
        return obj.hex

    def decode(self, data: str) -> UUID:
        value = self._decoded.get(data)
        if value is None:
            if len(self._decoded) >= CACHE_SIZE:
                self._decoded.clear()
            value = self._decoded[data] = UUID(data)
        return value


class ActorAsDict(DataclassAsDict):
    type = Actor
    name = "actor"

    def encode(self, obj: Actor) -> dict[str, Any]:
        """Without `role` unless set: only a console person has one, and the actor is in
        every event."""
        fields = super().encode(obj)
        if obj.role is None:
            del fields["role"]
        return fields


class RequestInfoAsDict(DataclassAsDict):
    type = RequestInfo
    name = "request"


class CommandContextAsDict(DataclassAsDict):
    type = CommandContext
    name = "context"

    def decode_raw(self, data: dict[str, Any], transcoder: LedgerTranscoder) -> Any:
        """Every event carries a context, and a replay decodes millions: equal contexts
        (one request's events) are recognised by their stored form, without decoding
        their parts first."""
        try:
            key = (
                data["org_id"]["_data_"],
                tuple(data["actor"]["_data_"].items()),
                tuple(data["request"]["_data_"].items()),
            )
            return self._by_form[key]
        except KeyError:
            pass
        except (TypeError, AttributeError):  # not the usual form: decode it the long way
            return self.decode(transcoder._revive(data))
        if len(self._by_form) >= CACHE_SIZE:
            self._by_form.clear()
        value = self._by_form[key] = self.decode(transcoder._revive(data))
        return value


LEDGER_TRANSCODINGS: tuple[Transcoding, ...] = (
    UUIDAsHex(),
    ActorAsDict(),
    RequestInfoAsDict(),
    CommandContextAsDict(),
)
