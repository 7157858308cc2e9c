"""ETags (RFC 7644 section 3.14): `W/"<version>"` from the aggregate's version.

`If-Match` on a write must name the current version, else 412 and nothing is recorded;
`If-None-Match` on a read answers 304 when it names the current version.
"""

from __future__ import annotations

import re

from scimledger.http.errors import ScimError
from scimledger.http.responses import etag

_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*')


def _versions(header: str) -> set[str] | None:
    """The versions an If-Match/If-None-Match header names; None for `*` (any)."""
    if header.strip() == "*":
        return None
    return {m.group(1) for part in header.split(",") if (m := _TAG.fullmatch(part))}


def check_if_match(header: str | None, version: int) -> None:
    """Raises 412 unless `If-Match` is absent, `*`, or names `version` (weak comparison)."""
    if header is None:
        return
    versions = _versions(header)
    if versions is not None and str(version) not in versions:
        raise ScimError(
            412,
            f"If-Match {header.strip()} does not match the current version {etag(version)}",
        )


def not_modified(header: str | None, version: int) -> bool:
    """Whether `If-None-Match` names the current version (or is `*`)."""
    if header is None:
        return False
    versions = _versions(header)
    return versions is None or str(version) in versions
