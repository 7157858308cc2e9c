"""`attributes` and `excludedAttributes` (RFC 7644 section 3.9): which attributes to return.

Names are case-insensitive and may carry their schema URN (`urn:...:User:userName`) or a
sub-attribute (`name.givenName`, `emails.value`). `id` and `schemas` are always returned.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scimledger.ledger.schemas import CORE_GROUP, CORE_USER, ENTERPRISE_USER

_ALWAYS = frozenset({"id", "schemas"})
_CORE_PREFIXES = (CORE_USER.lower() + ":", CORE_GROUP.lower() + ":")
_EXTENSION = ENTERPRISE_USER.lower()


@dataclass(frozen=True)
class Selection:
    """Requested attribute paths, each a tuple of lower-case keys."""

    only: tuple[tuple[str, ...], ...] | None = None
    excluded: tuple[tuple[str, ...], ...] = ()

    def returns(self, name: str) -> bool:
        """Whether the top-level attribute `name` is returned at all."""
        key = name.lower()
        if key in _ALWAYS:
            return True
        if self.only is not None and not any(path[0] == key for path in self.only):
            return False
        return (key,) not in self.excluded

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource with only the selected attributes (a new dict; the input is kept)."""
        if self.only is None and not self.excluded:
            return resource
        resource = copy.deepcopy(resource)
        if self.only is not None:
            kept = {k: v for k, v in resource.items() if k.lower() in _ALWAYS}
            for path in self.only:
                _copy(resource, kept, path)
            resource = kept
        for path in self.excluded:
            if path[0] not in _ALWAYS:
                _drop(resource, path)
        return resource


def _path(name: str) -> tuple[str, ...]:
    lower = name.strip().lower()
    for prefix in _CORE_PREFIXES:
        if lower.startswith(prefix):
            lower = lower[len(prefix) :]
    if lower == _EXTENSION:
        return (_EXTENSION,)
    if lower.startswith(_EXTENSION + ":"):
        return (_EXTENSION, *lower[len(_EXTENSION) + 1 :].split("."))
    return tuple(lower.split("."))


def _paths(text: str | None) -> tuple[tuple[str, ...], ...]:
    if not text:
        return ()
    return tuple(_path(name) for name in text.split(",") if name.strip())


def selection(attributes: str | None, excluded: str | None) -> Selection:
    only = _paths(attributes)
    return Selection(only=only or None, excluded=_paths(excluded))


def _key(mapping: dict[str, Any], lower: str) -> str | None:
    return next((k for k in mapping if k.lower() == lower), None)


def _copy(source: Any, target: dict[str, Any], path: tuple[str, ...]) -> None:
    key = _key(source, path[0]) if isinstance(source, dict) else None
    if key is None:
        return
    value = source[key]
    if len(path) == 1:
        target[key] = value
    elif isinstance(value, dict):
        part = target.get(key, {})
        _copy(value, part, path[1:])
        if part:  # an absent sub-attribute adds no empty parent
            target[key] = part
    elif isinstance(value, list):
        parts = target.get(key, [{} for _ in value])
        for item, out in zip(value, parts, strict=True):
            _copy(item, out, path[1:])
        if any(parts):
            target[key] = parts


def _drop(resource: Any, path: tuple[str, ...]) -> None:
    if isinstance(resource, list):
        for item in resource:
            _drop(item, path)
        return
    if not isinstance(resource, dict):
        return
    key = _key(resource, path[0])
    if key is None:
        return
    if len(path) == 1:
        del resource[key]
    else:
        _drop(resource[key], path[1:])
