"""The report's charts (issue 12, point 5): SVG drawn here from the report and the training
summary, with a text alternative that says every value; served inline and as a download by
GET /api/v1/qa/report.svg, for the roles that may read the report."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

import httpx
from fastapi import FastAPI

from app.auth.models import Role
from app.qa import charts
from app.qa.schemas import Measure, ModuleSummary, MonthRow, Report, TrainingSummary
from tests.conftest import MakeStaff
from tests.qa.support import CallSpec, answers, at_uk, auth, offer

SVG = "{http://www.w3.org/2000/svg}"


def _measure(met: int, applicable: int, percent: float | None) -> Measure:
    return Measure(met=met, applicable=applicable, not_applicable=0, percent=percent)


def _report() -> Report:
    rows = [
        MonthRow(
            month="2022-06",
            calls_assessed=4,
            standards={"vulnerability": _measure(3, 4, 75.0), "odd": _measure(1, 2, 50.0)},
        ),
        MonthRow(
            month="2022-07",
            calls_assessed=1,
            standards={"vulnerability": _measure(0, 0, None), "odd": _measure(0, 1, 0.0)},
        ),
        MonthRow(
            month="2022-08",
            calls_assessed=2,
            standards={"vulnerability": _measure(1, 2, 50.0), "odd": _measure(2, 2, 100.0)},
        ),
    ]
    return Report(
        from_month="2022-06",
        to_month="2022-08",
        form="qa-form@test",
        measures=[
            {"id": "calls_assessed", "label": "Calls assessed"},
            {"id": "vulnerability", "label": "Good/outstanding vulnerability assessment (%)"},
            # A force's own label: markup in it must come out as text.
            {"id": "odd", "label": "Checks <b>& balances</b> (%)"},
        ],
        months=rows,
        calibration={},
        practice=None,
    )


def _accessible_name(root: ET.Element) -> tuple[str, str]:
    assert root.get("role") == "img"
    title_id, desc_id = str(root.get("aria-labelledby")).split()
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert (title.get("id"), desc.get("id")) == (title_id, desc_id)
    return title.text or "", desc.text or ""


def test_standards_chart_draws_a_line_per_standard_with_gaps_and_says_every_value() -> None:
    svg = charts.standards_chart(_report())
    root = ET.fromstring(svg)  # well-formed XML, the label's markup escaped
    title, desc = _accessible_name(root)
    assert title == "QA standards met, % per month, Jun 2022 to Aug 2022"
    assert (
        "Good/outstanding vulnerability assessment: Jun 2022 75%, Jul 2022 none applicable, "
        "Aug 2022 50%."
    ) in desc
    assert "Checks <b>& balances</b>: Jun 2022 50%, Jul 2022 0%, Aug 2022 100%." in desc
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    series = {g.get("data-standard"): g for g in root.iter(f"{SVG}g") if g.get("class") == "series"}
    assert set(series) == {"vulnerability", "odd"}
    # Vulnerability: no value in July, so no line across it and two markers only.
    vulnerability = series["vulnerability"]
    assert vulnerability.findall(f"{SVG}polyline") == []
    assert len(vulnerability.findall(f"{SVG}circle")) == 2
    odd = series["odd"]
    assert len(odd.findall(f"{SVG}polyline")) == 1
    assert len(odd.findall(f"{SVG}rect")) == 3  # the second series' marker is a square
    # 75% sits a quarter of the plot below 100%: y = top + height x (1 - 0.75).
    ys = [float(c.get("cy", 0)) for c in vulnerability.findall(f"{SVG}circle")]
    assert ys == [44 + 220 * 0.25, 44 + 220 * 0.5]
    tips = [t.text for t in vulnerability.iter(f"{SVG}title")]
    assert "Good/outstanding vulnerability assessment, Jun 2022: 75% (3 of 4)" in tips


def test_training_chart_stacks_trained_expired_untrained_with_counts_written() -> None:
    summary = TrainingSummary(
        on=date(2022, 9, 30),
        staff=4,
        modules=[
            ModuleSummary(module="thrive_plus", title="THRIVE+", trained=2, expired=1, untrained=1),
            ModuleSummary(
                module="repeat_victims", title="Repeat victims", trained=0, expired=0, untrained=4
            ),
        ],  # fmt: skip
    )
    svg = charts.training_chart(summary)
    root = ET.fromstring(svg)
    title, desc = _accessible_name(root)
    assert title.endswith("30 Sep 2022")
    assert "THRIVE+: 2 trained, 1 expired, 1 untrained." in desc
    assert "Repeat victims: 0 trained, 0 expired, 4 untrained." in desc
    modules = {g.get("data-module"): g for g in root.iter(f"{SVG}g") if g.get("class") == "module"}
    thrive = modules["thrive_plus"]
    # Background, then one segment per non-zero status, widths in proportion.
    background, *segments = thrive.findall(f"{SVG}rect")
    widths = [float(r.get("width", 0)) for r in segments]
    full = float(background.get("width", 0))
    assert widths == [round(full / 2, 1), round(full / 4, 1), round(full / 4, 1)]
    texts = [t.text for t in thrive.findall(f"{SVG}text")]
    assert "2 trained, 1 expired, 1 untrained" in texts
    assert len(modules["repeat_victims"].findall(f"{SVG}rect")) == 2


async def test_report_svg_endpoint_serves_both_charts_from_the_report(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    qa = auth(await make_staff("Q1", Role.qa))
    await make_staff("H1", Role.handler)
    ids = await offer(
        app,
        client,
        [CallSpec(f"c{n}", "H1", at_uk(f"2022-06-{n + 10}")) for n in range(3)],
    )
    for n, vulnerability in enumerate(("good", "inadequate", "outstanding")):
        body = {"call_id": ids[f"c{n}"], "answers": answers(vulnerability=vulnerability)}
        response = await client.post("/api/v1/qa/reviews", json=body, headers=qa)
        assert response.status_code == 201, response.text

    params = {"from": "2022-06", "to": "2022-07"}
    response = await client.get("/api/v1/qa/report.svg", params=params, headers=qa)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert (
        'filename="qa-standards-2022-06-to-2022-07.svg"' in response.headers["content-disposition"]
    )
    _, desc = _accessible_name(ET.fromstring(response.text))
    # 2 of 3 met in June (66.7%, as the JSON report says), nothing in July.
    report = await client.get("/api/v1/qa/report", params=params, headers=qa)
    assert report.json()["months"][0]["standards"]["vulnerability"]["percent"] == 66.7
    assert "vulnerability assessment: Jun 2022 66.7%, Jul 2022 none applicable." in desc

    training = await client.get(
        "/api/v1/qa/report.svg", params={**params, "chart": "training"}, headers=qa
    )
    assert training.status_code == 200, training.text
    title, desc = _accessible_name(ET.fromstring(training.text))
    assert title.endswith("31 Jul 2022")  # the last day of `to`
    assert "THRIVE+: 0 trained, 0 expired, 1 untrained." in desc

    for bad, code in (
        ({"from": "2022-07", "to": "2022-06"}, "bad_month"),
        ({"from": "2022-13", "to": "2022-12"}, "bad_month"),
        ({"from": "2022-06", "to": "2022-07", "chart": "pie"}, "validation_error"),
    ):
        response = await client.get("/api/v1/qa/report.svg", params=bad, headers=qa)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["code"] == code
        assert re.search(r"\w", response.json()["error"]["message"])
