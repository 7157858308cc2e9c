"""The keys of personal data: one data key per user, wrapped by the master key.

A user's personal data is encrypted in their events with a data key of their own (AES-256-GCM,
ledger.sealing). Data keys live in the `data_keys` table, which, unlike the log, rows leave:
erasing a user deletes their key in the transaction that records the erasure, and what their
events held can no longer be read by anyone. A data key is stored wrapped (encrypted) by the
master key, which is kept outside the database (a file: `SCIMLEDGER_MASTER_KEY_FILE`; on
SQLite by default beside the database). Without the master key no data key can be unwrapped:
losing it is erasing everyone.

One more key is kept there: the index key, which names the userName index (ledger.names) by
a keyed hash of the name, so that the index's id tells nothing of an erased person's name to
whoever cannot unwrap it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import threading
from binascii import a2b_base64
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.errors import LedgerError

MASTER_KEY_ENV = "SCIMLEDGER_MASTER_KEY_FILE"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
SEALED_SECRET = "sealed:"  # noqa: S105 (a prefix: a value without it was stored in clear)
_SECRET = b"scimledger secret\x00"  # a secret's associated data starts so: never a data key's
INSERT = "INSERT INTO data_keys (owner_id, master_id, wrapped, created_at) VALUES (?, ?, ?, ?)"
# The same for PostgreSQL, the rows as four arrays (a column each), which psycopg dumps in
# binary in C: one statement for a group commit's keys (ledger.recorders makes it part of
# the one that inserts the events).
INSERT_ARRAYS = (
    "INSERT INTO data_keys (owner_id, master_id, wrapped, created_at)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[])"
)
INDEX_OWNER = UUID(int=0)  # the index key's row
CACHED_KEYS = 100_000  # unwrapped data keys kept in memory (~200 bytes each)
MAX_PENDING = 10_000  # keys made for events not yet recorded

DDL = """CREATE TABLE IF NOT EXISTS data_keys (
    owner_id TEXT PRIMARY KEY,
    master_id TEXT NOT NULL,
    wrapped TEXT NOT NULL,
    created_at TEXT NOT NULL
)"""
# On SQLite one b-tree, not a table and an index of its key: a create writes one row here.
SQLITE_DDL = DDL + " WITHOUT ROWID"


class MasterKeyError(LedgerError):
    """The master key cannot be read, or is not the one the store's keys were wrapped by."""

    exit_code = 2


class MasterKey:
    """The key that wraps every data key: 32 random bytes, in a file (base64, one line)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"a master key has {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        # Names the key without revealing it: which master key wrapped a data key.
        self.id = hashlib.sha256(b"scimledger master key id\x00" + key).hexdigest()[:16]

    @classmethod
    def read(cls, path: Path) -> MasterKey:
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise MasterKeyError(
                f"cannot read the master key file {path}: {exc.strerror}"
            ) from None
        try:
            return cls(base64.b64decode(text, validate=True))
        except (ValueError, MasterKeyError):
            raise MasterKeyError(
                f"{path} does not hold a master key (the base64 of {KEY_BYTES} bytes)"
            ) from None

    @classmethod
    def create(cls, path: Path) -> MasterKey:
        """A new master key, written to `path` (which must not exist), readable by its owner
        only."""
        key = secrets.token_bytes(KEY_BYTES)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(base64.b64encode(key).decode() + "\n")
            file.flush()
            os.fsync(file.fileno())
        return cls(key)

    def wrap(self, data_key: bytes, owner_id: UUID) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, data_key, owner_id.bytes)
        return base64.b64encode(nonce + sealed).decode()

    def unwrap(self, wrapped: str, owner_id: UUID) -> bytes:
        return self.unwrap_for(wrapped, owner_id.bytes)

    def unwrap_for(self, wrapped: str, owner: bytes) -> bytes:
        """`unwrap`, given the owner's id as its 16 bytes."""
        blob = a2b_base64(wrapped)
        return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], owner)

    def seal(self, plain: str, bound: bytes) -> str:
        """A secret of an organization's (ledger.secrets), encrypted; `bound`: what it may
        only be read as (its organization, name and moment), so that it cannot be moved."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain.encode(), _SECRET + bound)
        return SEALED_SECRET + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, bound: bytes) -> str:
        """A secret `seal` made (InvalidTag if it was not, with this key and `bound`)."""
        blob = a2b_base64(sealed.removeprefix(SEALED_SECRET))
        nonce, data = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        return self._aead.decrypt(nonce, data, _SECRET + bound).decode()

    def opens(self, wrapped: str, owner_id: UUID) -> bool:
        """Whether `wrapped` is a data key this key wrapped for `owner_id`, unaltered."""
        try:
            return len(self.unwrap(wrapped, owner_id)) == KEY_BYTES
        except (InvalidTag, ValueError):  # binascii.Error is a ValueError
            return False


def master_key_file(database: DatabaseURL) -> Path | None:
    """Where the master key is: `$SCIMLEDGER_MASTER_KEY_FILE` (which the CLI also sets from
    its flag or config file), else (SQLite) beside the database, as `<database>.key`; None
    for PostgreSQL without the setting, and for a database in memory."""
    configured = os.environ.get(MASTER_KEY_ENV)
    if configured:
        return Path(configured)
    path = database.path if database.kind == "sqlite" else None
    if path is None or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(f"{os.path.abspath(path)}.key")


def configured_master(database: DatabaseURL) -> MasterKey:
    """The master key `database` is opened with: read from `master_key_file`, made there at
    first on SQLite; one for the process's life for a database in memory. PostgreSQL's must
    be given: it must not live with the database."""
    path = master_key_file(database)
    if path is None:
        if database.kind == "sqlite":
            return MasterKey(secrets.token_bytes(KEY_BYTES))
        raise MasterKeyError(
            f"PostgreSQL needs a master key: set {MASTER_KEY_ENV} to a file kept apart from"
            " the database and its backups (`scimledger keys new-master --file PATH` makes"
            " one)"
        )
    if path.exists():
        return MasterKey.read(path)
    if os.environ.get(MASTER_KEY_ENV):
        raise MasterKeyError(f"no master key file at {path} ({MASTER_KEY_ENV})")
    return MasterKey.create(path)


def _text(number: int) -> str:
    """An owner's id as `data_keys` stores it (the UUID's text), from its integer."""
    digits = f"{number:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class KeyStore:
    """The data keys: created with a user's first event, read to seal and unseal their
    events, deleted when they are erased. Keys made for events not yet committed are kept
    here (`pending`) until the transaction that records them writes them (`write`).

    In memory, keys are known by their owner's id as an integer (`UUID.int`): a replay
    finds the owners of a batch in the log's rows, as text, and turning that text into an
    integer costs a tenth of parsing it into a UUID (measured: a rebuild reads every key)."""

    def __init__(
        self, datastore: Any, dialect: str, master: MasterKey, connect: Callable[[], Any]
    ) -> None:
        self._datastore = datastore
        # Keys are read on a connection of their own, never through the event store's pool:
        # they are read while decoding events inside a transaction that holds the pool's
        # writer (the inline projection's), and the SQLite pool's queue then holds a reader
        # waiting behind a writer that waits for it (measured: a 5 s deadlock).
        self._connect = connect
        self._connection: Any = None
        self._reading = threading.Lock()
        self._dialect = dialect
        self._mark = "?" if dialect == "sqlite" else "%s"
        self.master = master
        self._lock = threading.Lock()
        self._cache: dict[int, AESGCM] = {}
        self._pending: dict[int, tuple[AESGCM, str]] = {}
        self._index_key: bytes | None = None
        self._batch = threading.local()  # expect()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self._mark)

    # The table

    def create_table(self) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(SQLITE_DDL if self._dialect == "sqlite" else DDL)
            cursor.execute(
                self._sql("SELECT master_id FROM data_keys WHERE master_id <> ? LIMIT 1"),
                (self.master.id,),
            )
            other = cursor.fetchone()
        if other is not None:
            raise MasterKeyError(
                "the store's data keys were wrapped by another master key"
                f" ({other['master_id']}), not by this one ({self.master.id}): give the master"
                f" key this store was written with ({MASTER_KEY_ENV})"
            )

    def count(self) -> int:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM data_keys")
            row = cursor.fetchone()
        return int(row["n"])

    # Data keys

    def new_key(self, owner_id: UUID) -> AESGCM:
        """A data key for a user whose first event is being recorded (written with it)."""
        number = owner_id.int
        with self._lock:
            found = self._pending.get(number)
            if found is not None:
                return found[0]
            key = os.urandom(KEY_BYTES)
            aead = AESGCM(key)
            self._pending[number] = (aead, self.master.wrap(key, owner_id))
            while len(self._pending) > MAX_PENDING:  # those of saves that failed for good
                del self._pending[next(iter(self._pending))]
            return aead

    def key(self, owner_id: UUID) -> AESGCM | None:
        """The user's data key; None once they are erased (or if they never had one)."""
        # Without the lock: a dict's get is atomic, and a key is read on every sealed event.
        number = owner_id.int
        cached = self._cache.get(number)
        if cached is not None:
            return cached
        pending = self._pending.get(number)
        if pending is not None:
            return pending[0]
        batch = getattr(self._batch, "owners", None)
        if batch is not None:  # the first miss of a batch reads the keys of all of it
            self._batch.owners = None
            self.preload(batch())
            cached = self._cache.get(number)
            if cached is not None:
                return cached
        return self._read([number]).get(number)

    def expect(self, owners: Callable[[], Iterable[int]]) -> None:
        """The owners (`UUID.int`) of the events this thread is about to read (a
        projection's batch): at its first key not in memory, all of theirs are read in one
        query, not one each; while every key is in memory, `owners` is not even called."""
        self._batch.owners = owners

    def preload(self, owners: Iterable[int]) -> None:
        """Reads the keys of many users (`UUID.int`) at once (a rebuild's batch)."""
        with self._lock:
            missing = [n for n in set(owners) if n not in self._cache and n not in self._pending]
        if missing:
            self._read(missing)

    def _read(self, owners: list[int]) -> dict[int, AESGCM]:
        found: dict[int, AESGCM] = {}
        # In order: each query's ids are neighbours in the table's b-tree (measured on
        # SQLite: 500 ids from a sorted batch read in half the time of 500 scattered ones).
        owners = sorted(owners)
        unwrap = self.master.unwrap_for
        for start in range(0, len(owners), 500):
            chunk = {_text(number): number for number in owners[start : start + 500]}
            if self._dialect == "postgresql":
                # One array, not 500 parameters, which psycopg dumps one by one (measured:
                # a key read in 5-7 us instead of 13, 2.5 us of the client's CPU instead of 4).
                rows = self._query(
                    "SELECT owner_id, wrapped FROM data_keys WHERE owner_id = ANY(%s)",
                    [list(chunk)],
                )
            else:
                marks = ", ".join(["?"] * len(chunk))
                rows = self._query(
                    f"SELECT owner_id, wrapped FROM data_keys WHERE owner_id IN ({marks})",  # noqa: S608
                    list(chunk),
                )
            for owner, wrapped in rows:
                number = chunk[owner]  # not parsed again
                found[number] = AESGCM(unwrap(wrapped, number.to_bytes(16, "big")))
        with self._lock:
            self._cached(found)
        return found

    def _cached(self, found: dict[int, AESGCM]) -> None:
        """Keeps `found` (under the lock); a full cache is emptied first, not kept in order
        of use: reading a key stays one dict lookup."""
        if len(self._cache) + len(found) > CACHED_KEYS:
            self._cache.clear()
        self._cache.update(found)

    def new_rows(self, created: Iterable[UUID]) -> list[tuple[str, str, str, str]]:
        """The rows of `data_keys` (its columns as INSERT names them) to write with the events
        of the users `created`: the keys made for them (none for a user whose key exists)."""
        now = datetime.now(UTC).isoformat()
        master = self.master.id
        with self._lock:
            return [
                (str(owner_id), master, pending[1], now)
                for owner_id in created
                if (pending := self._pending.get(owner_id.int)) is not None
            ]

    def write(self, cursor: Any, created: Iterable[UUID], erased: Iterable[UUID]) -> None:
        """In the transaction that records their events: the keys of users created, and
        the deletion of those of users erased. (On PostgreSQL the recorder inserts the keys
        with the events instead, and calls `delete`: ledger.recorders.)"""
        rows = self.new_rows(created)
        if rows:
            cursor.executemany(self._sql(INSERT), rows)
        self.delete(cursor, erased)

    def delete(self, cursor: Any, erased: Iterable[UUID]) -> None:
        """In the transaction that records their erasure: the keys of users erased."""
        for owner_id in erased:
            cursor.execute(self._sql("DELETE FROM data_keys WHERE owner_id = ?"), (str(owner_id),))

    def settled(self, created: Iterable[UUID], erased: Iterable[UUID]) -> None:
        """After the transaction committed: the keys written are no longer pending (a
        transaction that failed keeps them pending, for the library's retry of it), and those
        deleted are forgotten."""
        with self._lock:
            made: dict[int, AESGCM] = {}
            for owner_id in created:
                pending = self._pending.pop(owner_id.int, None)
                if pending is not None:
                    made[owner_id.int] = pending[0]
            self._cached(made)
            for owner_id in erased:
                self._cache.pop(owner_id.int, None)

    def forget(self, owner_id: UUID) -> None:
        """Drops a key this process holds (its user was erased by another)."""
        with self._lock:
            self._cache.pop(owner_id.int, None)
            self._pending.pop(owner_id.int, None)

    # The index key

    def index_key(self) -> bytes:
        """The key the userName index's ids are made with, made with the store's first."""
        if self._index_key is None:
            wrapped = self._index_row()
            if wrapped is None:
                # A transaction that only writes: on SQLite one that read first would fail
                # at once if another process wrote meanwhile.
                with self._datastore.transaction(commit=True) as cursor:
                    cursor.execute(
                        self._sql(INSERT + " ON CONFLICT DO NOTHING"),
                        (
                            str(INDEX_OWNER),
                            self.master.id,
                            self.master.wrap(secrets.token_bytes(KEY_BYTES), INDEX_OWNER),
                            datetime.now(UTC).isoformat(),
                        ),
                    )
                wrapped = self._index_row()  # this one, or a racing process's
                assert wrapped is not None
            self._index_key = self.master.unwrap(wrapped, INDEX_OWNER)
        return self._index_key

    def _index_row(self) -> str | None:
        rows = self._query(
            self._sql("SELECT owner_id, wrapped FROM data_keys WHERE owner_id = ?"),
            [str(INDEX_OWNER)],
        )
        return str(rows[0][1]) if rows else None

    def _query(self, statement: str, params: list[Any]) -> list[tuple[str, str]]:
        """(owner_id, wrapped) rows, on the store's own connection, one statement in
        autocommit; a connection that failed is opened again next time."""
        with self._reading:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                cursor = self._connection.cursor()
                cursor.execute(statement, params)
                rows: list[tuple[str, str]] = cursor.fetchall()  # both columns are text
                return rows
            except Exception:
                self.close()
                raise

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    # Moving keys with the log (ledger copy, export and import)

    def wrapped_keys(self) -> list[tuple[str, str]]:
        """Every key as stored, (owner id, wrapped by this store's master key), in owner
        order: what an export or a copy carries beside the log."""
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT owner_id, wrapped FROM data_keys ORDER BY owner_id")
            return [(str(row["owner_id"]), str(row["wrapped"])) for row in cursor.fetchall()]

    def add_wrapped(self, keys: Iterable[tuple[str, str]], master: MasterKey) -> int:
        """Keys another store wrapped with `master` (as `wrapped_keys` gives them), kept
        here wrapped by this store's master key (unwrapped and wrapped again if it is another
        one); a key this store has already is replaced. Returns how many."""
        now = datetime.now(UTC).isoformat()
        rows = []
        for owner, theirs in keys:
            owner_id = UUID(owner)
            ours = (
                theirs
                if master.id == self.master.id
                else self.master.wrap(master.unwrap(theirs, owner_id), owner_id)
            )
            rows.append((str(owner_id), self.master.id, ours, now))
        with self._datastore.transaction(commit=True) as cursor:
            for start in range(0, len(rows), 1_000):
                cursor.executemany(
                    self._sql(
                        INSERT + " ON CONFLICT (owner_id) DO UPDATE"
                        " SET master_id = excluded.master_id, wrapped = excluded.wrapped"
                    ),
                    rows[start : start + 1_000],
                )
        with self._lock:
            self._cache.clear()
            self._index_key = None
        return len(rows)

    # Rotation

    def rewrap(self, cursor: Any, new: MasterKey) -> int:
        """Wraps every key again with `new`, in the caller's transaction (Ledger.rotate_master,
        which then makes `new` this store's master); the events are not touched. Returns
        how many keys were wrapped again."""
        done = 0
        cursor.execute("SELECT owner_id, wrapped FROM data_keys")
        for row in cursor.fetchall():
            owner, owner_id = row["owner_id"], UUID(row["owner_id"])
            key = self.master.unwrap(row["wrapped"], owner_id)
            cursor.execute(
                self._sql("UPDATE data_keys SET master_id = ?, wrapped = ? WHERE owner_id = ?"),
                (new.id, new.wrap(key, owner_id), owner),
            )
            done += 1
        return done
