"""`scimledger serve`: the SCIM server, with the read model kept up to date in-process."""

from __future__ import annotations

import logging
import shlex
import signal
import sys
from pathlib import Path

import uvicorn

from scimledger.http.app import SCIM_BASE_PATH, create_app
from scimledger.http.services import Services
from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DEFAULT_URL, DatabaseURL
from scimledger.projections.audit import AuditProjection
from scimledger.projections.chain import ChainProjection
from scimledger.projections.runner import Runner
from scimledger.projections.scim import ScimProjection
from scimledger.projections.sql import SQL
from scimledger.projections.tokens import TokensProjection, UsageRecorder


def _token_command(database_flag: str | None) -> str:
    program = sys.argv[0] if sys.argv and "/" in sys.argv[0] else "scimledger"
    if Path(program).name != "scimledger":
        program = "scimledger"
    command = f'{program} tokens issue --org acme --name "Okta" --expires never'
    if database_flag:
        command += f" --database {shlex.quote(database_flag)}"
    return command


def serve(database: DatabaseURL, host: str, port: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ledger = Ledger(database)
    read_model = Runner(ledger, ScimProjection())
    read_model.start()
    ledger_chain = Runner(ledger, ChainProjection())
    ledger_chain.start()
    audit_trail = Runner(ledger, AuditProjection())
    audit_trail.start()
    tokens = Runner(ledger, TokensProjection())
    tokens.start()
    sql = SQL(ledger)
    app = create_app(
        Services(
            ledger=ledger,
            scim=read_model,
            audit=audit_trail,
            tokens=tokens,
            sql=sql,
            usage=UsageRecorder(sql),
        )
    )
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
    where = (
        f"SQLite file {Path(database.path).resolve()}"
        if database.kind == "sqlite"
        else database.redacted()
    )
    # Spell out a non-default database, however it was given: the token command is run in
    # another terminal, which may not share this one's environment.
    # A password is never printed: the command then shows *** in its place.
    flag = database.redacted() if database.url != DEFAULT_URL else None
    print(
        f"scimledger is serving on {where}\n"
        f"SCIM connector base URL: http://{shown_host}:{port}{SCIM_BASE_PATH}\n"
        f"Issue a token (in another terminal): {_token_command(flag)}",
        flush=True,
    )
    config = uvicorn.Config(
        app, host=host, port=port, server_header=False, log_level="info", lifespan="on"
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handler that was installed before it. Installing ours means that re-raise lands here
    # and the process finishes its own cleanup and exits 0, instead of dying by the signal.
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: received.append(number))
    try:
        uvicorn.Server(config).run()
    finally:
        read_model.stop()
        ledger_chain.stop()
        audit_trail.stop()
        tokens.stop()
        ledger.close()
    if received:
        logging.getLogger(__name__).info("stopped on %s", signal.Signals(received[0]).name)
    return 0
