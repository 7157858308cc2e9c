"""`scimledger keys new-master|rotate-master|show`: the master key that wraps every person's
data key (ledger.keys). The events are never touched: rotating wraps the data keys again."""

from __future__ import annotations

import argparse
from pathlib import Path

from scimledger.ledger.keys import MASTER_KEY_ENV, MasterKey, MasterKeyError, master_key_file
from scimledger.scripts.command import Commands, UsageError, family, opened, runs


def new_master(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.exists():
        raise UsageError(f"{path} exists: a master key is never overwritten")
    try:
        key = MasterKey.create(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    print(f"master key {key.id} written to {path} (readable by you only)")
    print("keep a copy apart from the database and its backups: without it no one's data reads")
    return 0


def show(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        keys = ledger.keys
        print(f"master key: {keys.master.id}")
        where = master_key_file(ledger.database)
        print(f"read from: {where or '(none: an in-memory database)'}")
        print(f"data keys: {keys.count():,} (one per person not erased, and the index key)")
    return 0


def rotate_master(args: argparse.Namespace) -> int:
    """Wraps every data key with the master key in `--new`, in one transaction."""
    try:
        new = MasterKey.read(Path(args.new))
    except MasterKeyError as exc:
        raise UsageError(str(exc)) from None
    with opened(args) as ledger:
        old = ledger.keys.master
        if new.id == old.id:
            raise UsageError(f"{args.new} is the master key in use ({old.id})")
        count, secrets = ledger.rotate_master(new)
    print(
        f"{count:,} data keys wrapped and {secrets:,} organizations' secrets sealed again: by"
        f" master key {new.id}, no longer by {old.id}"
    )
    print(
        f"from now on give {args.new} ({MASTER_KEY_ENV}, or in place of the key beside the"
        " SQLite database); destroy the old key once every backup made with it has expired"
    )
    return 0


def add_commands(commands: Commands) -> None:
    actions = family(commands, "keys", "the master key of personal data's keys")
    parser = actions.add_parser("new-master", help="make a master key in a new file (mode 0600)")
    parser.add_argument("--file", required=True, metavar="FILE")
    parser.set_defaults(handler=new_master)
    parser = actions.add_parser("show", help="which master key the database uses, and its keys")
    runs(parser, show)
    parser = actions.add_parser(
        "rotate-master",
        help="wrap every data key with another master key (servers stopped); events untouched",
    )
    parser.add_argument(
        "--new", required=True, metavar="FILE", help="the new master key (keys new-master)"
    )
    runs(parser, rotate_master)
