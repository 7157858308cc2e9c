"""Values a client sent, written for where they end up: a spreadsheet, a terminal."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pytest

from scimledger.projections import spreadsheet
from scimledger.scripts import output

HOSTILE = '=HYPERLINK("http://evil.example","x")'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (HOSTILE, "'" + HOSTILE),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("bjensen@example.com", "bjensen@example.com"),
        ("a=b", "a=b"),
        ("", ""),
        (-5, -5),
        (None, None),
    ],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_quote(value: object, written: object) -> None:
    assert spreadsheet.cell(value) == written


def test_the_csv_writer_quotes_every_formula_cell() -> None:
    stream = io.StringIO()
    spreadsheet.Writer(stream).writerow([HOSTILE, "@x", 3, None, "ok"])
    assert stream.getvalue() == '"\'=HYPERLINK(""http://evil.example"",""x"")",\'@x,3,,ok\r\n'


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),
        ("a\nb\r", "a\\nb\\r"),
        ("\x9b31m", "\\x9b31m"),
        ("\x7f", "\\x7f"),
        ("admin\u202egnp.exe", "admin\\u202egnp.exe"),
        ("Zoë 東京", "Zoë 東京"),
    ],
)
def test_a_table_shows_control_characters_escaped(text: str, shown: str) -> None:
    assert output.escaped(text) == shown


def rows_written(fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    row = {"name": "x\x1b]0;pwned\x07\nforged", "changes": {"t\x1b": ["\x9b"]}, "n": 1}
    output.write([row], ["name", "n"], fmt)
    return capsys.readouterr().out


def test_each_format_writes_control_characters_for_its_destination(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert rows_written("table", capsys) == (
        "name                       n\nx\\x1b]0;pwned\\x07\\nforged  1\n"
    )
    jsonl = rows_written("jsonl", capsys)
    assert "\x1b" not in jsonl
    assert "\x9b" not in jsonl
    assert json.loads(jsonl) == {
        "name": "x\x1b]0;pwned\x07\nforged",
        "changes": {"t\x1b": ["\x9b"]},
        "n": 1,
    }
    assert rows_written("csv", capsys) == 'name,n\r\n"x\x1b]0;pwned\x07\nforged",1\r\n'


def test_a_custom_table_gets_escaped_values_too(capsys: pytest.CaptureFixture[str]) -> None:
    def table(rows: Iterable[dict[str, Any]]) -> list[str]:
        return [f"{row['name']} {row['changes']}\n" for row in rows]

    output.write([{"name": "\x1b[2J", "changes": {"a\n": "\x9b"}}], ["name"], "table", table=table)
    assert capsys.readouterr().out == "\\x1b[2J {'a\\\\n': '\\\\x9b'}\n"


def test_json_output_is_exact_and_has_no_raw_control_character(
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = {"displayName": "\x1b[31m\x9b\u202e"}
    output.print_json(value)
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x9b\u202e")
    assert json.loads(out) == value
