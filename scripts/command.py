"""What every `scimledger` command shares: its `--database` option, the ledger it opens, and
`UsageError` for arguments that cannot be used (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeAlias

from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DEFAULT_URL, ENV_VAR, DatabaseURL

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    pass


def family(commands: Commands, name: str, text: str) -> Commands:
    """`scimledger NAME ACTION ...`: the sub-parsers of NAME's actions."""
    parser = commands.add_parser(name, help=text)
    return parser.add_subparsers(required=True, metavar="ACTION")


def runs(parser: argparse.ArgumentParser, handler: Handler) -> None:
    """Completes a command's parser: the `--database` and `--config` options (last in its
    help) and the function that runs it."""
    parser.add_argument(
        "--database",
        metavar="URL",
        help=f"sqlite:///path/file.db or postgresql://user@host:port/db "
        f"(default: ${ENV_VAR}, else the config file's, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="a TOML file of settings (default: $SCIMLEDGER_CONFIG)"
    )
    parser.add_argument(
        "--master-key-file",
        metavar="FILE",
        help="the master key of personal data (default: $SCIMLEDGER_MASTER_KEY_FILE, else the"
        " config file's master_key_file, else beside a SQLite database)",
    )
    parser.set_defaults(handler=handler)


@contextmanager
def opened(args: argparse.Namespace) -> Iterator[Ledger]:
    """The ledger on the command's `--database`, closed when the command is done with it."""
    ledger = Ledger(DatabaseURL.from_setting(args.database))
    try:
        yield ledger
    finally:
        ledger.close()
