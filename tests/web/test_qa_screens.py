"""The QA screens in Debian's Chromium against a real `firstcontact serve` on this run's
backend (issue 12, acceptance 6): a QA reviewer draws a sample, grades three calls from the
keyboard alone, reads the monthly report with its table, charts and downloads; a handler
reads their own reviews. axe-core finds no violation on any of these pages; screenshots at
1366x768 and 1920x1080 go to test-artifacts/screenshots/.

Every wait is on a condition (Playwright's `expect`), never a fixed sleep.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from playwright.async_api import Browser, BrowserContext, Page, expect

from app.auth.models import Role
from app.config import Settings
from app.qa import months
from tests.conftest import MakeStaff
from tests.qa.support import answers
from tests.support.servers import ServiceProcess
from tests.web.axe import assert_accessible
from tests.web.qa_support import QaWorld, open_page, record_training, seed_qa_world
from tests.web.support import screenshot_path
from tests.web.test_screens import watch_errors

LiveService = Callable[..., ServiceProcess]
STANDARDS = ("vulnerability", "prevention", "preservation", "repeat_victim_check")
# The shipped form's scales, in the order the screen lists the radio buttons.
SCALES = {
    "vulnerability": [
        "outstanding",
        "good",
        "requires_improvement",
        "inadequate",
        "not_applicable",
    ],
    "prevention": ["outstanding", "good", "requires_improvement", "inadequate", "not_applicable"],
    "preservation": ["outstanding", "good", "requires_improvement", "inadequate", "not_applicable"],
    "repeat_victim_check": ["yes", "no", "not_applicable"],
}


def _read_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


def _read(path: Path) -> str:
    # Bytes, then decoded: the CSV's own CRLF line ends are kept.
    return _read_bytes(path).decode()


async def focused_id(page: Page) -> str:
    value = await page.evaluate("document.activeElement ? document.activeElement.id : ''")
    return str(value)


async def answer_by_keyboard(page: Page, standard: str, answer: str, feedback: str = "") -> None:
    """Focus is on the standard's radio group (Tab just entered it, nothing chosen yet):
    choose `answer` with the arrow keys (or Space for the first), then Tab to the feedback
    box and type; leaves focus in the feedback box."""
    assert await focused_id(page) == f"ans-{standard}-{SCALES[standard][0]}", await focused_id(page)
    steps = SCALES[standard].index(answer)
    if steps == 0:
        await page.keyboard.press("Space")
    for _ in range(steps):
        await page.keyboard.press("ArrowDown")
    await expect(page.locator(f"#ans-{standard}-{answer}")).to_be_checked()
    await page.keyboard.press("Tab")
    assert await focused_id(page) == f"fb-{standard}"
    if feedback:
        await page.keyboard.type(feedback)


async def test_qa_reviewer_draws_a_sample_and_grades_three_calls_by_keyboard(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    service = live_service()
    world = await seed_qa_world(settings, service.url, make_staff)
    page = await open_page(browser_context, service.url, world.tokens["Q1"], "/qa")
    errors = watch_errors(page)
    await expect(page.locator("#qa")).to_have_attribute("data-state", "ready")
    await expect(page.locator("#standards fieldset")).to_have_count(len(STANDARDS))
    await assert_accessible(page, "/qa before a sample")

    # Draw: 2 per handler, seed 17, this month. H3 answered one call only: a shortfall.
    await page.fill("#d-month", world.month)
    await page.fill("#d-per", "2")
    await page.fill("#d-seed", "17")
    await page.locator("#draw button[type=submit]").focus()
    await page.keyboard.press("Enter")
    rows = page.locator("#sample-rows tr")
    await expect(rows).to_have_count(5)
    await expect(page.locator("#sample-summary")).to_be_focused()
    await expect(page.locator("#sample-summary")).to_contain_text("5 calls from 3 handlers")
    await expect(page.locator("#shortfalls")).to_contain_text("H3 had 1 eligible call: 1 drawn")
    sample_id = int(str(await page.locator("#sample-summary").get_attribute("data-sample-id")))

    # What the page lists is the sample the service drew, in its order.
    async with httpx.AsyncClient(base_url=service.url) as http:
        drawn = (
            await http.get(f"/api/v1/qa/samples/{sample_id}", headers=world.bearer("Q1"))
        ).json()
    listed = [int(str(await r.get_attribute("data-call-id"))) for r in await rows.all()]
    assert listed == [c["call_id"] for c in drawn["calls"]]
    assert drawn["seed"] == 17 and drawn["per_handler"] == 2 and drawn["drawn_by"] == "Q1"
    await expect(page.locator("#sample-rows tr[data-reviewed=false]")).to_have_count(5)
    await assert_accessible(page, "/qa with a sample")

    # The first call, opened from the keyboard: its record beside the form, focus on it.
    first = listed[0]
    await page.locator(f"#sample-rows tr[data-call-id='{first}'] a").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#record-h")).to_have_text(f"Call record: call {first}")
    await expect(page.locator("#record-panel")).to_be_focused()
    await expect(page).to_have_url(f"{service.url}/qa?sample={sample_id}&call={first}")

    # Grade three calls. The first is submitted without its repeat-victim answer: the
    # service's 422 is shown beside that standard, then fixed, all from the keyboard.
    plans: list[dict[str, str]] = [
        answers(preservation="inadequate", prevention="not_applicable"),
        answers(vulnerability="outstanding", repeat_victim_check="no"),
        answers(vulnerability="requires_improvement", preservation="good"),
    ]
    graded: list[int] = []
    for index, plan in enumerate(plans):
        call_id = int(re.sub(r"\D", "", str(await page.locator("#record-h").text_content())))
        graded.append(call_id)
        await expect(page.locator("#review")).to_be_visible()
        await page.keyboard.press("Tab")  # from the record into the first standard
        for standard in STANDARDS:
            if index == 0 and standard == "repeat_victim_check":
                await page.keyboard.press("Tab")  # skip it: no answer
                await page.keyboard.press("Tab")  # past its feedback box
                continue
            feedback = f"Call {call_id}: {standard} noted" if standard == "preservation" else ""
            await answer_by_keyboard(page, standard, plan[standard], feedback)
            await page.keyboard.press("Tab")  # to the next standard (or the submit button)
        assert await focused_id(page) == "review-submit"
        if index == 0:
            await page.keyboard.press("Enter")
            problems = page.locator("#review-problems")
            await expect(problems).to_be_visible()
            await expect(problems).to_be_focused()
            field = page.locator("#std-repeat_victim_check")
            await expect(field).to_have_class(re.compile(r"\binvalid\b"))
            await expect(field.locator(".field-error")).to_contain_text("missing")
            await expect(page.locator("#std-vulnerability .field-error")).to_be_hidden()
            await expect(field.locator("input").first).to_have_attribute("aria-invalid", "true")
            await assert_accessible(page, "/qa showing a review's problems")
            await page.screenshot(path=str(screenshot_path("qa-problems.png")))
            # The problem's link takes focus to the standard; answer it; on to submit.
            await page.keyboard.press("Tab")
            await page.keyboard.press("Enter")
            await answer_by_keyboard(page, "repeat_victim_check", plan["repeat_victim_check"])
            await page.keyboard.press("Tab")
            assert await focused_id(page) == "review-submit"
        await page.keyboard.press("Enter")
        status = page.locator("#review-status")
        await expect(status).to_contain_text(f"Review of call {call_id} saved")
        await expect(page.locator(f"#sample-rows tr[data-call-id='{call_id}']")).to_have_attribute(
            "data-reviewed", "true"
        )
        # Focus moves on to "Next call"; Enter opens it with its record focused.
        await expect(page.locator("#next-call")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("#record-panel")).to_be_focused()
        await expect(page.locator("#record-h")).not_to_have_text(f"Call record: call {call_id}")

    await expect(page.locator("#sample-rows tr[data-reviewed=true]")).to_have_count(3)
    await expect(page.locator("#sample-summary")).to_contain_text("3 reviewed, 2 to review")
    assert len(set(graded)) == 3 and set(graded) <= set(listed)

    # Stored as graded: every answer, the feedback, the sample.
    async with httpx.AsyncClient(base_url=service.url) as http:
        stored = (await http.get("/api/v1/qa/reviews", headers=world.bearer("Q1"))).json()["items"]
    by_call = {r["call_id"]: r for r in stored}
    assert sorted(by_call) == sorted(graded)
    for call_id, plan in zip(graded, plans, strict=True):
        review = by_call[call_id]
        assert review["sample_id"] == sample_id and review["reviewer_id"] == "Q1"
        assert {a["standard"]: a["answer"] for a in review["answers"]} == plan
        notes = {a["standard"]: a["feedback"] for a in review["answers"]}
        assert notes["preservation"] == f"Call {call_id}: preservation noted"
        assert notes["vulnerability"] is None
    # The browser logs the one 422 it was meant to get; nothing else went wrong.
    assert len(errors) == 1 and "status of 422" in errors[0], errors


async def test_record_beside_the_form_shows_the_calls_thrive_record(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """A call opened by URL (a targeted review): events, alerts, prompts and advice in
    words, the assessment and the narrative; a supervisor may review too."""
    service = live_service()
    world = await seed_qa_world(settings, service.url, make_staff)
    call = world.rich_call
    page = await open_page(browser_context, service.url, world.tokens["S1"], f"/qa?call={call}")
    errors = watch_errors(page)
    await expect(page.locator("#qa")).to_have_attribute("data-state", "ready")
    record = page.locator("#record")
    await expect(page.locator("#record-h")).to_have_text(f"Call record: call {call}")
    await expect(record).to_contain_text("H1")
    await expect(record.locator(".events li")).to_have_count(4)
    await expect(record).to_contain_text("Repeat victim", ignore_case=True)
    await expect(record).to_contain_text("Not acknowledged")
    await expect(record).to_contain_text("Burglary")
    await expect(record.locator(".narrative")).to_have_text(
        "Back door forced overnight. Her kids were asleep upstairs."
    )
    await expect(record.locator(".elements-table tbody tr")).to_have_count(8)
    await expect(record).to_contain_text("threat discussed with the caller")
    # Advice given is shown as its text, not its id.
    advice = record.locator("section", has_text="THRIVE+ during the call").locator("li")
    await expect(advice).to_have_count(2)
    assert all("_" not in t for t in await advice.all_inner_texts())

    for standard in STANDARDS:
        await page.check(f"#ans-{standard}-{'yes' if standard.startswith('repeat') else 'good'}")
    await page.click("#review-submit")
    await expect(page.locator("#review-status")).to_contain_text(f"Review of call {call} saved")
    await expect(page.locator("#review-status")).to_be_focused()  # no sample: nothing next
    async with httpx.AsyncClient(base_url=service.url) as http:
        stored = (
            await http.get(f"/api/v1/qa/reviews?call_id={call}", headers=world.bearer("S1"))
        ).json()["items"]
    assert len(stored) == 1 and stored[0]["targeted"] and stored[0]["reviewer_id"] == "S1"
    assert errors == []


async def _review(
    http: httpx.AsyncClient, world: QaWorld, reviewer: str, call: int, **a: str
) -> None:
    body = {"call_id": call, "answers": answers(**a), "feedback": {}}
    if a.get("preservation") == "inadequate":
        body["feedback"] = {"preservation": "Tell the caller not to touch the door frame."}
    response = await http.post("/api/v1/qa/reviews", json=body, headers=world.bearer(reviewer))
    assert response.status_code == 201, response.text


async def _graded_world(
    service: ServiceProcess, settings: Settings, make_staff: MakeStaff
) -> QaWorld:
    """The world with reviews stored through the API: this month H1's three calls and one of
    H2's (one calibrated by S1), and H1's call of the earlier month; training records."""
    world = await seed_qa_world(settings, service.url, make_staff)
    c = world.calls
    async with httpx.AsyncClient(base_url=service.url) as http:
        await _review(http, world, "Q1", c["qa-H1-0"], preservation="inadequate")
        await _review(
            http, world, "Q1", c["qa-H1-1"], vulnerability="inadequate", prevention="not_applicable"
        )
        await _review(http, world, "Q1", c["qa-H1-2"], repeat_victim_check="no")
        await _review(http, world, "Q1", c["qa-H2-0"], vulnerability="outstanding")
        await _review(http, world, "S1", c["qa-H2-0"], vulnerability="good")
        await _review(http, world, "Q1", c["qa-H1-earlier"], vulnerability="requires_improvement")
    await record_training(service.url, world.tokens["S1"])
    return world


async def test_report_page_table_charts_and_downloads(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    service = live_service()
    world = await _graded_world(service, settings, make_staff)
    path = f"/qa/report?from={world.earlier_month}&to={world.month}"
    page = await open_page(browser_context, service.url, world.tokens["Q1"], path)
    errors = watch_errors(page)
    await expect(page.locator("#report-page")).to_have_attribute("data-state", "ready")

    async with httpx.AsyncClient(base_url=service.url) as http:
        query = f"from={world.earlier_month}&to={world.month}"
        report = (await http.get(f"/api/v1/qa/report?{query}", headers=world.bearer("Q1"))).json()
        csv_text = (
            await http.get(f"/api/v1/qa/report?{query}&format=csv", headers=world.bearer("Q1"))
        ).text
    span = report["months"]
    assert span[0]["month"] == world.earlier_month and span[-1]["month"] == world.month
    # The force's layout: a column per month, a row per measure.
    heads = await page.locator("#report-head th").all_inner_texts()
    assert heads == ["Measure", *(months.display(m["month"]) for m in span)]
    await expect(page.locator("#report-rows tr")).to_have_count(1 + len(STANDARDS))
    assessed = page.locator("#report-rows tr[data-measure=calls_assessed] td")
    # This month: H1's three calls and H2's one (its second review is calibration).
    assert (await assessed.all_inner_texts())[-1] == "4"
    assert (await assessed.all_inner_texts())[0] == "1"
    vulnerability = await page.locator(
        "#report-rows tr[data-measure=vulnerability] td"
    ).all_inner_texts()
    # This month: good, inadequate, good, outstanding -> 3 of 4; earlier: 0 of 1.
    assert vulnerability[-1].startswith("75.0%") and "3/4" in vulnerability[-1]
    assert vulnerability[0].startswith("0.0%")
    prevention = await page.locator("#report-rows tr[data-measure=prevention] td").all_inner_texts()
    assert prevention[-1].startswith("100.0%") and "3/3" in prevention[-1]  # one n/a

    # Charts, inline SVG with a text alternative; a line point per month with a value.
    standards_svg = page.locator("#chart-standards svg")
    await expect(standards_svg).to_have_attribute("role", "img")
    await expect(standards_svg.locator("title").first).to_contain_text("QA standards met")
    desc = str(await standards_svg.locator("desc").text_content())
    assert "75%" in desc and months.display(world.month) in desc
    await expect(standards_svg.locator("g.series")).to_have_count(len(STANDARDS))
    points = standards_svg.locator("g.series[data-standard=vulnerability] > :not(polyline)")
    valued = [m for m in span if m["standards"]["vulnerability"]["percent"] is not None]
    await expect(points).to_have_count(len(valued))
    training_svg = page.locator("#chart-training svg")
    await expect(training_svg.locator("g.module")).to_have_count(7)
    await expect(training_svg.locator("g.module[data-module=repeat_victims]")).to_contain_text(
        "1 trained, 1 expired, 1 untrained"
    )
    await expect(training_svg.locator("g.module[data-module=thrive_plus]")).to_contain_text(
        "2 trained, 0 expired, 1 untrained"
    )
    # Calibration: H2's call was graded twice (outstanding vs good: they disagree).
    await expect(page.locator("#calibration-rows")).to_contain_text("Good/outstanding")

    # Downloads: the table as CSV (the API's own) and XLSX, the charts as SVG.
    async with page.expect_download() as got:
        await page.locator("#dl-csv").click()
    download = await got.value
    assert download.suggested_filename.endswith(".csv")
    assert _read(await download.path()) == csv_text
    first_row = next(csv.reader(io.StringIO(csv_text)))
    assert first_row == heads
    async with page.expect_download() as got:
        await page.locator("#dl-xlsx").click()
    download = await got.value
    assert download.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(_read_bytes(await download.path()))).active
    assert [c.value for c in sheet[1]] == heads
    assert [c.value for c in sheet[2]] == ["Calls assessed", *(m["calls_assessed"] for m in span)]
    for name in ("standards", "training"):
        async with page.expect_download() as got:
            await page.locator(f"#dl-svg-{name}").click()
        download = await got.value
        assert download.suggested_filename.endswith(".svg"), download.suggested_filename
        text = _read(await download.path())
        assert text.startswith("<svg") and 'role="img"' in text

    await assert_accessible(page, "/qa/report")
    assert errors == []


async def test_bad_input_is_explained_on_the_pages(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """Reversed months on the report, a sample drawn from a month without calls, a seed that
    is no number: each page says why beside the field, and stays accessible."""
    service = live_service()
    token = await make_staff("Q1", Role.qa)
    page = await open_page(
        browser_context, service.url, token, "/qa/report?from=2022-09&to=2022-06"
    )
    await expect(page.locator("#report-page")).to_have_attribute("data-state", "error")
    await expect(page.locator("#report-error")).to_contain_text("to is before from")
    await expect(page.locator("#to")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#dl-csv")).not_to_have_attribute("href", re.compile("."))
    await assert_accessible(page, "/qa/report with an error")

    await page.goto(service.url + "/qa")
    await expect(page.locator("#qa")).to_have_attribute("data-state", "ready")
    await page.fill("#d-month", "2022-01")
    await page.fill("#d-seed", "3")
    await page.locator("#draw button[type=submit]").click()
    await expect(page.locator("#draw-error")).to_contain_text("no eligible calls in 2022-01")
    await expect(page.locator("#sample-calls")).to_be_hidden()
    await page.fill("#d-seed", "")
    await page.locator("#draw button[type=submit]").click()
    await expect(page.locator("#draw-error")).to_contain_text("Seed: ")
    await expect(page.locator("#d-seed")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page, "/qa with a draw error")
    async with httpx.AsyncClient(base_url=service.url) as http:
        listed = await http.get("/api/v1/qa/samples", headers={"Authorization": f"Bearer {token}"})
    assert listed.json()["items"] == []  # nothing stored


async def test_handler_sees_own_reviews_and_feedback_only(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    service = live_service()
    world = await _graded_world(service, settings, make_staff)
    page = await open_page(browser_context, service.url, world.tokens["H1"], "/handler/reviews")
    errors = watch_errors(page)
    await expect(page.locator("#reviews-page")).to_have_attribute("data-state", "ready")
    cards = page.locator("#reviews article")
    await expect(cards).to_have_count(4)  # H1's four reviewed calls, none of H2's
    shown = {int(str(await c.get_attribute("data-call-id"))) for c in await cards.all()}
    assert shown == {world.calls[k] for k in ("qa-H1-0", "qa-H1-1", "qa-H1-2", "qa-H1-earlier")}
    card = page.locator(f"#reviews article[data-call-id='{world.rich_call}']")
    await expect(card.locator("tr[data-standard=preservation]")).to_contain_text("Not met")
    await expect(card.locator("tr[data-standard=preservation]")).to_contain_text(
        "Tell the caller not to touch the door frame."
    )
    await expect(card.locator("tr[data-standard=vulnerability]")).to_contain_text("Met")
    await assert_accessible(page, "/handler/reviews")
    # The month filter.
    await page.fill("#month", world.earlier_month)
    await page.locator("#filter button").click()
    await expect(page.locator("#reviews-page")).to_have_attribute("data-state", "ready")
    await expect(cards).to_have_count(1)
    # The handler's own screen links here from its top bar.
    await page.goto(service.url + "/handler")
    link = page.locator("header nav a[href='/handler/reviews']")
    await expect(link).to_have_text("My reviews")
    assert errors == []


@pytest.mark.parametrize("viewport", [(1366, 768), (1920, 1080)], ids=["1366x768", "1920x1080"])
async def test_screenshots_and_axe_at_both_sizes(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser: Browser,
    viewport: tuple[int, int],
) -> None:
    """Each QA page and the handler's reviews at this size: a screenshot in
    test-artifacts/screenshots/, nothing wider than the window, no axe violation."""
    width, height = viewport
    service = live_service()
    world = await _graded_world(service, settings, make_staff)
    async with httpx.AsyncClient(base_url=service.url) as http:
        drawn = await http.post(
            "/api/v1/qa/samples",
            json={"month": world.month, "per_handler": 3, "seed": 5},
            headers=world.bearer("Q1"),
        )
    assert drawn.status_code == 201, drawn.text
    sample: dict[str, Any] = drawn.json()
    size = f"{width}x{height}"
    pages = [
        ("Q1", f"/qa?sample={sample['id']}&call={sample['calls'][0]['call_id']}", "qa", "#qa"),
        (
            "Q1",
            f"/qa/report?from={world.earlier_month}&to={world.month}",
            "qa-report",
            "#report-page",
        ),
        ("H1", "/handler/reviews", "handler-reviews", "#reviews-page"),
    ]
    for staff_id, path, name, ready in pages:
        context = await browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        try:
            page = await open_page(context, service.url, world.tokens[staff_id], path)
            errors = watch_errors(page)
            await expect(page.locator(ready)).to_have_attribute("data-state", "ready")
            if name == "qa":
                await page.check("#ans-vulnerability-good")
                await page.check("#ans-prevention-not_applicable")
            scroll_width = await page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, f"{name}: {scroll_width}px wide at {size}"
            await page.screenshot(
                path=str(screenshot_path(f"{name}-{size}.png")), full_page=name != "qa"
            )
            await assert_accessible(page, f"{path} at {size}")
            assert errors == []
        finally:
            await context.close()
