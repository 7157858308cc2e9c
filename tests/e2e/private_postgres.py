"""A PostgreSQL server of a test's own, for faults the shared one must never suffer: being
stopped (cleanly or by a crash) and started again, or its data disk filling up.

It is the machine's own PostgreSQL binaries running on a cluster made in a temporary
directory (`initdb`), on a free port, listening on 127.0.0.1 only, with durable commits
(fsync on). As root, PostgreSQL refuses to run, so its commands run as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.conftest import skip_or_fail


def _bindir() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian keeps them off the PATH)."""
    if found := os.environ.get("SCIMLEDGER_TEST_POSTGRES_BINDIR"):
        return Path(found)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


class PrivatePostgres:
    """`initdb` + `pg_ctl` in a new temporary directory; `url()` names a database on it.
    `close()` stops it and removes the directory."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            skip_or_fail(
                "no PostgreSQL programs (initdb, pg_ctl) found: install PostgreSQL's server "
                "or set SCIMLEDGER_TEST_POSTGRES_BINDIR"
            )
        assert bindir is not None
        self.bindir = bindir
        # Not under pytest's tmp_path: its parents are private to root, and PostgreSQL runs
        # as its own user.
        self.directory = Path(tempfile.mkdtemp(prefix="scimledger-postgres-"))
        self.data = self.directory / "data"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self._as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        self.running = False
        self._mounts: list[Path] = []

    def small_disk(self, name: str, megabytes: int) -> str:
        """A tablespace `name` on a filesystem of its own of `megabytes` (a tmpfs: needs root):
        what is stored there can fill its disk for real ("could not extend file ... No space
        left on device"), while the cluster's own files and its WAL stay where they are."""
        where = self.directory / name
        where.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mounted.returncode != 0:
            skip_or_fail(
                f"cannot mount a small filesystem for a full disk ({mounted.stderr.strip()}): "
                "this test needs root"
            )
        self._mounts.append(where)
        if self._as:
            owner = pwd.getpwnam("postgres")
            os.chown(where, owner.pw_uid, owner.pw_gid)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE {name} LOCATION '{where}'")
        return name

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as, str(self.bindir / program), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"{program} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            " -c fsync=on -c synchronous_commit=on -c max_connections=50"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "log"), "-w", "-t", "30", "start",
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown (sessions ended, then stopped), like `systemctl stop`;
        `immediate`: every process killed at once, like a crash: recovery at the next start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
        self.running = False

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, *, tablespace: str | None = None) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            where = f" TABLESPACE {tablespace}" if tablespace else ""
            conn.execute(f'CREATE DATABASE "{name}"{where}')
        return self.url(name)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "log").read_text()
        return ""

    def close(self) -> None:
        if self.running:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.stop("immediate")
        for where in self._mounts:
            subprocess.run(["umount", str(where)], capture_output=True, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)
