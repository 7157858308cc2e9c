"""What the HTTP layer is given to work with: the ledger and the read models."""

from __future__ import annotations

from dataclasses import dataclass

from scimledger.ledger.application import Ledger
from scimledger.projections.runner import Runner
from scimledger.projections.sql import SQL


@dataclass(frozen=True)
class Services:
    ledger: Ledger
    users: Runner  # keeps the SCIM read model caught up
    sql: SQL
