"""Issue 16 point 6: every CSV and XLSX export neutralises cells a spreadsheet would run as a
formula (= + - @ tab CR): one helper (app/cells.py), and no export that bypasses it."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from app.auth.models import Role
from app.cells import cell, csv_writer
from tests.conftest import MakeStaff
from tests.thrive.support import answered_call, auth, full_assessment, transfer

EVIL = '=HYPERLINK("http://e.vil","x")'
APP = Path(__file__).resolve().parents[1] / "app"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_starts_become_text(start: str) -> None:
    assert cell(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize("value", ["H1042", "burglary", "", "a=b", -3, 2.5, None])
def test_everything_else_is_left_as_is(value: object) -> None:
    assert cell(value) == value


def test_the_csv_writer_neutralises_every_cell() -> None:
    out = io.StringIO()
    csv_writer(out).writerow([EVIL, "+44 7700", "ok", -1])
    [row] = list(csv.reader(io.StringIO(out.getvalue())))
    assert row == ["'" + EVIL, "'+44 7700", "ok", "-1"]


def test_a_neutralised_cell_is_text_in_a_workbook() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([cell(EVIL)])
    out = io.BytesIO()
    book.save(out)
    loaded = load_workbook(io.BytesIO(out.getvalue())).active
    assert loaded is not None
    assert loaded["A1"].data_type == "s" and loaded["A1"].value == "'" + EVIL


def test_no_export_bypasses_the_helper() -> None:
    """Every module of app/ that writes CSV or builds a workbook takes its cells from
    app.cells (and none builds its own csv.writer)."""
    writes = re.compile(r"csv\.writer\(|csv\.DictWriter\(|from openpyxl import Workbook")
    exporters = {
        path.relative_to(APP).as_posix(): path.read_text()
        for path in APP.rglob("*.py")
        if path.name != "cells.py" and writes.search(path.read_text())
    }
    assert set(exporters) == {"qa/export.py"}  # the workbook; nobody builds a csv.writer
    assert all("from app.cells import" in text for text in exporters.values())
    thrive = (APP / "thrive" / "export.py").read_text()
    assert "csv_writer(" in thrive and "from app.cells import" in thrive


async def test_assessments_csv_neutralises_a_formula_handler_id(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """The measured case: a handler id that is a formula (as the telephony platform sent it:
    the call rang there first, then was transferred), written into assessments.csv."""
    token = await make_staff("H1", Role.handler)
    qa = await make_staff("Q1", Role.qa)
    external = "evil-handler-call"
    call_id = await answered_call(client, EVIL, external=external)
    await transfer(client, external, "H1")
    submitted = await client.put(
        f"/api/v1/calls/{call_id}/assessment", json=full_assessment(), headers=auth(token)
    )
    assert submitted.status_code == 201, submitted.text
    today = datetime.now(UTC).date()
    response = await client.get(
        "/api/v1/assessments.csv",
        params={"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()},
        headers=auth(qa),
    )
    assert response.status_code == 200, response.text
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert row["handlers"] == f"'{EVIL};H1" and row["handler_id"] == "H1"
    cells = [value for line in csv.reader(io.StringIO(response.text)) for value in line]
    assert not [value for value in cells if value.startswith(("=", "+", "@", "\t", "\r"))]
