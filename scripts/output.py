r"""How commands print what they find: rows as an aligned table, JSON lines or CSV (their
`--format`), and one value as indented JSON.

Values come from clients (a userName, a token's name, a User-Agent) and stdout is often a
reviewer's terminal: tables show control characters escaped (`\x1b`, `\n`), visible and
never interpreted, so no value can move the cursor, clear the screen or forge a line; JSON
escapes them too and stays exact; CSV stays exact but for spreadsheet formulas
(`projections.spreadsheet`)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from scimledger.projections import spreadsheet

FORMATS = ("table", "jsonl", "csv")

Row = dict[str, Any]


def write(
    rows: Iterable[Row],
    columns: Sequence[str],
    fmt: str,
    *,
    table: Callable[[Iterable[Row]], Iterable[str]] | None = None,
    csv_row: Callable[[Row], Sequence[Any]] | None = None,
) -> None:
    """Writes rows to stdout in `fmt`, each as it comes (but the aligned table, which needs
    them all). `table` and `csv_row` replace the aligned table's lines and a row's CSV cells
    (`columns`' values)."""
    out = sys.stdout
    if fmt == "jsonl":
        for row in rows:
            out.write(_json(row) + "\n")
    elif fmt == "csv":
        writer = spreadsheet.Writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(csv_row(row) if csv_row else [row[c] for c in columns])
    else:
        shown = map(visible, rows)
        out.writelines(table(shown) if table else _aligned(shown, columns))


def _aligned(rows: Iterable[Row], columns: Sequence[str]) -> Iterator[str]:
    cells = [list(columns)] + [
        ["" if row[c] is None else str(row[c]) for c in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n"


def print_json(value: Any) -> None:
    sys.stdout.write(_json(value, indent=2) + "\n")


# C0, DEL and C1 (ESC starts a terminal's control sequences, and so does CSI, U+009B), and
# the bidirectional overrides and isolates, which reorder what a line shows.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What JSON leaves as it is of those (it escapes C0 itself).
_JSON_RAW = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escaped(text: str) -> str:
    r"""`text` with its control characters written as escapes: `\x1b`, `\n`, `\u202e`."""
    return _CONTROL.sub(lambda control: repr(control[0])[1:-1], text)


def visible(value: Any) -> Any:
    """`value` (a row, and the dicts and lists in it) with every text `escaped`."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {escaped(str(k)): visible(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible(item) for item in value]
    return value


def _json(value: Any, indent: int | None = None) -> str:
    """JSON that a terminal shows as it is: exact, with no raw control character."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _JSON_RAW.sub(lambda control: f"\\u{ord(control[0]):04x}", text)
