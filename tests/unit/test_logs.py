"""The servers' log lines (scripts/logs.py): a traceback names the database error behind a
failure, never the values PostgreSQL quotes in its message (a userName, an email); a text line
for a terminal, JSON lines elsewhere; text never passes a control character through."""

from __future__ import annotations

import io
import json
import logging
import traceback
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from scimledger.ledger.context import REQUEST_ID
from scimledger.scripts.logs import JsonLines, LogFormat, Text, formatter

ORG, USER_NAME = "acme", "alice@example.com"


def logged(exc: BaseException) -> dict[str, str]:
    """The line for `log.error("it failed", exc_info=exc)`."""
    exc_info = (type(exc), exc, exc.__traceback__)
    record = logging.LogRecord(
        "scimledger.test", logging.ERROR, __file__, 1, "it failed", None, exc_info
    )
    line: dict[str, str] = json.loads(JsonLines().format(record))
    return line


def unique_violation() -> psycopg.errors.UniqueViolation:
    """What psycopg raises for a duplicate key: the values are in its message."""
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
        conn.execute("CREATE TEMP TABLE scim_users (org text, user_name text)")
        conn.execute(
            "ALTER TABLE scim_users ADD CONSTRAINT scim_users_user_name_key UNIQUE (org, user_name)"
        )
        row = (ORG, USER_NAME)  # not spelled in a line a traceback would show
        conn.execute("INSERT INTO scim_users VALUES (%s, %s)", row)
        try:
            conn.execute("INSERT INTO scim_users VALUES (%s, %s)", row)
        except psycopg.errors.UniqueViolation as exc:
            return exc
    raise AssertionError("no unique violation")


def test_a_postgresql_error_is_logged_by_its_class_sqlstate_and_names_not_its_values() -> None:
    cause = unique_violation()
    assert f"({ORG}, {USER_NAME})" in str(cause)  # what the log must not repeat
    try:
        raise IntegrityError(str(cause)) from cause  # as the event store wraps it
    except IntegrityError as exc:
        wrapped = exc
    line = logged(wrapped)
    text = line["exception"]
    assert USER_NAME not in text
    assert ORG not in text
    named = "[PostgreSQL error 23505, constraint scim_users_user_name_key, table scim_users]"
    cause_part, wrapped_part = text.split(
        "\n\nThe above exception was the direct cause of the following exception:\n\n"
    )
    assert cause_part.startswith("Traceback (most recent call last):\n  File ")
    assert cause_part.splitlines()[-1] == f"psycopg.errors.UniqueViolation: {named}"
    assert wrapped_part.splitlines() == [  # as Python prints it, but for the message
        "Traceback (most recent call last):",
        *"".join(traceback.format_tb(wrapped.__traceback__)).splitlines(),
        f"eventsourcing.persistence.IntegrityError: {named}",
    ]


def test_other_errors_keep_their_message() -> None:
    empty: dict[str, int] = {}
    try:
        empty["missing"]
    except KeyError as exc:
        error = exc
    line = logged(error)
    assert line["exception"].splitlines()[-1] == "KeyError: 'missing'"
    assert line["message"] == "it failed"


ACCESS = {
    "method": "GET",
    "route": "/scim/v2/Users",
    "status": 200,
    "duration_ms": 1.31,
    "token_id": "7f9c1e2a",
    "client": "127.0.0.1",
}


def record(message: str, **extra: Any) -> logging.LogRecord:
    """A record made at 2026-12-03 21:09:57.824 UTC, as `log.info(message, extra=extra)`."""
    made = logging.LogRecord("scimledger.access", logging.INFO, __file__, 1, message, None, None)
    made.created = datetime(2026, 12, 3, 21, 9, 57, 824000, tzinfo=UTC).timestamp()
    made.__dict__.update(extra)
    return made


def test_an_access_line_in_text_says_time_level_logger_message_then_the_other_fields() -> None:
    reset = REQUEST_ID.set("r-1")
    try:
        line = Text().format(record("GET /scim/v2/Users 200", **ACCESS))
    finally:
        REQUEST_ID.reset(reset)
    assert line == (
        "2026-12-03 21:09:57.824 INFO  scimledger.access  GET /scim/v2/Users 200  "
        "request_id=r-1 duration_ms=1.31 token_id=7f9c1e2a client=127.0.0.1"
    )


def test_an_access_line_in_json_has_every_field() -> None:
    reset = REQUEST_ID.set("r-1")
    try:
        line = JsonLines().format(record("GET /scim/v2/Users 200", **ACCESS))
    finally:
        REQUEST_ID.reset(reset)
    assert line == (
        '{"time":"2026-12-03T21:09:57.824+00:00","level":"INFO","logger":"scimledger.access",'
        '"message":"GET /scim/v2/Users 200","request_id":"r-1","method":"GET",'
        '"route":"/scim/v2/Users","status":200,"duration_ms":1.31,"token_id":"7f9c1e2a",'
        '"client":"127.0.0.1"}'
    )


def test_a_line_without_fields_ends_with_its_message() -> None:
    line = Text().format(record("stopped on SIGTERM"))
    assert line == "2026-12-03 21:09:57.824 INFO  scimledger.access  stopped on SIGTERM"


def test_text_escapes_control_characters_in_the_message_and_the_fields() -> None:
    """A value can come from a client: an escape sequence must not reach the terminal, and a
    newline must not start what looks like another line."""
    line = Text().format(record("agent \x1b[2J\x9b31m\x07", client="10.0.0.1\nFAKE\r\t"))
    assert line == (
        "2026-12-03 21:09:57.824 INFO  scimledger.access  agent \\x1b[2J\\x9b31m\\x07  "
        "client=10.0.0.1\\nFAKE\\r\\t"
    )


def test_a_traceback_in_text_follows_its_line_and_names_postgresql_errors_not_values() -> None:
    cause = unique_violation()
    try:
        raise IntegrityError(str(cause)) from cause
    except IntegrityError as exc:
        wrapped = exc
    made = record("it failed")
    made.exc_info = (type(wrapped), wrapped, wrapped.__traceback__)
    lines = Text().format(made).split("\n")
    assert lines[0] == "2026-12-03 21:09:57.824 INFO  scimledger.access  it failed"
    assert lines[1] == "Traceback (most recent call last):"
    named = "[PostgreSQL error 23505, constraint scim_users_user_name_key, table scim_users]"
    assert lines[-1] == f"eventsourcing.persistence.IntegrityError: {named}"
    assert USER_NAME not in "\n".join(lines)


class Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.mark.parametrize(
    ("log_format", "terminal", "kind"),
    [
        ("auto", True, Text),
        ("auto", False, JsonLines),
        ("text", False, Text),
        ("json", True, JsonLines),
    ],
)
def test_auto_writes_text_to_a_terminal_and_json_elsewhere_unless_told(
    log_format: LogFormat, terminal: bool, kind: type[logging.Formatter]
) -> None:
    assert type(formatter(log_format, Stream(terminal))) is kind
