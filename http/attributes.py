"""`attributes` and `excludedAttributes` (RFC 7644 section 3.9): which attributes to return.

Names are case-insensitive and may carry their schema URN (`urn:...:User:userName`) or a
sub-attribute (`name.givenName`, `emails.value`). An extension's attributes are named by its
URN and the attribute (`urn:...:enterprise:2.0:User:department`), or the whole extension by
its URN alone. `id` and `schemas` are always returned.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scimledger.ledger.schemas import CORE_GROUP, CORE_USER

_ALWAYS = frozenset({"id", "schemas"})
_CORE_PREFIXES = (CORE_USER.lower() + ":", CORE_GROUP.lower() + ":")


@dataclass(frozen=True)
class Selection:
    """The requested attribute names, lower-case, without a core schema's URN. Where an
    extension's URN ends in a name is read off the resource's own keys (`_path`)."""

    only: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()

    def returns(self, name: str) -> bool:
        """Whether the top-level (core) attribute `name` is returned at all."""
        key = name.lower()
        if key in _ALWAYS:
            return True
        if self.only is not None and not any(_path(n, ())[0] == key for n in self.only):
            return False
        return (key,) not in (_path(n, ()) for n in self.excluded)

    def asks_for(self, urn: str, attribute: str) -> bool:
        """Whether `attributes` names an extension's attribute, or the whole extension (for
        attributes returned only on request, RFC 7643 section 7)."""
        if self.only is None:
            return False
        whole = urn.lower()
        return any(n in (whole, f"{whole}:{attribute.lower()}") for n in self.only) or any(
            n.startswith(f"{whole}:{attribute.lower()}.") for n in self.only
        )

    def apply(
        self, resource: dict[str, Any], always: tuple[tuple[str, str], ...] = ()
    ) -> dict[str, Any]:
        """The resource with only the selected attributes (a new dict; the input is kept).
        `always`: declared extension attributes (URN, name) returned whatever is asked
        (`returned: always`, RFC 7643 section 7), as `id` and `schemas` are."""
        if self.only is None and not self.excluded:
            return resource
        selected = self._apply(resource)
        for urn, name in always:
            values = resource.get(urn)
            if isinstance(values, dict) and name in values:
                selected[urn] = {**selected.get(urn, {}), name: values[name]}
        return selected

    def _apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        resource = copy.deepcopy(resource)
        extensions = [key.lower() for key in resource if key.lower().startswith("urn:")]
        if self.only is not None:
            kept = {k: v for k, v in resource.items() if k.lower() in _ALWAYS}
            for name in self.only:
                _copy(resource, kept, _path(name, extensions))
            resource = kept
        for name in self.excluded:
            path = _path(name, extensions)
            if path[0] not in _ALWAYS:
                _drop(resource, path)
        return resource


EVERYTHING = Selection()  # no parameter: every attribute returned by default


def _path(name: str, extensions: Iterable[str]) -> tuple[str, ...]:
    """The keys a name leads to: an extension's URN (one of `extensions`, lower-case) first
    if it starts with one, then the attribute and sub-attribute."""
    for extension in extensions:
        if name == extension:
            return (extension,)
        if name.startswith(extension + ":"):
            return (extension, *name[len(extension) + 1 :].split("."))
    return tuple(name.split("."))


def _names(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    names = []
    for name in text.split(","):
        lower = name.strip().lower()
        for prefix in _CORE_PREFIXES:
            if lower.startswith(prefix):
                lower = lower[len(prefix) :]
        if lower:
            names.append(lower)
    return tuple(names)


def selection(attributes: str | None, excluded: str | None) -> Selection:
    only = _names(attributes)
    return Selection(only=only or None, excluded=_names(excluded))


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
