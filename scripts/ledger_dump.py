"""`scimledger ledger export` and `ledger import`: the log as a portable file of JSON lines,
for backups and for auditors, restorable into an empty database of either kind.

The file: a header line, one line per event, one per data key, and an end line.

    {"format": "scimledger-log", "version": 2, "head": 1234, "master_id": "<hex>"}
    {"position": 1, "aggregate_id": "...", "version": 1, "topic": "...", "payload": "<base64>",
     "link": "<hex>"}
    ...
    {"key": "<owner id>", "wrapped": "<base64>"}
    ...
    {"end": true, "events": 1234, "keys": 56, "head_link": "<hex>"}

The data keys (ledger.keys) are those of the people not erased when the file was written,
wrapped by the master key named in the header: the file is no use without that key, and a
person erased after it was written can still be read in it, by whoever has both. Version 1
files (before personal data was sealed) have no keys and still import.

Payloads are the stored bytes (compressed: ledger.compression), each with its hash-chain
link, so that the file proves itself: `import` recomputes every link before it writes
anything, refuses a file whose links do not hold or whose end line is missing (cut short),
then writes the events at their positions, builds the read models and checks the chain's
head against the file's. Organizations' secrets (single sign-on) are not exported: set them
again after a restore. Interrupted, `import` continues where it stopped when run again.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any
from uuid import UUID

from scimledger.ledger.application import Ledger
from scimledger.ledger.keys import MASTER_KEY_ENV, MasterKey, MasterKeyError
from scimledger.projections import chain
from scimledger.projections.registry import PROJECTIONS
from scimledger.projections.sql import SQL
from scimledger.scripts.command import Commands, UsageError, opened
from scimledger.scripts.ledger_copy import (
    BATCH,
    Log,
    Row,
    TargetNotEmpty,
    build,
    chain_link,
    check_prefix,
)
from scimledger.scripts.projections import ProgressMeter

FORMAT = "scimledger-log"
VERSION = 2
MAX_WRAPPED = 200  # characters of a wrapped data key (80 as written)
READABLE = (1, 2)  # the versions `import` reads


def _links(ledger: Ledger, after: int, upto: int) -> dict[int, str]:
    with SQL(ledger).read() as cursor:
        cursor.execute(
            f"SELECT position, link FROM {chain.TABLE} WHERE position > ? AND position <= ?",  # noqa: S608
            (after, upto),
        )
        return {int(row["position"]): str(row["link"]) for row in cursor.fetchall()}


def export(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        verified = chain.extend_and_verify(ledger)
        if not verified.ok:
            print(f"the hash chain is broken: {verified.problem}; not exported", file=sys.stderr)
            return 1
        log = Log(ledger)
        head = verified.head_position
        if args.output == "-":
            count = _write(ledger, log, head, sys.stdout)
        else:
            with Path(args.output).open("x", encoding="utf-8") as output:
                count = _write(ledger, log, head, output)
    print(
        f"exported {count:,} events up to position {head:,}: {verified.head_link}", file=sys.stderr
    )
    return 0


def _write(ledger: Ledger, log: Log, head: int, output: IO[str]) -> int:
    header = {
        "format": FORMAT,
        "version": VERSION,
        "head": head,
        "master_id": ledger.keys.master.id,
    }
    output.write(json.dumps(header) + "\n")
    after, count, last = 0, 0, chain.GENESIS.hex()
    while after < head:
        rows = log.rows(after, head, BATCH)
        if not rows:
            break
        links = _links(ledger, after, rows[-1][0])
        for position, aggregate_id, version, topic, payload in rows:
            last = links[position]
            line = {
                "position": position,
                "aggregate_id": str(aggregate_id),
                "version": version,
                "topic": topic,
                "payload": base64.b64encode(payload).decode("ascii"),
                "link": last,
            }
            output.write(json.dumps(line) + "\n")
        count += len(rows)
        after = rows[-1][0]
    keys = ledger.keys.wrapped_keys()
    for owner, wrapped in keys:
        output.write(json.dumps({"key": owner, "wrapped": wrapped}) + "\n")
    end = {"end": True, "events": count, "keys": len(keys), "head_link": last}
    output.write(json.dumps(end) + "\n")
    return count


class BadFile(Exception):
    pass


def _lines(path: str) -> Iterator[dict[str, Any]]:
    try:
        with Path(path).open(encoding="utf-8") as file:
            for number, text in enumerate(file, 1):
                try:
                    line = json.loads(text)
                except json.JSONDecodeError:
                    raise BadFile(f"line {number} is not JSON") from None
                if not isinstance(line, dict):
                    raise BadFile(f"line {number} is not a JSON object")
                yield line
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _header(path: str) -> dict[str, Any]:
    header = next(_lines(path), None)
    if not header or header.get("format") != FORMAT or header.get("version") not in READABLE:
        raise BadFile(f"not a {FORMAT} file of version {' or '.join(map(str, READABLE))}")
    master_id = header.get("master_id")
    if master_id is not None and not (
        isinstance(master_id, str) and re.fullmatch(r"[0-9a-f]{16}", master_id)
    ):
        # It is named in what an import says (a terminal): never more than a key's id.
        raise BadFile("its master key id is not one (16 hexadecimal digits)")
    return header


def _rows(path: str, keys: list[tuple[str, str]] | None = None) -> Iterator[Row]:
    """The file's events, each checked against its link; raises BadFile at the first that
    does not hold, or if the file is not an export or was cut short. Its data keys are
    added to `keys`."""
    lines = _lines(path)
    _header(path)
    next(lines)
    found: list[tuple[str, str]] = []
    previous, count, position = chain.GENESIS, 0, 0
    for line in lines:
        if line.get("end") is True:
            if line.get("events") != count or line.get("head_link") != previous.hex():
                raise BadFile("its end line does not match its events")
            if line.get("keys", 0) != len(found):
                raise BadFile("its end line does not match its data keys")
            if keys is not None:
                keys.extend(found)
            return
        if "key" in line:
            try:
                wrapped = line["wrapped"]
                if not isinstance(wrapped, str) or len(wrapped) > MAX_WRAPPED:
                    raise ValueError(wrapped)
                found.append((str(UUID(str(line["key"]))), wrapped))
            except (KeyError, ValueError):
                raise BadFile(
                    f"the data key after position {position} is not well formed"
                ) from None
            continue
        try:
            row: Row = (
                int(line["position"]),
                UUID(str(line["aggregate_id"])),
                int(line["version"]),
                str(line["topic"]),
                base64.b64decode(str(line["payload"]), validate=True),
            )
        except (KeyError, ValueError, TypeError):
            raise BadFile(f"the event after position {position} is not well formed") from None
        if row[0] <= position:
            raise BadFile(f"position {row[0]} comes after {position}: out of order")
        position = row[0]
        event = SimpleNamespace(
            id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3], state=row[4]
        )
        previous = chain.link(previous, event)
        if previous.hex() != line.get("link"):
            raise BadFile(f"the event at position {position} does not match its link")
        count += 1
        yield row
    raise BadFile("it has no end line: it was cut short")


def import_(args: argparse.Namespace) -> int:
    meter = ProgressMeter(sys.stderr)
    began = time.monotonic()
    keys: list[tuple[str, str]] = []
    try:
        header = _header(args.file)
        total = sum(1 for _ in _rows(args.file, keys))  # the whole file checked before any write
    except BadFile as exc:
        print(f"not imported: {args.file}: {exc}", file=sys.stderr)
        return 1
    with opened(args) as ledger:
        try:
            wrapped_by = _export_master(args, header, ledger, bool(keys))
            _check_keys(keys, wrapped_by)  # before anything is written
        except MasterKeyError as exc:
            print(f"not imported: {exc}", file=sys.stderr)
            return 1
        log = Log(ledger)
        head = log.head()
        batch: list[Row] = []
        seen = done = 0
        matched = not head  # an empty target; else its last event must be the file's
        try:
            for row in _rows(args.file):
                seen += 1
                if row[0] <= head:  # an interrupted import: these are in already
                    if row[0] == head:
                        check_prefix(log, row, seen)
                        matched = True
                    continue
                if not matched:
                    check_prefix(log, None, 0)  # raises: the target holds something else
                batch.append(row)
                if len(batch) == BATCH:
                    done = _append(log, batch, done)
            if not matched:
                check_prefix(log, None, 0)
        except TargetNotEmpty as exc:
            print(f"not imported: {exc}", file=sys.stderr)
            return 1
        done = _append(log, batch, done)
        position = log.head()
        if keys:  # before the read models, which read personal data with them
            ledger.keys.add_wrapped(keys, wrapped_by)
        for kept in PROJECTIONS:
            build(ledger, kept.build(""), position, meter)
        checked = chain.verify(ledger)
        ours = chain_link(ledger, position)
    if not checked.ok:
        print(f"the imported chain is broken: {checked.problem}", file=sys.stderr)
        return 1
    earlier = f" ({total - done:,} were in already)" if total - done else ""
    print(
        f"imported {done:,} events{earlier}, up to position {position:,}, in "
        f"{time.monotonic() - began:.1f} s; chain verified: head {ours}; read models built"
    )
    return 0


def _export_master(
    args: argparse.Namespace, header: dict[str, Any], ledger: Ledger, has_keys: bool
) -> MasterKey:
    """The master key the file's data keys were wrapped by: this ledger's, or the one given
    with --export-master-key; MasterKeyError if neither is it."""
    wanted = header.get("master_id")
    if not has_keys or wanted == ledger.keys.master.id:
        return ledger.keys.master
    if args.export_master_key is None:
        raise MasterKeyError(
            f"the file's data keys were wrapped by master key {wanted}, and this database's is"
            f" {ledger.keys.master.id}: give that key's file with --export-master-key (they are"
            " wrapped again by this database's), or run with"
            f" {MASTER_KEY_ENV} set to it"
        )
    given = MasterKey.read(Path(args.export_master_key))
    if given.id != wanted:
        raise MasterKeyError(
            f"{args.export_master_key} is master key {given.id}, not {wanted}, which wrapped"
            " the file's data keys"
        )
    return given


def _check_keys(keys: list[tuple[str, str]], master: MasterKey) -> None:
    """Each of the file's data keys opens with `master` (the hash chain does not cover them):
    MasterKeyError names the first that does not."""
    for owner, wrapped in keys:
        if not master.opens(wrapped, UUID(owner)):
            raise MasterKeyError(
                f"the file's data key of {owner} does not open with master key {master.id}:"
                " it was altered"
            )


def _append(log: Log, batch: list[Row], done: int) -> int:
    if batch:
        log.append(batch)
        done += len(batch)
        batch.clear()
    return done


def add(actions: Commands, runs: Any) -> None:
    """`ledger export` and `ledger import`, in the `ledger` family (scripts/chain.py)."""
    parser = actions.add_parser(
        "export",
        help="write the whole log, with its hash chain, as JSON lines (a backup, or for auditors)",
    )
    parser.add_argument(
        "--output", "-o", default="-", metavar="FILE", help="a new file (default: stdout)"
    )
    runs(parser, export)
    parser = actions.add_parser(
        "import",
        help="restore an export into an empty database: every link checked first, then "
        "the read models built",
    )
    parser.add_argument("file", metavar="FILE")
    parser.add_argument(
        "--export-master-key",
        metavar="FILE",
        help="the master key the file's data keys were wrapped by, when it is not this"
        " database's (they are wrapped again by this database's)",
    )
    runs(parser, import_)
