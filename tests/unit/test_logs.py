"""The servers' log lines (scripts/logs.py): a traceback names the database error behind a
failure, never the values PostgreSQL quotes in its message (a userName, an email)."""

from __future__ import annotations

import json
import logging
import traceback

import psycopg
from eventsourcing.persistence import IntegrityError

from scimledger.scripts.logs import JsonLines

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
    try:
        {}["missing"]
    except KeyError as exc:
        error = exc
    line = logged(error)
    assert line["exception"].splitlines()[-1] == "KeyError: 'missing'"
    assert line["message"] == "it failed"
