"""How commands print what they find: rows as an aligned table, JSON lines or CSV (their
`--format`), and one value as indented JSON."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

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
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(map(csv_row or (lambda row: [row[c] for c in columns]), rows))
    else:
        out.writelines(table(rows) if table else _aligned(rows, columns))


def _aligned(rows: Iterable[Row], columns: Sequence[str]) -> Iterator[str]:
    cells = [list(columns)] + [
        ["" if row[c] is None else str(row[c]) for c in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n"


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
