"""The layout DESIGN.md decided: the repository root is the `scimledger` package.

`http/` must never be a regular package (it would shadow the standard library's `http`),
and the wheel must carry every module of every subpackage under `scimledger.*`.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("ledger", "projections", "http", "http/console", "scripts")


def test_http_has_no_init_module() -> None:
    assert not (ROOT / "http" / "__init__.py").exists()


def test_stdlib_http_wins_with_the_repository_root_on_sys_path() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import http.client, sys; print(http.client.__file__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert not result.stdout.startswith(str(ROOT)), result.stdout


def test_pyproject_lists_every_subpackage() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"scimledger": "."}
    assert config["packages"] == [
        "scimledger",
        *(f"scimledger.{p.replace('/', '.')}" for p in SUBPACKAGES),
    ]
    for name in SUBPACKAGES:  # no module left out of the list
        nested = [p for p in (ROOT / name).iterdir() if p.is_dir() and any(p.glob("*.py"))]
        assert {p.relative_to(ROOT).as_posix() for p in nested} <= set(SUBPACKAGES)


@pytest.mark.slow
def test_wheel_holds_every_module_under_scimledger(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("scimledger-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"scimledger/__init__.py"} | {
        f"scimledger/{path.relative_to(ROOT).as_posix()}"
        for name in SUBPACKAGES
        for path in (ROOT / name).glob("*.py")
    }
    assert expected <= names
    assert "scimledger/http/scim_openapi.json" in names  # served at /scim/v2/openapi.json
    console = ROOT / "http" / "console"
    assert {
        f"scimledger/{path.relative_to(ROOT).as_posix()}"
        for path in [*console.glob("templates/*.html"), *console.glob("static/*")]
    } <= names
    assert not [n for n in names if n.startswith(("scimledger/tests/", "http/", "ledger/"))]
