"""The handler's work is kept apart per call and never lost (issue 11, acceptance 1, 2 and the
Chromium half of 3), in Debian's Chromium against real `firstcontact serve` processes on this
run's backend.

A: two calls; A's filled form never reaches B; each assessment is filed against its own call;
   A's draft comes back when the handler opens A (after a reload too).
B: the service is stopped while the handler types and ticks, the page is reloaded while it is
   down; once it is back every character and tick arrives, the cues are raised, nothing is
   stored twice (a lost answer is replayed, not re-run), and the badge says "Live" only after
   everything is confirmed.
C: the untouched form on a call with alerts is refused and each problem shows beside its field;
   a corrected form is accepted.

Every wait is on a condition (Playwright's `expect`), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Route, WebSocketRoute, expect
from playwright.async_api import Error as PlaywrightError
from sqlalchemy import func, select

from app.auth.models import Role
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.idempotency.models import IdempotentRequest
from app.rules.loader import load_configured
from app.thrive.models import Assessment, CallCue, CallThrive
from tests.conftest import MakeStaff
from tests.support.servers import ServiceProcess
from tests.web.axe import assert_accessible
from tests.web.support import QUIET_NUMBER, Telephony, login, screenshot_path, seed_repeat_victim

LiveService = Callable[..., ServiceProcess]
# The test command runs it on PostgreSQL + Redis (scripts/test_passes.py).
pytestmark = pytest.mark.production_only
WIDE = {"width": 1920, "height": 1080}
NARRATIVE = "She is pregnant and he has a knife"
# The four elements a call with a high alert, a high-severity cue or domestic abuse needs.
SERIOUS = ("threat", "harm", "risk", "vulnerability")


def watch_errors(page: Page) -> list[str]:
    """Script errors of a page, and console errors other than failed connections (these tests
    take the service away on purpose: the browser reports each refused request)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(msg: Any) -> None:
        if msg.type == "error" and not re.search(
            r"Failed to load resource|ERR_CONNECTION|WebSocket connection|net::ERR", msg.text
        ):
            errors.append(msg.text)

    page.on("console", console)
    return errors


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def api_get(base: str, token: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        return await http.get(path, headers=bearer(token))


async def count(settings: Settings, model: type, *where: object) -> int:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            value = await session.scalar(select(func.count()).select_from(model).where(*where))
    finally:
        await engine.dispose()
    return int(value or 0)


async def fill_form(
    page: Page,
    *,
    grade: str,
    elements: dict[str, tuple[str, str]],
    rvc: str | None = None,
    victim: bool = False,
) -> None:
    await page.select_option("#grade", grade)
    for element, (risk, text) in elements.items():
        await page.select_option(f"#el-{element}-risk", risk)
        await page.fill(f"#el-{element}-text", text)
    if rvc is not None:
        await page.select_option("#rvc", rvc)
    if victim:
        await page.check("#victim")


async def expect_saved(page: Page) -> None:
    """Every write confirmed: the badge says Live (nothing waiting)."""
    conn = page.locator("#conn")
    await expect(conn).to_have_attribute("data-pending", "0")
    await expect(conn).to_have_attribute("data-state", "live")


async def both_sizes(page: Page, name: str) -> None:
    """A screenshot at 1366x768 and one at 1920x1080; nothing may overflow sideways; axe-core
    finds no violation at either size."""
    for size, suffix in ((page.viewport_size, ""), (WIDE, "-1920")):
        assert size is not None
        await page.set_viewport_size(size)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{name}: content {width}px wide at {size}"
        await assert_accessible(page, f"{name}{suffix}")
        await page.screenshot(path=str(screenshot_path(f"{name}{suffix}.png")))
    await page.set_viewport_size({"width": 1366, "height": 768})


async def test_each_call_keeps_its_own_form_and_assessment(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """A (acceptance 1)."""
    await seed_repeat_victim(settings)
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    try:
        page = await login(browser_context, service.url, token, "/handler")
        errors = watch_errors(page)
        card = page.locator("#call-card")

        call_a = await phone.ring("trust-a", "H1")
        await phone.post("trust-a", "answered", handler_id="H1")
        await expect(card).to_have_attribute("data-call-id", str(call_a))
        await expect(card).to_have_attribute("data-state", "answered")
        await expect(page.locator("#alerts li.alert").first).to_be_visible()
        await page.select_option("#incident-type", "assault")
        await fill_form(
            page,
            grade="emergency",
            elements={
                "threat": ("high", "High: offender may still be nearby"),
                "harm": ("high", "Injured arm"),
                "risk": ("medium", "Repeat victim in the household"),
                "vulnerability": ("medium", "Lives with a partner marked DA high risk"),
            },
            rvc="yes",
            victim=True,
        )
        await expect(page.locator("#draft-status")).to_have_text("Draft saved.")
        await expect_saved(page)

        await phone.post("trust-a", "ended", cause="normal_clearing")
        await expect(card).to_have_attribute("data-state", "ended")
        await expect(card).to_contain_text("wrap-up: assessment due")

        # B rings: it takes the main view at once, with its own (empty) form.
        call_b = await phone.ring("trust-b", "H1", QUIET_NUMBER, called="101", queue="general")
        await expect(card).to_have_attribute("data-call-id", str(call_b))
        await expect(card).to_have_attribute("data-state", "ringing")
        for selector, value in (
            ("#grade", ""),
            ("#grade-reason", ""),
            ("#el-threat-risk", "not_applicable"),
            ("#el-threat-text", ""),
            ("#el-harm-risk", "not_applicable"),
            ("#rvc", ""),
            ("#incident-type", ""),
            ("#narrative", ""),
        ):
            await expect(page.locator(selector)).to_have_value(value)
        await expect(page.locator("#victim")).not_to_be_checked()
        tab_a = page.locator(f"#call-list button[data-call-id='{call_a}']")
        await expect(tab_a).to_have_attribute("data-wrap-up", "true")
        await expect(tab_a).to_contain_text("wrap-up: assessment due")
        await both_sizes(page, "handler-wrap-up")

        await phone.post("trust-b", "answered", handler_id="H1")
        await expect(card).to_have_attribute("data-state", "answered")
        await page.select_option("#incident-type", "theft")
        await fill_form(
            page,
            grade="scheduled",
            elements={
                "investigation": ("low", "Phone taken from a cafe table"),
                "prevention": ("low", "Advised on property marking"),
            },
        )
        await page.click("#assessment button[type=submit]")
        await expect(page.locator("#assessment-status")).to_have_attribute("data-version", "1")

        filed_b = await api_get(service.url, token, f"/api/v1/calls/{call_b}/assessment")
        assert filed_b.status_code == 200, filed_b.text
        b = filed_b.json()
        assert (b["call_id"], b["grade"], b["incident_type"]) == (call_b, "scheduled", "theft")
        assert b["elements"]["threat"] == {"risk": "not_applicable", "text": ""}
        assert b["elements"]["investigation"]["text"] == "Phone taken from a cafe table"
        assert b["repeat_victim_check"] is None and b["victim"] is False
        none_for_a = await api_get(service.url, token, f"/api/v1/calls/{call_a}/assessment")
        assert none_for_a.status_code == 404, none_for_a.text

        # Reloaded, A is still due (the service lists it) and opening it restores its draft.
        await page.reload()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await expect(tab_a).to_have_attribute("data-wrap-up", "true")
        await tab_a.click()
        await expect(card).to_have_attribute("data-call-id", str(call_a))
        await expect(page.locator("#grade")).to_have_value("emergency")
        await expect(page.locator("#el-threat-risk")).to_have_value("high")
        await expect(page.locator("#el-threat-text")).to_have_value(
            "High: offender may still be nearby"
        )
        await expect(page.locator("#rvc")).to_have_value("yes")
        await expect(page.locator("#victim")).to_be_checked()
        await expect(page.locator("#incident-type")).to_have_value("assault")
        await page.click("#assessment button[type=submit]")
        await expect(page.locator("#assessment-status")).to_have_attribute("data-version", "1")
        await expect(tab_a).to_have_attribute("data-wrap-up", "false")

        filed_a = await api_get(service.url, token, f"/api/v1/calls/{call_a}/assessment")
        assert filed_a.status_code == 200, filed_a.text
        a = filed_a.json()
        assert (a["call_id"], a["grade"], a["incident_type"]) == (call_a, "emergency", "assault")
        assert a["elements"]["threat"] == {
            "risk": "high",
            "text": "High: offender may still be nearby",
        }
        assert a["repeat_victim_check"] == "yes" and a["victim"] is True
        # B still has exactly its own one version.
        again_b = await api_get(service.url, token, f"/api/v1/calls/{call_b}/assessment")
        assert [v["grade"] for v in again_b.json()["history"]] == ["scheduled"]
        assert errors == []
    finally:
        await phone.close()


# Records every change of the status badge (state, writes waiting, text) in window.__badge.
BADGE_RECORDER = """() => {
  window.__badge = [];
  const conn = document.getElementById("conn");
  const log = () => window.__badge.push({
    state: conn.dataset.state, pending: Number(conn.dataset.pending || 0), text: conn.textContent,
  });
  new MutationObserver(log).observe(conn, { attributes: true, childList: true, subtree: true });
  log();
}"""
BADGE_LOG = f'document.addEventListener("DOMContentLoaded", {BADGE_RECORDER});'


async def test_work_typed_while_the_service_is_down_arrives_once(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """B (acceptance 2)."""
    token = await make_staff("H1", Role.handler)
    first = live_service()
    phone = Telephony(first.url)
    second: ServiceProcess | None = None
    ticked = ["burglary.dont_touch_entry", "burglary.lock_up"]
    try:
        page = await login(browser_context, first.url, token, "/handler")
        errors = watch_errors(page)
        call_id = await phone.ring("trust-outage", "H1", QUIET_NUMBER)
        await phone.post("trust-outage", "answered", handler_id="H1")
        await expect(page.locator("#call-card")).to_have_attribute("data-state", "answered")
        await page.select_option("#incident-type", "burglary")
        await expect(page.locator(f"li[data-advice-id='{ticked[0]}']")).to_be_visible()
        await expect_saved(page)

        first.stop()
        conn = page.locator("#conn")
        await expect(conn).to_have_attribute("data-state", "reconnecting")
        await page.locator("#narrative").press_sequentially(NARRATIVE, delay=15)
        for advice_id in ticked:
            await page.check(f"input[id='advice-{advice_id}']")
        await expect(page.locator("#narrative-status")).to_contain_text("Not saved")
        await expect(page.locator("#thrive-status")).to_contain_text("Not saved")
        await expect(conn).to_contain_text("not saved")
        # The narrative (after the pause in typing) and both ticks, each waiting in the queue.
        await page.wait_for_function("() => window.firstcontactWrites.size >= 3")
        await both_sizes(page, "handler-not-saved")

        # A reload while the service is down: the page cannot load, the queue is kept.
        with pytest.raises(PlaywrightError):
            await page.reload()

        second = ServiceProcess(env=first.env, port=first.port).start()
        await page.add_init_script(BADGE_LOG)
        await page.goto(first.url + "/handler")
        await expect_saved(page)
        await expect(page.locator("#narrative")).to_have_value(NARRATIVE)
        for advice_id in ticked:
            await expect(page.locator(f"input[id='advice-{advice_id}']")).to_be_checked()
        await expect(page.locator("#cues li[data-strand=pregnancy]")).to_be_visible()
        await expect(page.locator("#cues li[data-strand=weapons]")).to_be_visible()

        # Every character and tick arrived, once.
        screen = await api_get(first.url, token, f"/web/api/calls/{call_id}/screen")
        assert screen.status_code == 200, screen.text
        assert screen.json()["screen"]["narrative"] == NARRATIVE
        thrive = screen.json()["screen"]["thrive"]
        assert sorted(a["id"] for a in thrive["advice"] if a["given"]) == sorted(ticked)
        assert {c["strand"] for c in thrive["cues"]} >= {"pregnancy", "weapons"}
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session:
                state = await session.get(CallThrive, call_id)
        finally:
            await engine.dispose()
        assert state is not None and sorted(state.advice_given) == sorted(ticked)
        assert len(state.advice_given) == len(set(state.advice_given))
        cue_rows = await count(settings, CallCue, CallCue.call_id == call_id)
        assert cue_rows == len(thrive["cues"])

        # The badge said "Live" only once nothing was waiting.
        log = await page.evaluate("window.__badge")
        assert log[0]["pending"] >= 1, log  # the reloaded page started with the kept queue
        assert not [e for e in log if e["state"] == "live" and e["pending"]], log
        assert log[-1]["state"] == "live" and log[-1]["text"] == "Live", log
        assert any(e["state"] in ("unsaved", "syncing") and e["pending"] for e in log), log

        # The assessment's first answer is lost on the way back (stored, but the page sees a
        # dropped connection): the retry is a replay, not a second version.
        dropped: list[str] = []
        replayed: list[str] = []

        async def drop_first_answer(route: Route) -> None:
            response = await route.fetch()
            if not dropped:
                dropped.append(str(response.status))
                await route.abort("connectionreset")
            else:
                if response.headers.get("idempotent-replayed") == "true":
                    replayed.append(str(response.status))
                await route.fulfill(response=response)

        await page.route("**/api/v1/calls/*/assessment", drop_first_answer)
        await fill_form(
            page,
            grade="emergency",
            elements={e: ("high", f"{e} considered: knife, pregnant caller") for e in SERIOUS},
        )
        await page.click("#assessment button[type=submit]")
        await expect(page.locator("#assessment-status")).to_have_attribute("data-version", "1")
        await expect_saved(page)
        assert dropped == ["201"] and replayed == ["201"], (dropped, replayed)
        assert await count(settings, Assessment, Assessment.call_id == call_id) == 1
        filed = await api_get(first.url, token, f"/api/v1/calls/{call_id}/assessment")
        assert [v["version"] for v in filed.json()["history"]] == [1]
        # Each write of the page carried its own key: one stored outcome per write.
        assert await count(settings, IdempotentRequest) >= 4
        assert errors == []
    finally:
        await phone.close()
        if second is not None:
            second.stop()


def field_selector(field: str) -> str:
    simple = {
        "grade": "#grade",
        "grade_reason": "#grade-reason",
        "incident_type": "#incident-type",
        "repeat_victim_check": "#rvc",
        "victim": "#victim",
        "elements": "#elements",
        "advice_given": "#advice",
        "prompts_answered": "#prompts",
    }
    if field in simple:
        return simple[field]
    match = re.fullmatch(r"elements\.([a-z_]+)(?:\.(risk|text))?", field)
    assert match, f"a problem the page cannot place: {field}"
    return f"#el-{match[1]}-{match[2] or 'risk'}"


def problem_fields(error: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(field, reason shown) of each problem the service listed (a schema refusal names
    locations; the page words those itself)."""
    out: list[tuple[str, str | None]] = []
    for detail in error["details"]:
        if "field" in detail:
            out.append((detail["field"], detail["reason"]))
        else:
            loc = [str(p) for p in detail["loc"] if p != "body"]
            out.append((".".join(loc), None))
    return out


async def test_an_untouched_form_is_refused_beside_each_field_then_accepted(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """C (acceptance 3, the screen's half)."""
    await seed_repeat_victim(settings)
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    try:
        page = await login(browser_context, service.url, token, "/handler")
        errors = watch_errors(page)
        call_id = await phone.ring("trust-c", "H1")
        await phone.post("trust-c", "answered", handler_id="H1")
        await expect(page.locator("#alerts li.alert").first).to_be_visible()
        # No grade is preset.
        await expect(page.locator("#grade")).to_have_value("")
        await expect(page.locator("#grade option").first).to_have_text("Choose a grade")

        async with page.expect_response(
            lambda r: r.url.endswith(f"/calls/{call_id}/assessment")
        ) as answer:
            await page.click("#assessment button[type=submit]")
        refused = await answer.value
        assert refused.status == 422
        error = (await refused.json())["error"]
        problems = problem_fields(error)
        assert "grade" in [f for f, _ in problems], problems

        status = page.locator("#assessment-status")
        await expect(status).to_have_attribute("data-kind", "error")
        await expect(status).to_contain_text("Not submitted")
        # Styled as an error, not in success green.
        red, green = await status.evaluate(
            "el => getComputedStyle(el).color.match(/\\d+/g).slice(0, 2).map(Number)"
        )
        assert red > green, (red, green)
        for field, reason in problems:
            control = page.locator(field_selector(field))
            await expect(control).to_have_attribute("aria-invalid", "true")
            described = str(await control.get_attribute("aria-describedby"))
            slot = page.locator(f"#{described.split()[-1]}")
            await expect(slot).to_have_class(re.compile(r"field-error"))
            await expect(slot).to_be_visible()
            if reason is not None:
                # As a sentence beside its field (issue 15): capitalised, in plain words.
                await expect(slot).to_contain_text(reason, ignore_case=True)
            text = await slot.inner_text()
            assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), f"an internal id: {text}"
        # Said once: the status counts the problems (read out: role=alert), the reasons are
        # beside their fields only.
        await expect(status).to_have_attribute("role", "alert")
        await expect(status).to_contain_text(f"{len(problems)} problems to fix")
        said = await status.inner_text()
        assert not any(r and r.lower() in said.lower() for _, r in problems), said
        # Nothing else is marked.
        assert await page.locator("[aria-invalid=true]").count() == len(
            {field_selector(f) for f, _ in problems}
        )
        await page.locator("#grade").scroll_into_view_if_needed()
        await both_sizes(page, "handler-problems")
        assert await count(settings, Assessment) == 0

        # Corrected as a stricter service also wants it: accepted, the marks go.
        await page.select_option("#incident-type", "domestic_abuse")
        await fill_form(
            page,
            grade="emergency",
            elements={e: ("high", f"{e}: partner marked DA high risk") for e in SERIOUS},
            rvc="yes",
            victim=True,
        )
        await page.click("#assessment button[type=submit]")
        await expect(status).to_have_attribute("data-version", "1")
        await expect(status).to_have_attribute("data-kind", "ok")
        await expect(page.locator("[aria-invalid=true]")).to_have_count(0)
        await expect(page.locator(".field-error")).to_have_count(0)
        filed = await api_get(service.url, token, f"/api/v1/calls/{call_id}/assessment")
        body = filed.json()
        assert body["grade"] == "emergency" and body["repeat_victim_check"] == "yes"
        assert body["elements"]["harm"]["risk"] == "high"
        assert errors == []
    finally:
        await phone.close()


async def test_defer_takes_an_ended_call_out_of_wrap_up(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """An ended call stays on screen as "wrap-up: assessment due" until deferred (recorded in
    its draft, with the time), and a reload does not bring it back."""
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    try:
        page = await login(browser_context, service.url, token, "/handler")
        errors = watch_errors(page)
        call_id = await phone.ring("trust-defer", "H1", QUIET_NUMBER)
        await phone.post("trust-defer", "answered", handler_id="H1")
        await phone.post("trust-defer", "ended", cause="normal_clearing")
        card = page.locator("#call-card")
        await expect(card).to_contain_text("wrap-up: assessment due")
        defer = page.locator("#defer")
        await expect(defer).to_have_text("Defer assessment")
        await defer.click()
        await expect(page.locator("#draft-status")).to_contain_text("Assessment deferred at")
        await expect(card).not_to_contain_text("wrap-up")
        await expect_saved(page)
        draft = await api_get(service.url, token, f"/api/v1/calls/{call_id}/draft")
        assert draft.json()["deferred"] is True and draft.json()["deferred_at"], draft.text

        await page.reload()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await expect(card).to_have_attribute("data-state", "none")
        listed = await api_get(service.url, token, "/web/api/handler/calls")
        assert listed.json()["calls"] == []
        assert errors == []
    finally:
        await phone.close()


async def handler_with_sockets(
    context: BrowserContext, base: str, token: str
) -> tuple[Page, list[WebSocketRoute], list[str]]:
    """The handler's page with its sockets in reach (the test can speak as the service:
    `sockets[-1].send(...)`), and its errors watched."""
    sockets: list[WebSocketRoute] = []

    async def socket(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    await context.route_web_socket("**/ws*", socket)
    page = await login(context, base, token, "/handler")
    return page, sockets, watch_errors(page)


async def test_a_failed_re_read_is_read_again_before_live(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """live.js: the re-read after a `resync` fails; the page does not say "Live" on the
    cursor it has, it reconnects and reads again first; nothing said meanwhile is lost."""
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    reads: list[int] = []
    try:
        page, sockets, errors = await handler_with_sockets(browser_context, service.url, token)
        first_call = await phone.ring("trust-resync-1", "H1", QUIET_NUMBER)
        await expect(page.locator("#call-card")).to_have_attribute("data-call-id", str(first_call))

        async def snapshot(route: Route) -> None:
            reads.append(len(reads))
            if len(reads) == 1:
                # A call rings while the re-read is failing: the page must still show it.
                await phone.ring("trust-resync-2", "H1", QUIET_NUMBER)
                await route.fulfill(status=503, json={"error": {"code": "unavailable"}})
            else:
                await route.continue_()

        await page.route("**/web/api/handler/calls", snapshot)
        await page.evaluate(BADGE_RECORDER)
        # The service says it cannot replay: the page must read its state again.
        sockets[-1].send('{"id": null, "type": "resync", "data": {"reason": "cursor_expired"}}')
        await expect(page.locator("#call-list button")).to_have_count(2)
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        assert len(reads) == 2, reads  # the failed read was read again
        log = await page.evaluate("window.__badge")
        states = [e["state"] for e in log]
        assert "reconnecting" in states, states
        failed_at = states.index("reconnecting")
        assert "live" not in states[failed_at : states.index("syncing", failed_at)], states
        assert len(sockets) >= 2  # it reconnected before reading again
        assert errors == []
    finally:
        await phone.close()


async def test_a_re_read_taken_before_a_tick_and_shown_after_it_keeps_the_tick(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """A read of the screen is answered from the state before a tick was stored and reaches
    the page after the tick was confirmed (it left the write queue then): the tick stays on
    screen and in the assessment filed after it (a slow re-read had dropped it)."""
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    taken, release = asyncio.Event(), asyncio.Event()
    preservation = [
        a.id
        for a in load_configured(settings.rules_dir).advice["burglary"]
        if a.kind == "preservation"
    ]
    try:
        page, sockets, errors = await handler_with_sockets(browser_context, service.url, token)
        call_id = await phone.ring("trust-stale-read", "H1", QUIET_NUMBER)
        await phone.post("trust-stale-read", "answered", handler_id="H1")
        await expect(page.locator("#call-card")).to_have_attribute("data-state", "answered")
        await page.select_option("#incident-type", "burglary")
        group = page.locator("#advice fieldset", has_text="Evidence preservation")
        await expect(group.locator("li")).to_have_count(len(preservation))
        first, second = (page.locator(f"input[id='advice-{i}']") for i in preservation[:2])
        await page.locator(f"input[id='advice-{preservation[0]}']").focus()
        await page.keyboard.press("Space")
        await expect(first).to_be_checked()
        await page.wait_for_function("() => window.firstcontactWrites.size === 0")

        async def held(route: Route) -> None:
            response = await route.fetch()  # the state now: the first tick, not the second
            taken.set()
            await release.wait()
            await route.fulfill(response=response)

        await page.route("**/web/api/handler/calls", held)
        sockets[-1].send('{"id": null, "type": "resync", "data": {"reason": "cursor_expired"}}')
        await asyncio.wait_for(taken.wait(), 15)
        await second.focus()
        await page.keyboard.press("Space")
        await expect(second).to_be_checked()
        await page.wait_for_function("() => window.firstcontactWrites.size === 0")  # confirmed
        release.set()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await expect(first).to_be_checked()
        await expect(second).to_be_checked()

        await fill_form(
            page,
            grade="scheduled",
            elements={"investigation": ("low", "Back door forced, nothing touched since")},
            rvc="no",
        )
        await page.click("#assessment button[type=submit]")
        await expect(page.locator("#assessment-status")).to_have_attribute("data-version", "1")
        record = (await api_get(service.url, token, f"/api/v1/calls/{call_id}/assessment")).json()
        given = sorted(i for ids in record["advice_given"].values() for i in ids)
        assert given == sorted(preservation[:2])
        assert errors == []
    finally:
        await phone.close()
