"""When writers take turns across processes (ledger/turns.py): only while another writer is
seen, for SHARED_FOR seconds after the last sign of one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.turns import SHARED_FOR, Turns


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Datastore:
    """The event store's connections: each handed out names its backend pid."""

    def __init__(self, *pids: int) -> None:
        self.pids = list(pids)

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        yield SimpleNamespace(info=SimpleNamespace(backend_pid=self.pids.pop(0)))


def postgres_turns(clock: Clock) -> Turns:
    return Turns(DatabaseURL.parse("postgresql://postgres@127.0.0.1:5432/nowhere"), clock=clock)


def test_a_process_writing_alone_takes_no_turns_across_processes() -> None:
    clock = Clock()
    turns = postgres_turns(clock)
    datastore = Datastore(4101, 4102)
    turns.watch(datastore)
    for _ in range(2):
        with datastore.get_connection():
            pass
    turns.appended_by(4101)  # its own appends
    turns.appended_by(4102)
    assert turns.shared is False


def test_an_append_by_another_session_shares_turns_for_a_while() -> None:
    clock = Clock()
    turns = postgres_turns(clock)
    datastore = Datastore(4101)
    turns.watch(datastore)
    with datastore.get_connection():
        pass
    turns.appended_by(5200)  # another process's connection
    assert turns.shared is True
    clock.now += SHARED_FOR - 0.1
    assert turns.shared is True
    turns.appended_by(5200)  # seen again: the while starts over
    clock.now += SHARED_FOR - 0.1
    assert turns.shared is True
    clock.now += 0.2
    assert turns.shared is False


def test_a_conflict_in_a_turn_shares_turns_for_a_while() -> None:
    clock = Clock()
    turns = postgres_turns(clock)
    turns.contended()
    assert turns.shared is True
    clock.now += SHARED_FOR
    assert turns.shared is False


def test_sqlite_never_shares_turns(tmp_path: Path) -> None:
    turns = Turns(DatabaseURL.parse(f"sqlite:///{tmp_path}/x.db"))
    turns.contended()
    turns.appended_by(1)
    assert turns.shared is False
