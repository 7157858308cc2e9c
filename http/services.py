"""What the HTTP layer is given to work with: the ledger and the read models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Protocol, TypeAlias, TypeVar

from litestar.di import Dependency
from litestar.params import SkipValidationMarker

from scimledger.http.rate_limit import RateLimit
from scimledger.ledger.application import Ledger
from scimledger.projections.scim import PageMarks
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import UsageRecorder


class Following(Protocol):
    """A read model kept up to date: by this process (a Runner, a consuming Follower) or by
    another one it waits for (a watching Follower)."""

    def wait_for(self, position: int | None, timeout: float = 30.0) -> None: ...

    def catch_up(self) -> int: ...


@dataclass(frozen=True)
class Services:
    ledger: Ledger
    scim: Following  # the SCIM read model
    audit: Following  # the audit trail
    tokens: Following  # the tokens read model
    sql: SQL
    usage: UsageRecorder  # tokens' last use
    page_marks: PageMarks = field(default_factory=PageMarks)  # where import walks are
    rate_limit: RateLimit = field(default_factory=RateLimit.off)  # requests per token


T = TypeVar("T")

# A value Litestar injects by parameter name, unvalidated: services and the caller's context
# are built by the app itself.
Injected: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]
