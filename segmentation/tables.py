"""CSV tables that are safe to open in a spreadsheet (``results.csv``, the export's measurements CSV).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice
and Google Sheets: a file named ``=cmd|' -C calc'!A0.jpg`` would run when the table is opened. As OWASP's
"CSV Injection" guidance recommends, such text cells get a leading single quote, which spreadsheets show as text;
numbers (``-1.5``) are left as they are. Reading a table back removes that quote again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def safe_cell(value: object) -> object:
    """``value`` as a spreadsheet shows it as text: a text cell that starts like a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def unsafe_cell(text: str) -> str:
    """The original text of a cell written by safe_cell."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def csv_bytes(rows: Iterable[dict], columns: list[str]) -> bytes:
    """UTF-8 CSV of ``rows`` with a header; every cell passed through safe_cell, missing cells empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: safe_cell("" if value is None else value) for key, value in row.items()})
    return buffer.getvalue().encode("utf-8")


def read_csv_rows(text: str) -> list[dict[str, str]]:
    """The rows of a CSV written by csv_bytes, with the formula quotes taken off again."""
    return [
        {k: unsafe_cell(v or "") for k, v in row.items() if k is not None} for row in csv.DictReader(io.StringIO(text))
    ]
