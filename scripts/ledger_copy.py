"""Copying a ledger's log to another database, of either kind, exactly: every stored event
at its own position (the hash chain covers positions), with its aggregate id, version, topic
and payload as stored; the groups' snapshots; and what lives beside the log and cannot be
made again from it (organizations' secrets, tokens' last use, the data keys of personal
data: ledger.keys, wrapped again by the target's master key if it has another one).

The copy goes in batches, each committed on the target with its events: a copy interrupted
anywhere resumes after the last batch committed. It copies up to the source's head as it
was when it started. Then the command builds the projections on the target (the hash chain
recomputed from the copied events) and checks the chain's head against the source's.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from scimledger.ledger.application import Ledger
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.keys import MasterKey, MasterKeyError
from scimledger.ledger.secrets import bound
from scimledger.ledger.secrets import opened as secret_value
from scimledger.projections import chain
from scimledger.projections.rebuild import Progress
from scimledger.projections.registry import PROJECTIONS
from scimledger.projections.runner import Projection, Runner
from scimledger.projections.sql import SQL
from scimledger.scripts.command import Commands, UsageError
from scimledger.scripts.projections import ProgressMeter

BATCH = 5_000

# Tables beside the log that no projection can make again, with their key columns.
BESIDE = {
    "organization_secrets": ("org_id", "name", "set_at", "value"),
    "token_usage": ("token_id", "last_used"),
}
Row = tuple[int, UUID, int, str, bytes]  # position, aggregate id, version, topic, payload


class TargetNotEmpty(Exception):
    """The target holds events that are not the start of the source's log."""


@dataclass(frozen=True)
class Log:
    """A ledger's log, as rows."""

    ledger: Ledger

    @property
    def sql(self) -> SQL:
        return SQL(self.ledger)

    @property
    def _position(self) -> str:
        return "rowid" if self.ledger.database.kind == "sqlite" else "notification_id"

    def head(self) -> int:
        with self.sql.read() as cursor:
            table = self.ledger.events_table
            cursor.execute(f"SELECT MAX({self._position}) AS head FROM {table}")  # noqa: S608
            row = cursor.fetchone()
        return int(row["head"] or 0) if row is not None else 0

    def count(self, upto: int) -> int:
        with self.sql.read() as cursor:
            cursor.execute(
                f"SELECT COUNT(*) AS n FROM {self.ledger.events_table}"  # noqa: S608
                f" WHERE {self._position} <= ?",
                (upto,),
            )
            row = cursor.fetchone()
        return int(row["n"]) if row is not None else 0

    def rows(self, after: int, upto: int, limit: int = BATCH) -> list[Row]:
        position = self._position
        with self.sql.read() as cursor:
            cursor.execute(
                f"SELECT {position} AS position, originator_id, originator_version, topic, state"  # noqa: S608
                f" FROM {self.ledger.events_table} WHERE {position} > ? AND {position} <= ?"
                f" ORDER BY {position} LIMIT ?",
                (after, upto, limit),
            )
            return [
                (
                    int(row["position"]),
                    _uuid(row["originator_id"]),
                    int(row["originator_version"]),
                    str(row["topic"]),
                    bytes(row["state"]),
                )
                for row in cursor.fetchall()
            ]

    def append(self, rows: Sequence[Row]) -> None:
        """Inserts `rows` at their own positions, in one transaction."""
        position = self._position
        values = [
            (p, _stored_id(self.ledger, i), version, topic, state)
            for p, i, version, topic, state in rows
        ]
        with self.sql.transaction(commit=True) as cursor:
            cursor.executemany(
                f"INSERT INTO {self.ledger.events_table}"  # noqa: S608 (the library's name)
                f" ({position}, originator_id, originator_version, topic, state)"
                " VALUES (?, ?, ?, ?, ?)",
                values,
            )
            if self.ledger.database.kind == "postgresql":  # the next event comes after these
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(?, 'notification_id'), ?)",
                    (self.ledger.events_table, rows[-1][0]),
                )


def snapshots_table(ledger: Ledger) -> str:
    recorder: Any = ledger.snapshots.recorder if ledger.snapshots is not None else None
    return str(recorder.events_table_name)


def _exists(ledger: Ledger, table: str) -> bool:
    with SQL(ledger).read() as cursor:
        return cursor.table_exists(table)


def copy_beside(source: Ledger, target: Ledger) -> int:
    """Copies the groups' snapshots and the tables beside the log that the source has (rows
    the target has already are kept); returns the rows copied. The target's tables exist:
    its ledger and read models are set up first."""
    copied = 0
    snapshot_columns = ("originator_id", "originator_version", "topic", "state")
    tables = [
        (snapshots_table(source), snapshots_table(target), snapshot_columns),
        *((table, table, columns) for table, columns in BESIDE.items()),
    ]
    for table, target_table, columns in tables:
        if not _exists(source, table):
            continue
        with SQL(source).read() as cursor:
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608
            rows = [tuple(_plain(row[column]) for column in columns) for row in cursor.fetchall()]
        if not rows:
            continue
        if columns == snapshot_columns:
            rows = [(_stored_id(target, _uuid(row[0])), *row[1:]) for row in rows]
        if table == "organization_secrets":  # sealed again, with the target's master key
            rows = [_resealed(source, target, row) for row in rows]
        marks = ", ".join("?" for _ in columns)
        with SQL(target).transaction(commit=True) as cursor:
            cursor.executemany(
                f"INSERT INTO {target_table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
                " ON CONFLICT DO NOTHING",
                rows,
            )
        copied += len(rows)
    return copied


def _resealed(source: Ledger, target: Ledger, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row of an organization's secret (org_id, name, set_at, value), sealed by the
    target's master key (ledger.secrets)."""
    org_id, name, set_at, value = (str(column) for column in row)
    plain = secret_value(source.keys.master, org_id, name, set_at, value)
    return org_id, name, set_at, target.keys.master.seal(plain, bound(org_id, name, set_at))


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _stored_id(ledger: Ledger, aggregate_id: UUID) -> UUID | str:
    """An aggregate id as the library stores it: a UUID on PostgreSQL, its 32 hex digits on
    SQLite."""
    return aggregate_id if ledger.database.kind == "postgresql" else aggregate_id.hex


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


@dataclass(frozen=True)
class Copied:
    resumed_after: int  # the target's head when the copy began (0: it was empty)
    upto: int  # the source's head when the copy began: copied up to it
    events: int  # events copied by this run


def copy_log(
    source: Ledger,
    target: Ledger,
    progress: Callable[[int, int], None] | None = None,
    batch: int = BATCH,
) -> Copied:
    """Copies the source's events after the target's head up to the source's head, batch by
    batch. The target must be empty or hold exactly the start of the source's log (a copy
    interrupted before): anything else raises TargetNotEmpty."""
    origin, copy = Log(source), Log(target)
    upto = origin.head()
    after = copy.head()
    if after:
        _check_prefix(origin, copy, after)
    total = origin.count(upto) - origin.count(after)
    done = 0
    position = after
    while position < upto:
        rows = origin.rows(position, upto, batch)
        if not rows:
            break
        copy.append(rows)
        position = rows[-1][0]
        done += len(rows)
        if progress is not None:
            progress(done, total)
    return Copied(after, upto, done)


def _check_prefix(origin: Log, copy: Log, head: int) -> None:
    """The target's events are the source's up to `head`: the same count, and the same event
    at `head` (a copy resumes only where a copy of this source stopped)."""
    mine = origin.rows(head - 1, head, 1)
    if not mine:
        check_prefix(copy, None, origin.count(head))
    else:
        check_prefix(copy, mine[0], origin.count(head))


def check_prefix(log: Log, last: Row | None, count: int) -> None:
    """Raises TargetNotEmpty unless `log` holds `count` events and its last one is `last`:
    the start of what is being copied into it, by an earlier copy that stopped."""
    head = log.head()
    theirs = log.rows(head - 1, head, 1)
    if last is None or theirs != [last] or log.count(head) != count:
        raise TargetNotEmpty(
            f"the target already holds {log.count(head)} events up to position {head}, "
            "which are not the start of the source's log; copy into an empty database"
        )


# -- The command ---------------------------------------------------------------------------


def _since(began: float) -> float:
    return time.monotonic() - began


def build(target: Ledger, projection: Projection, head: int, meter: ProgressMeter) -> None:
    """Builds (or goes on building) a projection on the target, showing its progress."""
    runner = Runner(target, projection)
    runner.create_tables()
    resumed = runner.load_position()
    began = time.monotonic()

    def report() -> None:
        done = runner.position - resumed
        meter.show(Progress(projection.name, runner.position, head, done, _since(began)))

    try:
        runner.replay(on_batch=report)
    finally:
        meter.finish()


def chain_link(ledger: Ledger, position: int) -> str | None:
    with SQL(ledger).read() as cursor:
        cursor.execute(f"SELECT link FROM {chain.TABLE} WHERE position = ?", (position,))  # noqa: S608
        row = cursor.fetchone()
    return None if row is None else str(row["link"])


def copy(args: argparse.Namespace) -> int:
    """`scimledger ledger copy --from URL --to URL`."""
    origin = DatabaseURL.from_setting(args.source)
    destination = DatabaseURL.from_setting(args.target)
    if origin.url == destination.url:
        raise UsageError("--from and --to are the same database")
    if origin.kind == "sqlite" and not Path(origin.path).is_file():
        # Opening it would create an empty one, and copy nothing.
        raise UsageError(f"there is no SQLite database at {origin.path}")
    meter = ProgressMeter(sys.stderr)
    began = time.monotonic()
    source = Ledger(origin, _source_master(args))
    try:
        if not Log(source).head():  # before the target is opened (and made)
            print(
                f"the source {origin.redacted()} holds no events: nothing to copy", file=sys.stderr
            )
            return 1
        target = Ledger(destination)
        try:
            return _copy(source, target, meter, began, args.batch_size)
        except KeyboardInterrupt:
            meter.finish()
            print("interrupted; run the same command again to continue", file=sys.stderr)
            return 130
        finally:
            target.close()
    finally:
        source.close()


def _source_master(args: argparse.Namespace) -> MasterKey | None:
    """The source's master key, when it is not the one this command runs with (a SQLite
    database's own, beside it, copied to PostgreSQL, which needs one given)."""
    if args.from_master_key is None:
        return None
    try:
        return MasterKey.read(Path(args.from_master_key))
    except MasterKeyError as exc:
        raise UsageError(str(exc)) from None


def _copy(source: Ledger, target: Ledger, meter: ProgressMeter, began: float, batch: int) -> int:
    where = f"{source.database.redacted()} -> {target.database.redacted()}"
    head = Log(source).head()

    def checking(checked: int) -> None:
        meter.show(Progress("verifying the source", checked, head, checked, _since(began)))

    verified = chain.extend_and_verify(source, progress=checking)
    meter.finish()
    if not verified.ok:
        print(f"the source's hash chain is broken: {verified.problem}; not copied", file=sys.stderr)
        return 1
    copying = time.monotonic()

    def show(done: int, total: int) -> None:
        meter.show(Progress("copying events", done, total, done, _since(copying)))

    try:
        copied = copy_log(source, target, show, batch)
    except TargetNotEmpty as exc:
        print(f"not copied: {exc}", file=sys.stderr)
        return 1
    finally:
        meter.finish()
    copy_seconds = _since(copying)
    # The data keys first: the projections read the copied events' personal data with them.
    target.keys.add_wrapped(source.keys.wrapped_keys(), source.keys.master)
    for kept in PROJECTIONS:  # built on the target from its copied log, the chain too
        build(target, kept.build(""), copied.upto, meter)
    copy_beside(source, target)
    checked = chain.verify(target)
    if not checked.ok:
        print(f"the copy's hash chain is broken: {checked.problem}", file=sys.stderr)
        return 1
    theirs = chain_link(source, copied.upto) if copied.upto else None
    ours = chain_link(target, copied.upto) if copied.upto else None
    if theirs != ours:
        print(
            f"the copy's chain at position {copied.upto} ({ours}) is not the source's ({theirs})",
            file=sys.stderr,
        )
        return 1
    resumed = (
        f", continuing after position {copied.resumed_after:,}" if copied.resumed_after else ""
    )
    rate = f"{copied.events / copy_seconds:,.0f} events/s" if copy_seconds > 0 else "-"
    print(
        f"copied {copied.events:,} events{resumed} ({where}) in {copy_seconds:.1f} s ({rate}); "
        f"the copy holds the log up to position {copied.upto:,}, its chain verified: head "
        f"{ours or '(empty log)'}, the same as the source's; read models built; "
        f"{_since(began):.1f} s in all"
    )
    head = Log(source).head()
    if head > copied.upto:
        print(
            f"the source was written to during the copy (its head is now {head:,}): stop "
            "what writes to it and run the same command again to copy the rest",
            file=sys.stderr,
        )
    return 0


def add(actions: Commands) -> None:
    """`ledger copy`, in the `ledger` family (scripts/chain.py)."""
    parser = actions.add_parser(
        "copy",
        help="copy the whole log into an empty database (SQLite to PostgreSQL or back), "
        "then build its read models and verify its chain",
        description="Copies every event at its own position, the groups' snapshots, the "
        "organizations' secrets and tokens' last use, up to the source's head when it starts; "
        "an interrupted copy continues where it stopped when run again. Stop the server "
        "writing to the source first, or run it again afterwards to copy the rest.",
    )
    parser.add_argument("--from", dest="source", required=True, metavar="URL")
    parser.add_argument("--to", dest="target", required=True, metavar="URL")
    parser.add_argument(
        "--from-master-key",
        metavar="FILE",
        help="the source's master key, when it is not the one the command runs with (such as"
        " a SQLite database's own, beside it): its data keys are wrapped again by the target's",
    )
    parser.add_argument(
        "--batch-size", type=int, default=BATCH, metavar="N", help=argparse.SUPPRESS
    )
    parser.set_defaults(handler=copy)
