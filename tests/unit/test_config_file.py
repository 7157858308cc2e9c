"""Settings from a TOML file under flags and the environment (scripts/config.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from scimledger.ledger.database import ENV_VAR
from scimledger.scripts import config
from scimledger.scripts.cli import build_parser, main
from scimledger.scripts.command import UsageError
from tests.e2e.conftest import SCIMLEDGER, free_port


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_VAR, config.CONFIG_ENV, "SCIMLEDGER_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)


def written(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scimledger.toml"
    path.write_text(text)
    return str(path)


def serve(*argv: str) -> tuple[argparse.Namespace, dict[str, str]]:
    args = build_parser().parse_args(["serve", *argv])
    return args, config.resolve(args)


def test_a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = written(
        tmp_path,
        'database = "sqlite:///file.db"\npublic_url = "https://file.example"\nport = 8100\n'
        "workers = 3\n",
    )
    args, sources = serve("--config", path, "--workers", "2")
    assert (args.workers, sources["workers"]) == (2, "flag")
    assert (args.port, sources["port"]) == (8100, "file")
    assert (args.public_url, sources["public_url"]) == ("https://file.example", "file")
    assert (args.database, sources["database"]) == ("sqlite:///file.db", "file")
    assert (args.host, sources["host"]) == ("127.0.0.1", "default")
    assert (args.drain_seconds, sources["drain_seconds"]) == (0.0, "default")
    monkeypatch.setenv("SCIMLEDGER_PUBLIC_URL", "https://env.example")
    monkeypatch.setenv(ENV_VAR, "sqlite:///env.db")
    args, sources = serve("--config", path)
    assert (args.public_url, sources["public_url"]) == ("https://env.example", "environment")
    assert sources["database"] == "environment"
    args, sources = serve("--config", path, "--public-url", "https://flag.example")
    assert (args.public_url, sources["public_url"]) == ("https://flag.example", "flag")


def test_the_file_is_found_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.CONFIG_ENV, written(tmp_path, "max_connections = 50\n"))
    args, sources = serve()
    assert (args.max_connections, sources["max_connections"]) == (50, "file")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "has an unknown setting: 'colour'"),
        ('port = "x"\n', "port in the config file"),
        ("workers = 0\n", "workers in the config file"),
        ("workers = 65\n", "workers in the config file"),
        ('projections = "nowhere"\n', "projections in the config file"),
        ("rate_limit = -1\n", "rate_limit in the config file"),
        ("drain_seconds = 1e9\n", "drain_seconds in the config file"),
        ("port = [1, 2]\n", "port in the config file"),
        ("port = 8000\nport = 9000\n", "is not valid TOML"),
        ('database = "postgresql://scim:s3cret@db/scimledger"\n', "holds a password"),
        ('database_password_file = "/x"\n', "has a database_password_file but no database"),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_naming_what(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[")) as raised:
        serve("--config", written(tmp_path, text))
    assert "s3cret" not in str(raised.value)


def test_every_command_reads_the_same_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with serve's settings works for the other commands too (they read only the
    database from it)."""
    database = f"sqlite:///{tmp_path}/ledger.db"
    path = written(tmp_path, f'database = "{database}"\nworkers = 2\nhost = "0.0.0.0"\n')
    assert (
        main(
            [
                "tokens",
                "issue",
                "--org",
                "acme",
                "--name",
                "Okta",
                "--expires",
                "never",
                "--config",
                path,
            ]
        )
        == 0
    )
    assert main(["tokens", "list", "--org", "acme", "--config", path]) == 0
    assert "Okta" in capsys.readouterr().out
    assert (tmp_path / "ledger.db").exists()


def test_the_password_comes_from_its_own_file_and_is_shown_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "db-password"
    secret.write_text("s3cret/pw@x\n")
    path = written(
        tmp_path,
        'database = "postgresql://scim@db.example:5433/scimledger"\n'
        f'database_password_file = "{secret}"\n',
    )
    args, sources = serve("--config", path)
    assert args.database == "postgresql://scim:s3cret%2Fpw%40x@db.example:5433/scimledger"
    assert sources["database"] == "file"
    assert main(["config", "show", "--config", path]) == 0
    out = capsys.readouterr().out
    assert "postgresql://scim:***@db.example:5433/scimledger  (file)" in out
    assert "s3cret" not in out


def test_config_show_lists_every_setting_with_its_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = written(tmp_path, 'database = "sqlite:///x.db"\nport = 8123\n')
    assert main(["config", "show", "--config", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    width = len("webhook_allow_private  ")  # the longest key's
    assert lines[0] == "database".ljust(width) + "sqlite:///x.db  (file)"
    assert "port".ljust(width) + "8123  (file)" in lines
    assert "rate_burst".ljust(width) + "-  (default)" in lines
    # The tests' own master key, from the environment (tests/conftest.py).
    key_file = os.environ["SCIMLEDGER_MASTER_KEY_FILE"]
    assert lines[1] == "master_key_file".ljust(width) + f"{key_file}  (environment)"
    keys = [line.split()[0] for line in lines]
    assert keys == ["database", "master_key_file", *sorted(keys[2:])]
    assert set(keys) == config.KNOWN - config.FILE_ONLY


@pytest.mark.slow
def test_serve_runs_with_the_files_settings(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    path = written(
        tmp_path,
        f'database = "sqlite:///{tmp_path}/ledger.db"\nport = {port}\n'
        'public_url = "https://scim.example.com"\nlog_format = "json"\n'
        f"metrics_port = {metrics_port}\n",
    )
    server = subprocess.Popen(
        [SCIMLEDGER, "serve", "--config", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the log lines
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert banner == f"scimledger is serving on SQLite file {tmp_path}/ledger.db\n"
        assert server.stdout.readline() == (
            "SCIM connector base URL: https://scim.example.com/scim/v2\n"
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=1
                ) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server never listened on the file's port"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as answer:
            assert answer.status == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
