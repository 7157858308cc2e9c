"""Settings from a TOML file (`--config FILE`, or $SCIMLEDGER_CONFIG), under flags and
environment variables: a flag wins over the environment, which wins over the file, which wins
over the default.

The file holds the same settings as the flags, by the flags' names with underscores
(`max_connections = 500` for `--max-connections 500`), at its top level:

    database = "postgresql://scim@db.example/scimledger"
    database_password_file = "/run/secrets/scimledger-db"
    host = "0.0.0.0"
    workers = "auto"

A key the file may not hold is an error that names it. A password is never written in the
file: `database` may not hold one, `database_password_file` names a file that does (its
first line). `scimledger config show` prints what a server would run with, and where each
value came from, passwords masked.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from scimledger.ledger.database import ENV_VAR, DatabaseURL
from scimledger.ledger.keys import MASTER_KEY_ENV, master_key_file
from scimledger.scripts.command import Commands, UsageError, family
from scimledger.scripts.console import PUBLIC_URL_ENV

CONFIG_ENV = "SCIMLEDGER_CONFIG"
MAX_FILE_BYTES = 1024 * 1024
# The environment variables of settings that have one (besides the database's).
ENVIRONMENT = {"public_url": PUBLIC_URL_ENV}
# Keys of the file that are no flag's.
FILE_ONLY = {"database_password_file"}
# Every key the file may hold, whichever command reads it: each `configurable` command's
# options add theirs (one file serves `serve` and every other command alike).
KNOWN = {"database", "master_key_file", *FILE_ONLY}


@dataclass(frozen=True)
class Option:
    """A command's option that the file may set: how its flag parses a value, and its
    default."""

    dest: str
    parse: Any  # the flag's type (a callable of a string), or None for a string
    choices: tuple[Any, ...] | None
    default: Any


def configurable(parser: argparse.ArgumentParser) -> None:
    """Lets the file set every option of `parser` (a command's) but --database and
    --config: their defaults move here, so that a flag given can be told from one left out."""
    options = {}
    for action in parser._actions:  # argparse has no public list of them
        if not action.option_strings or action.dest in ("help", "database", "config"):
            continue
        choices = tuple(action.choices) if action.choices is not None else None
        options[action.dest] = Option(action.dest, action.type, choices, action.default)
        action.default = None
        KNOWN.add(action.dest)
    parser.set_defaults(configurable=options)


def read_file(path: str) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"the config file {path} is larger than 1 MiB")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"the config file {path} is not valid TOML: {exc}") from None


def resolve(args: argparse.Namespace) -> dict[str, str]:
    """Fills in every setting of the command that no flag gave, from the environment, then
    the file, then the default; returns where each came from (flag, environment, file,
    default)."""
    path = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    settings = read_file(path) if path else {}
    options: dict[str, Option] = getattr(args, "configurable", {})
    for key in settings:
        if key not in KNOWN:
            raise UsageError(f"the config file {path} has an unknown setting: {key!r}")
    sources = {
        "database": _database(args, settings, path),
        "master_key_file": _master_key_file(args, settings, path),
    }
    for dest, option in options.items():
        if getattr(args, dest) is not None:
            sources[dest] = "flag"
        elif dest in ENVIRONMENT and os.environ.get(ENVIRONMENT[dest]):
            setattr(args, dest, os.environ[ENVIRONMENT[dest]])
            sources[dest] = "environment"
        elif dest in settings:
            setattr(args, dest, _parsed(option, settings[dest], path))
            sources[dest] = "file"
        else:
            setattr(args, dest, option.default)
            sources[dest] = "default"
    return sources


def _parsed(option: Option, value: Any, path: str | None) -> Any:
    """A file's value, checked as the flag checks its text."""
    key = option.dest
    if isinstance(value, dict | list) or (isinstance(value, bool) and option.parse is not None):
        raise UsageError(f"{key} in the config file {path} must be a single value")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        parsed = option.parse(text) if option.parse is not None else text
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise UsageError(f"{key} in the config file {path}: {exc}") from None
    if option.choices is not None and parsed not in option.choices:
        allowed = ", ".join(str(choice) for choice in option.choices)
        raise UsageError(f"{key} in the config file {path} must be one of {allowed}")
    return parsed


def _database(args: argparse.Namespace, settings: dict[str, Any], path: str | None) -> str:
    if getattr(args, "database", None):
        return "flag"
    if os.environ.get(ENV_VAR):
        return "environment"
    if "database" not in settings:
        if "database_password_file" in settings:
            raise UsageError(f"the config file {path} has a database_password_file but no database")
        return "default"
    url = settings["database"]
    if not isinstance(url, str):
        raise UsageError(f"database in the config file {path} must be a URL")
    password_file = settings.get("database_password_file")
    if urlsplit(url).password:
        raise UsageError(
            f"database in the config file {path} holds a password: put it in a file of its "
            "own and name that file as database_password_file"
        )
    if password_file is not None:
        url = _with_password(url, _first_line(str(password_file)))
    args.database = url
    return "file"


def _master_key_file(args: argparse.Namespace, settings: dict[str, Any], path: str | None) -> str:
    """Where the master key of personal data is (ledger.keys): set in the environment, where
    the ledger reads it (and a server's worker processes inherit it)."""
    given = getattr(args, "master_key_file", None)
    if given:
        os.environ[MASTER_KEY_ENV] = given
        return "flag"
    if os.environ.get(MASTER_KEY_ENV):
        return "environment"
    if "master_key_file" not in settings:
        return "default"
    value = settings["master_key_file"]
    if not isinstance(value, str) or not value:
        raise UsageError(f"master_key_file in the config file {path} must be a file's path")
    os.environ[MASTER_KEY_ENV] = value
    return "file"


def _first_line(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the database password file {path}: {exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise UsageError(f"the database password file {path} is empty")
    return lines[0]


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    if not parts.username:
        raise UsageError("database_password_file needs a user in the database URL")
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(parts.username, safe='')}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def show(args: argparse.Namespace) -> int:
    """`scimledger config show`: the settings a server started here would run with."""
    from scimledger.scripts.cli import build_parser  # noqa: PLC0415 (cli imports this module)

    serve = build_parser().parse_args(["serve"])
    serve.config = args.config
    serve.database = args.database
    serve.master_key_file = args.master_key_file
    sources = resolve(serve)
    rows = [
        ("database", DatabaseURL.from_setting(serve.database).redacted(), sources["database"]),
        ("master_key_file", _master_key_shown(serve.database), sources["master_key_file"]),
    ]
    for dest in sorted(serve.configurable):
        value = getattr(serve, dest)
        rows.append((dest, "-" if value is None else str(value), sources[dest]))
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        print(f"{key:<{width}}  {_printable(value)}  ({source})")
    where = args.config or os.environ.get(CONFIG_ENV)
    print(f"config file: {where or 'none'}", file=sys.stderr)
    return 0


def _master_key_shown(database: str | None) -> str:
    url = DatabaseURL.from_setting(database)
    found = master_key_file(url)
    return str(found) if found is not None else "- (none: PostgreSQL needs one)"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def add_commands(commands: Commands) -> None:
    actions = family(commands, "config", "the settings in effect")
    parser = actions.add_parser(
        "show",
        help="print the settings `serve` would run with here, and where each came from "
        "(flag, environment, config file or default), passwords masked",
    )
    parser.add_argument("--config", metavar="FILE", help=f"a TOML file (default: ${CONFIG_ENV})")
    parser.add_argument("--database", metavar="URL")
    parser.add_argument("--master-key-file", metavar="FILE")
    parser.set_defaults(handler=show)
