"""Cells of the CSV and XLSX files the service writes, made safe to open in a spreadsheet.

A cell whose text starts with = + - @ (or a tab or carriage return, which some spreadsheets
skip before reading the rest as a formula) is a formula to Excel, LibreOffice and Sheets: a
`handler_id` of `=HYPERLINK("http://e.vil","x")` would run when a supervisor opens the export.
Such text gets a leading apostrophe, the spreadsheets' own "this is text" mark, so it shows
as typed. Numbers stay numbers (a negative count is not text). Every export writes through
here: `csv_writer` for CSV, `cell` for each value put in a sheet.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """`value` as a spreadsheet would read it as text: formula-like text neutralised."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` whose every cell goes through `cell`."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([cell(v) for v in row])


def csv_writer(out: IO[str]) -> SafeWriter:
    """A CSV writer (RFC 4180 line ends) that neutralises formula-like cells."""
    return SafeWriter(out)
