"""The training register: records (201 new, 200 the same completion again), every problem in
one 422 with nothing stored, the summary of trained / expired / untrained handlers per module,
and `firstcontact training import CSV` (all or nothing, `file:line: column: reason`)."""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.auth.models import Role
from app.config import Settings
from app.qa.models import TrainingRecord
from app.qa.training import Completion, status_on
from tests.conftest import MakeStaff, service_env
from tests.qa.support import auth
from tests.telephony.support import count_rows


def test_status_on_a_day() -> None:
    done = [Completion(date(2022, 1, 10), date(2023, 1, 10))]
    assert status_on(done, date(2022, 1, 9)) == "untrained"
    assert status_on(done, date(2022, 1, 10)) == "trained"
    assert status_on(done, date(2023, 1, 10)) == "expired"
    # A later completion renews it.
    renewed = [*done, Completion(date(2023, 2, 1), None)]
    assert status_on(renewed, date(2023, 1, 20)) == "expired"
    assert status_on(renewed, date(2030, 1, 1)) == "trained"


async def run_cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, env=service_env(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_records_and_summary(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    admin = auth(await make_staff("A1", Role.admin))
    supervisor = auth(await make_staff("S1", Role.supervisor))
    qa = auth(await make_staff("Q1", Role.qa))
    for handler in ("H1", "H2", "H3"):
        await make_staff(handler, Role.handler)
    url = "/api/v1/training/records"
    body = {"staff_id": "H1", "module": "thrive_plus", "completed_on": "2022-01-10"}
    created = await client.post(url, json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["recorded_by"] == "staff:A1"
    again = await client.post(url, json={**body, "expires_on": "2025-01-10"}, headers=supervisor)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    assert again.json()["expires_on"] == "2025-01-10"
    expired = {"staff_id": "H2", "module": "thrive_plus", "completed_on": "2020-01-01",
               "expires_on": "2021-01-01"}  # fmt: skip
    assert (await client.post(url, json=expired, headers=admin)).status_code == 201

    summary = await client.get("/api/v1/training/summary", params={"on": "2022-06-01"}, headers=qa)
    assert summary.status_code == 200, summary.text
    modules = {m["module"]: m for m in summary.json()["modules"]}
    assert summary.json()["staff"] == 3  # handlers only
    assert modules["thrive_plus"] | {"title": ""} == {
        "module": "thrive_plus", "title": "", "trained": 1, "expired": 1, "untrained": 1
    }  # fmt: skip
    assert modules["repeat_victims"]["untrained"] == 3
    assert len(modules) == 7

    listed = await client.get(url, params={"staff_id": "H1"}, headers=supervisor)
    assert [r["module"] for r in listed.json()["items"]] == ["thrive_plus"]

    bad = {"staff_id": "H9", "module": "juggling", "completed_on": "2999-01-01",
           "expires_on": "2998-01-01"}  # fmt: skip
    refused = await client.post(url, json=bad, headers=admin)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "training_record_invalid"
    assert [d["field"] for d in error["details"]] == [
        "staff_id", "module", "completed_on", "expires_on"
    ]  # fmt: skip
    for malformed in (
        {**body, "completed_on": "10/01/2022"},
        {**body, "staff_id": "H\u00001"},
        {**body, "colour": "red"},
    ):
        response = await client.post(url, json=malformed, headers=admin)
        assert response.status_code == 422, (malformed, response.text)
    assert await count_rows(app, TrainingRecord) == 2


async def test_cli_import_is_all_or_nothing(
    app: FastAPI, settings: Settings, make_staff: MakeStaff, tmp_path: Path
) -> None:
    for handler in ("H1", "H2"):
        await make_staff(handler, Role.handler)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "staff_id,module,completed_on,expires_on\n"
        "H1,thrive_plus,2022-01-10,\n"
        "H7,thrive_plus,2022-01-10,\n"
        "H2,juggling,2022-13-01,\n"
        "H1,thrive_plus,2022-01-10,2024-01-01\n"
    )
    code, out, err = await run_cli(settings, "training", "import", str(bad))
    assert code == 1, (out, err)
    assert "bad.csv:3: staff_id: no such staff member" in err
    assert "bad.csv:4: completed_on: not a date (YYYY-MM-DD)" in err
    assert "bad.csv:5: completed_on: repeats line 2" in err
    assert await count_rows(app, TrainingRecord) == 0

    good = tmp_path / "register.csv"
    good.write_text(
        "staff_id,module,completed_on,expires_on,notes\n"
        "H1,thrive_plus,2022-01-10,\n"
        "H2,thrive_plus,2022-01-10,2023-01-10,ignored\n"
        "H2,repeat_victims,2022-02-01,\n"
    )
    code, out, err = await run_cli(settings, "training", "import", str(good))
    assert code == 0, err
    assert "imported 3 training records (3 new, 0 updated)" in out
    code, out, _ = await run_cli(settings, "training", "import", str(good))
    assert "(0 new, 3 updated)" in out
    assert await count_rows(app, TrainingRecord) == 3
