"""The CLI's commands start fast: only `serve` (and `audit show`) load the web stack."""

from __future__ import annotations

import subprocess
import sys

LOADED = """
import sys
import scimledger.scripts.cli
print(sorted({m.split('.')[0] for m in sys.modules} & {'litestar', 'uvicorn', 'authlib'}))
"""


def test_the_cli_loads_no_web_framework_until_a_command_needs_it() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, check=True
    )
    assert loaded.stdout == "[]\n", loaded.stderr
