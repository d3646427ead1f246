"""The monthly table in the force's layout: one row per measure, one column per month.

The same rows (`report.table_rows`) go out as CSV, as an XLSX sheet and as a text table for
the terminal, so the three can never disagree. Only counts and percentages: no personal data.
"""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font

from app.cells import cell as safe_cell
from app.cells import csv_writer
from app.qa import months
from app.qa.report import table_rows
from app.qa.schemas import Report

HEADING = "Measure"


def headings(report: Report) -> list[str]:
    return [HEADING, *(months.display(m.month) for m in report.months)]


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(headings(report))
    for label, cells in table_rows(report):
        writer.writerow([label, *cells])
    return out.getvalue()


def to_xlsx(report: Report) -> bytes:
    """One sheet; counts as integers, percentages as numbers shown with one decimal (an
    empty cell where nothing applied), so the force can chart them as they are."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"QA {report.from_month} to {report.to_month}"
    sheet.append([safe_cell(h) for h in headings(report)])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, (label, cells) in enumerate(table_rows(report)):
        values: list[object] = [safe_cell(label)]
        for text in cells:
            if not text:
                values.append(None)
            elif index == 0:
                values.append(int(text))
            else:
                values.append(float(Decimal(text)))
        sheet.append(values)
        if index:
            for cell in sheet[sheet.max_row][1:]:
                cell.number_format = "0.0"
    sheet.column_dimensions["A"].width = max(len(label) for label, _ in table_rows(report)) + 2
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_table(report: Report) -> str:
    """A Markdown-style table for the terminal (the layout of the force's own table)."""
    rows = [headings(report), *([label, *cells] for label, cells in table_rows(report))]
    rows = [[cell if cell else "n/a" for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "| " + " | ".join([first, *rest]) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])]) + "\n"
