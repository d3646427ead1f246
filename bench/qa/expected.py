"""The report the service must give for the loaded year, from the generator's tallies.

Percentages are computed here with Decimal (100 x met / applicable, half up to one decimal),
not with `app.qa.report.percent`, so a mistake in either shows as a difference. Each function
returns the differences found (empty: the report is right), described without personal data.
"""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from openpyxl import load_workbook

from bench.qa.data import SCALES, Expected, Tally

STANDARDS = tuple(SCALES)


def percent(met: int, applicable: int) -> float | None:
    if not applicable:
        return None
    exact = Decimal(100 * met) / Decimal(applicable)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def measure(cell: list[int] | None) -> dict[str, Any]:
    met, applicable, answered = cell or (0, 0, 0)
    return {
        "met": met,
        "applicable": applicable,
        "not_applicable": answered - applicable,
        "percent": percent(met, applicable),
    }


def _months(
    where: str, got: list[dict[str, Any]], tally: Tally, key: tuple[Any, ...], months: list[str],
    with_calls: bool,
) -> list[str]:  # fmt: skip
    problems = []
    if [m["month"] for m in got] != months:
        return [f"{where}: months {[m['month'] for m in got]} != {months}"]
    for row in got:
        month = row["month"]
        calls = tally.calls.get((*key, month), 0) if with_calls else None
        if row["calls_assessed"] != calls:
            problems.append(f"{where} {month}: calls_assessed {row['calls_assessed']} != {calls}")
        for standard in STANDARDS:
            want = measure(tally.cells.get((*key, month, standard)))
            if row["standards"].get(standard) != want:
                problems.append(
                    f"{where} {month} {standard}: {row['standards'].get(standard)} != {want}"
                )
    return problems


def check_report(report: dict[str, Any], expected: Expected) -> list[str]:
    """The monthly table, the practice groups and the calibration pairs of a JSON report."""
    problems = _months("months", report["months"], expected.total, (), expected.months, True)
    for group, cell in expected.practice.items():
        got = report["practice"]["groups"].get(group)
        if got != measure(cell):
            problems.append(f"practice {group}: {got} != {measure(cell)}")
    for standard in STANDARDS:
        pairs, agreed = expected.calibration.get(standard, [0, 0])
        got = report["calibration"][standard]
        want = {"pairs": pairs, "agreed": agreed, "percent_agreement": percent(agreed, pairs)}
        if {k: got[k] for k in want} != want:
            problems.append(f"calibration {standard}: {got} != {want}")
    return problems


def check_groups(
    report: dict[str, Any], expected: Expected, by: str, only: set[str] | None = None
) -> list[str]:
    """The groups of a `by=` report (all of them, or those keyed in `only`)."""
    tally = {"handler": expected.by_handler, "queue": expected.by_queue,
             "training": expected.by_training}[by]  # fmt: skip
    keys = {k[0] for k in tally.calls} | {k[0] for k in tally.cells}
    got = {g["key"]: g["months"] for g in report["groups"]}
    problems = []
    if set(got) != keys:
        problems.append(f"by={by}: {len(got)} groups, expected {len(keys)}")
    for key in sorted(keys if only is None else only):
        if key not in got:
            problems.append(f"by={by}: group {key} missing")
            continue
        problems += _months(
            f"by={by} {key}", got[key], tally, (key,), expected.months, by != "training"
        )
    return problems


def _table(expected: Expected) -> list[list[Any]]:
    """The force's layout: calls assessed, then each standard's percent, one cell a month."""
    rows: list[list[Any]] = [[expected.total.calls.get((m,), 0) for m in expected.months]]
    for standard in STANDARDS:
        rows.append(
            [measure(expected.total.cells.get((m, standard)))["percent"] for m in expected.months]
        )
    return rows


def check_csv(text: str, expected: Expected) -> list[str]:
    found = list(csv.reader(io.StringIO(text)))
    want = [[str(c) for c in _table(expected)[0]]] + [
        ["" if p is None else f"{p:.1f}" for p in row] for row in _table(expected)[1:]
    ]
    got = [row[1:] for row in found[1:]]
    return [] if got == want else [f"csv table {got} != {want}"]


def check_xlsx(content: bytes, expected: Expected) -> list[str]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    got = [list(row[1:]) for row in sheet.iter_rows(min_row=2, values_only=True)]
    want = _table(expected)
    return [] if got == want else [f"xlsx table {got} != {want}"]
