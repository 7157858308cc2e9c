"""The database URL: which event store (and read-model database) the ledger uses.

`sqlite:///path/file.db` is the embedded default; `postgresql://user[:pw]@host[:port]/db` is
the production store. The read models live in the same database as the events.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

ENV_VAR = "SCIMLEDGER_DATABASE_URL"
DEFAULT_URL = "sqlite:///var/scimledger.db"


class InvalidDatabaseURL(ValueError):
    pass


@dataclass(frozen=True)
class DatabaseURL:
    kind: Literal["sqlite", "postgresql"]
    url: str
    path: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""

    @classmethod
    def parse(cls, url: str) -> DatabaseURL:
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            # SQLAlchemy's convention: sqlite:///relative/file.db, sqlite:////absolute/file.db.
            if not url.startswith("sqlite:///"):
                raise InvalidDatabaseURL(f"expected sqlite:///path/file.db, got {url!r}")
            path = url[len("sqlite:///") :]
            if not path or path.endswith("/"):
                raise InvalidDatabaseURL(f"no file path in {url!r}")
            return cls(kind="sqlite", url=url, path=path)
        if parts.scheme in ("postgresql", "postgres"):
            dbname = parts.path.lstrip("/")
            if not parts.hostname or not dbname:
                raise InvalidDatabaseURL(
                    f"expected postgresql://user@host:port/dbname, got {url!r}"
                )
            return cls(
                kind="postgresql",
                url=url,
                host=parts.hostname,
                port=parts.port or 5432,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=dbname,
            )
        raise InvalidDatabaseURL(
            f"unsupported database URL {url!r}: use sqlite:///path/file.db "
            "or postgresql://user@host:port/dbname"
        )

    @classmethod
    def from_setting(cls, url: str | None) -> DatabaseURL:
        """The URL given, else $SCIMLEDGER_DATABASE_URL, else the embedded default."""
        return cls.parse(url or os.environ.get(ENV_VAR) or DEFAULT_URL)

    def redacted(self) -> str:
        """The URL with any password masked, for messages."""
        if self.kind == "postgresql" and self.password:
            return re.sub(r"^(\w+://[^:/@]*:)[^@]*@", r"\1***@", self.url, count=1)
        return self.url

    def connection_kwargs(self) -> dict[str, Any]:
        """psycopg.connect() arguments for a connection of one's own (PostgreSQL)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password or None,
            "dbname": self.dbname,
            "connect_timeout": 10,
        }

    def eventsourcing_env(self) -> dict[str, str]:
        """The settings that point the eventsourcing library at this database."""
        if self.kind == "sqlite":
            directory = Path(self.path).parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # as SQLite says when it cannot open the file itself
                message = f"cannot create the directory {directory}: {exc.strerror}"
                raise sqlite3.OperationalError(message) from None
            return {
                # The library's SQLite store, its connections keeping their prepared
                # statements (ledger.sqlite_store).
                "PERSISTENCE_MODULE": "scimledger.ledger.sqlite_store:Factory",
                "SQLITE_DBNAME": self.path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": "scimledger.ledger.recorders:SQLiteRecorder",
                "COMPRESSOR_TOPIC": COMPRESSOR_TOPIC,
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "16",
            "POSTGRES_LOCK_TIMEOUT": "10",
            # Seconds to wait for a connection (the library's default is 30): during an
            # outage, requests answer 503 soon (ledger.availability).
            "POSTGRES_CONNECT_TIMEOUT": "3",
            # Kept off on purpose: with it on, a follower skipped events under
            # concurrent writers (DESIGN.md, traps).
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": "scimledger.ledger.recorders:PostgresRecorder",
            "COMPRESSOR_TOPIC": COMPRESSOR_TOPIC,
        }


# Events' payloads are stored compressed (ledger.compression).
COMPRESSOR_TOPIC = "scimledger.ledger.compression:LedgerCompressor"


# Held while a process creates or alters its tables (the event store's, the projections'):
# PostgreSQL's CREATE ... IF NOT EXISTS and CREATE OR REPLACE are not safe against another
# session doing the same at the same moment ("duplicate key", "tuple concurrently updated").
SETUP_LOCK_KEY = 0x5C1_1ED9E5E7  # "scimledger setup"


@contextmanager
def setup_lock(database: DatabaseURL) -> Iterator[None]:
    """Serializes table setup among processes starting together on one PostgreSQL
    database (SQLite serializes DDL by its write lock already)."""
    if database.kind != "postgresql":
        yield
        return
    import psycopg  # noqa: PLC0415 (PostgreSQL only)

    with psycopg.connect(**database.connection_kwargs(), autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_KEY,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))
