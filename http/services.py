"""What the HTTP layer is given to work with: the ledger and the read models."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Annotated, Protocol, TypeAlias, TypeVar

from litestar.di import Dependency
from litestar.params import SkipValidationMarker

from scimledger.http.log_watch import LogWatch
from scimledger.http.rate_limit import RateLimit
from scimledger.ledger import availability
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import Written
from scimledger.projections.activity import SessionActivity
from scimledger.projections.directory import ScimDirectory
from scimledger.projections.scim import PageMarks
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import UsageRecorder


class Lifecycle:
    """Whether this server process is shutting down (from SIGTERM on: scripts/serve.py)."""

    def __init__(self) -> None:
        self._stopping = threading.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()


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
    # Where people reach this server (`serve --public-url`): the console's links, origin and
    # secure cookies (https); None: as each request reached it.
    public_url: str | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    log_watch: LogWatch = field(default_factory=LogWatch)  # the feed's long polls wait on it
    # `serve --metrics-port`: /metrics is served on that port only, and nothing else but the
    # probes is (http/metrics.py); None: on every port.
    metrics_port: int | None = None

    @property
    def activity(self) -> SessionActivity:
        """Console sessions' last requests (their idle limit)."""
        return SessionActivity(self.sql)

    @property
    def directory(self) -> ScimDirectory:
        """The SCIM read model as the ledger checks group membership against it."""
        return ScimDirectory(self.sql, self.scim.catch_up)


log = logging.getLogger(__name__)


def read_your_writes(services: Services, written: Written) -> None:
    """Waits until the SCIM read model has `written`, so that a GET finds it; for a write
    answered from what it wrote (a create, a delete), not from the read model.

    If the wait fails (the database went away right after the commit, or the read model is
    far behind), the write stands all the same: it is answered as done, and the read model
    catches up once it can. A 503 there would tell the client it failed, and a retried
    create would meet its own resource: 409."""
    try:
        services.scim.wait_for(written.position)
    except Exception as exc:
        if not (availability.unavailable(exc) or isinstance(exc, TimeoutError)):
            raise
        log.warning(
            "%s written at position %s; the read model has not caught up with it yet (%s)",
            written.id,
            written.position,
            availability.describe(exc),
        )


T = TypeVar("T")

# A value Litestar injects by parameter name, unvalidated: services and the caller's context
# are built by the app itself.
Injected: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]
