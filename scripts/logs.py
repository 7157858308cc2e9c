"""The servers' log on stderr, a line per record: readable text on a terminal, else JSON.

Every line has `time` (UTC), `level`, `logger` and `message`; a line written while a request
runs also has its `request_id` (http.envelope); access lines add `method`, `route`, `status`,
`duration_ms`, `token_id` and `client`. Messages hold ids, never a secret or a resource's
attributes: the access line names the route, not the URL that was asked for, and a traceback
names the database error behind a failure, not the values PostgreSQL quotes in its message.
Text escapes control characters: a value that came from a client cannot drive the terminal.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import msgspec
import psycopg

from scimledger.ledger.context import REQUEST_ID
from scimledger.scripts.output import escaped

# Fields a log call may add with `extra=`: copied onto the line when present.
EXTRA_FIELDS = ("method", "route", "status", "duration_ms", "token_id", "client")

LogFormat = Literal["auto", "text", "json"]


_encode = msgspec.json.Encoder(enc_hook=str).encode


def _message(exc: BaseException) -> str:
    """`exc`'s message, but for an error PostgreSQL reported (or one the event store made of
    it) what it names: its SQLSTATE and the constraint, table and column involved. Its message
    can quote a row's values ("Key (org, user_name)=(acme, alice@example.com) already exists")."""
    database = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    if not isinstance(database, psycopg.Error) or database.sqlstate is None:
        return str(exc)
    diag = database.diag
    named = [
        f"{kind} {name}"
        for kind, name in (
            ("constraint", diag.constraint_name),
            ("table", diag.table_name),
            ("column", diag.column_name),
        )
        if name
    ]
    return f"[PostgreSQL error {', '.join([database.sqlstate, *named])}]"


def format_exception(exc: BaseException) -> str:
    """The traceback Python would print, causes and contexts first, each message as
    `_message` gives it."""
    parts: list[str] = []
    seen: set[int] = set()

    def render(exc: BaseException) -> None:
        seen.add(id(exc))
        if exc.__cause__ is not None and id(exc.__cause__) not in seen:
            render(exc.__cause__)
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
            )
        elif (
            exc.__context__ is not None
            and not exc.__suppress_context__
            and id(exc.__context__) not in seen
        ):
            render(exc.__context__)
            parts.append(
                "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        if exc.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(exc.__traceback__))
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ not in ("builtins", "__main__"):
            name = f"{kind.__module__}.{name}"
        message = _message(exc)
        parts.append(f"{name}: {message}\n" if message else f"{name}\n")

    render(exc)
    return "".join(parts).rstrip("\n")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    line: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "request_id": REQUEST_ID.get(),
    }
    line.update((field, record.__dict__.get(field)) for field in EXTRA_FIELDS)
    if record.exc_info and record.exc_info[1] is not None:
        line["exception"] = format_exception(record.exc_info[1])
    return {name: value for name, value in line.items() if value is not None}


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _encode(_fields(record)).decode()


class Text(logging.Formatter):
    """`2026-12-03 21:09:57.824 INFO  scimledger.access  GET /scim/v2/Users 200  request_id=...
    duration_ms=1.31`: the other fields as key=value (but those the access line's message
    says), then the traceback's lines, if any."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        exception = fields.pop("exception", None)
        time, level, logger, message = map(fields.pop, ("time", "level", "logger", "message"))
        line = f"{time.replace('T', ' ')[:23]} {level:<5} {logger}  {message}"
        pairs = [f"{k}={v}" for k, v in fields.items() if k not in ("method", "route", "status")]
        if pairs:
            line += "  " + " ".join(pairs)
        lines = [line, *exception.split("\n")] if exception else [line]
        return "\n".join(map(escaped, lines))


def formatter(log_format: LogFormat, stream: TextIO) -> logging.Formatter:
    """Text for `text`, JSON lines for `json`; for `auto`, text if `stream` is a terminal."""
    text = log_format == "text" or (log_format == "auto" and stream.isatty())
    return Text() if text else JsonLines()


def configure(log_format: LogFormat) -> None:
    """Sends every logger's lines, uvicorn's and the libraries' included, to stderr, in
    `log_format` (see `formatter`)."""
    # A line names no thread, process or source line: not collected (each costs every
    # record, and a server writes one per request).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the documented way to skip looking for the caller
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format, sys.stderr))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
