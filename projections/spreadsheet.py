"""CSV that a spreadsheet opens safely, for every CSV export (the audit trail over HTTP and
the CLI, the CLI's `--format csv`).

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula, and some also
after a leading tab or carriage return: a userName such as `=HYPERLINK("http://evil", "x")`
would run on the reviewer's machine. As OWASP recommends (CSV Injection), such a text cell is
written with a `'` in front, which spreadsheets show as text and do not keep. Only text is
touched: numbers stay numbers. JSON exports stay exact."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Stream(Protocol):
    def write(self, text: str, /) -> Any: ...


def cell(value: Any) -> Any:
    """`value` as a spreadsheet will not run it."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class Writer:
    """`csv.writer` whose text cells are made safe by `cell`."""

    def __init__(self, stream: _Stream) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, cells: Iterable[Any]) -> None:
        self._writer.writerow([cell(value) for value in cells])
