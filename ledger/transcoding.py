"""How event payloads become bytes in the store and back.

The library's JSON transcoder looks a value's exact type up in a table, so a subclass of
`datetime` (freezegun's `FakeDatetime`) cannot be stored. This transcoder walks the type's
MRO instead, and knows the value objects that events carry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from scimledger.ledger.context import Actor, CommandContext, RequestInfo


class LedgerTranscoder(JSONTranscoder):
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

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


class ActorAsDict(DataclassAsDict):
    type = Actor
    name = "actor"


class RequestInfoAsDict(DataclassAsDict):
    type = RequestInfo
    name = "request"


class CommandContextAsDict(DataclassAsDict):
    type = CommandContext
    name = "context"


LEDGER_TRANSCODINGS: tuple[Transcoding, ...] = (
    ActorAsDict(),
    RequestInfoAsDict(),
    CommandContextAsDict(),
)
