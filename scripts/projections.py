"""`scimledger projections status|rebuild`: the read models' lag, and their rebuild from the
log with a progress meter."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

from scimledger.projections.rebuild import Progress, rebuild
from scimledger.projections.registry import REBUILDABLE, all_projections
from scimledger.projections.runner import status
from scimledger.scripts import output
from scimledger.scripts.command import Commands, family, opened, runs

STATUS_COLUMNS = ("projection", "position", "head", "lag_events", "lag_seconds", "state")


def show_status(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        statuses = status(ledger, all_projections(), datetime.now(UTC))
    rows = [
        {
            "projection": item.name,
            "position": item.position,
            "head": item.head,
            "lag_events": item.lag_events,
            "lag_seconds": round(item.lag_seconds, 1),
            "state": "stalled" if item.stalled(args.stalled_after) else "ok",
        }
        for item in statuses
    ]
    output.write(rows, STATUS_COLUMNS, args.format)
    return 1 if any(row["state"] == "stalled" for row in rows) else 0


def rebuild_read_models(args: argparse.Namespace) -> int:
    meter = ProgressMeter(sys.stderr)
    with opened(args) as ledger:
        for name in sorted(REBUILDABLE) if args.all else [args.name]:
            try:
                done = rebuild(ledger, name, progress=meter.show, batch_size=args.batch_size)
            except KeyboardInterrupt:
                meter.finish()
                print(
                    f"{name}: interrupted; run the same command again to continue", file=sys.stderr
                )
                return 130
            finally:  # the progress line ends before anything else is written
                meter.finish()
            resumed = f", continued from {done.resumed_from:,}" if done.resumed_from else ""
            print(
                f"{name}: rebuilt to position {done.position:,}{resumed}: {done.applied:,} "
                f"events in {done.seconds:.1f} s ({_rate(done.applied, done.seconds)}); "
                "now serving the new tables"
            )
    return 0


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} events/s" if seconds > 0 else "-"


class ProgressMeter:
    """One line of progress on a terminal, redrawn; a line every 10 s elsewhere (logs)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0
        self._drawn = False

    def show(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last < (0.2 if self.tty else 10.0):
            return
        self._last = now
        done = 100 * progress.position / progress.head if progress.head else 100.0
        rate = progress.applied / progress.seconds if progress.seconds > 0 else 0.0
        remaining = max(0, progress.head - progress.position)
        eta = _duration(remaining / rate) if rate > 0 else "-"
        line = (
            f"{progress.name}: {progress.position:,}/{progress.head:,} events ({done:.0f}%), "
            f"{_rate(progress.applied, progress.seconds)}, "
            f"ETA {eta}"
        )
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}")
            self._drawn = True
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = False
        self._last = 0.0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def add_commands(commands: Commands) -> None:
    actions = family(commands, "projections", "the read models and their lag")
    parser = actions.add_parser(
        "status", help="each projection's position, the log's head, the lag; exit 1 if stalled"
    )
    parser.add_argument(
        "--stalled-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="a projection whose oldest unapplied event is older than this is stalled",
    )
    parser.add_argument("--format", choices=output.FORMATS, default="table")
    runs(parser, show_status)
    parser = actions.add_parser(
        "rebuild",
        help="rebuild read models from the log into new tables, then switch over to them",
        description="Replays the log into new tables while the current read model keeps "
        "serving, then switches to them in one transaction and drops the old ones. "
        "Interrupted, it continues where it stopped when run again.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", choices=sorted(REBUILDABLE), help="the projection")
    which.add_argument("--all", action="store_true", help="every read model")
    parser.add_argument(
        "--batch-size", type=int, default=5000, help="events per transaction (default 5000)"
    )
    runs(parser, rebuild_read_models)
