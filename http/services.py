"""What the HTTP layer is given to work with: the ledger and the read models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypeAlias, TypeVar

from litestar.di import Dependency
from litestar.params import SkipValidationMarker

from scimledger.ledger.application import Ledger
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import UsageRecorder


@dataclass(frozen=True)
class Services:
    ledger: Ledger
    scim: Runner  # keeps the SCIM read model caught up
    audit: Runner  # keeps the audit trail caught up
    tokens: Runner  # keeps the tokens read model caught up
    sql: SQL
    usage: UsageRecorder  # tokens' last use


T = TypeVar("T")

# A value Litestar injects by parameter name, unvalidated: services and the caller's context
# are built by the app itself.
Injected: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]
