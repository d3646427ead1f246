"""The handler's screen and the supervisor's board in Debian's Chromium, against a real
`firstcontact serve` process on this run's backend (issue 7, acceptance 1-7).

Every wait is on a condition (Playwright's `expect`), never a fixed sleep.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, WebSocketRoute, expect

from app.auth.models import Role
from app.config import Settings
from app.rules.loader import load_configured
from tests.conftest import MakeStaff
from tests.support.servers import ServiceProcess
from tests.web.axe import assert_accessible
from tests.web.support import (
    QUIET_NUMBER,
    Telephony,
    login,
    screenshot_path,
    seed_repeat_victim,
)

LiveService = Callable[..., ServiceProcess]
_DURATION = re.compile(r"^\d+:\d\d$")
_SEVERITY_WORD = re.compile(r"(Critical|High|Medium|Low|Info)", re.I)


def watch_errors(page: Page) -> list[str]:
    """Script errors of a page: a test fails if its page threw or logged an error."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors too: a Content-Security-Policy violation or a failed request shows there.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


async def test_ring_shows_alert_card_with_evidence(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    """1. A call from a repeat victim rings at the handler: the alert card with its evidence
    (prior contacts with dates and types) is on the page. Reports POST -> visible time.
    Issue 13: the officer-safety alert first under its own heading; evidence grouped in plain
    words; the partner named with relationship and age."""
    seeded = await seed_repeat_victim(settings, officer_safety=True)
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    try:
        page = await login(browser_context, service.url, token, "/handler")
        errors = watch_errors(page)
        await expect(page.locator("#call-card")).to_have_attribute("data-state", "none")

        await phone.post(
            "web-1", "offered", caller={"number": seeded.number}, called="999", queue="emergency"
        )
        started = time.perf_counter()
        await phone.post(
            "web-1",
            "ringing",
            caller={"number": seeded.number},
            called="999",
            queue="emergency",
            handler_id="H1",
        )
        alert = page.locator("#alerts li.alert[data-kind=repeat_victim]")
        # wait_for polls inside the page on each animation frame (expect() backs off to
        # 100 ms+ between tries): the figure is as fine as the page's own frames.
        await alert.wait_for(state="visible")
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Reported, not asserted (bench/screen measures it properly): shown even when passing.
        record_property("ringing_post_to_alert_visible_ms", round(elapsed_ms, 1))
        with capsys.disabled():
            print(f"\n[acceptance 1] ringing POST sent -> alert card visible: {elapsed_ms:.1f} ms")

        card = page.locator("#call-card")
        await expect(card).to_have_attribute("data-state", "ringing")
        await expect(page.locator("#caller-number")).to_have_text(seeded.number)
        await expect(page.locator("#call-line")).to_have_text("999")
        await expect(page.locator("#call-queue")).to_have_text("emergency")
        await expect(page.locator("#call-wait")).to_have_text(_DURATION)

        # Severity in words and a symbol, not by colour alone.
        await expect(alert.locator(".sev")).to_contain_text(_SEVERITY_WORD)
        await expect(alert.locator(".reasons li").first).to_be_visible()
        # Evidence in plain words, grouped by incident type and outcome, no ids.
        summary = alert.locator(".evidence-summary li")
        await expect(summary.first).to_contain_text("3 victim contacts in 365 days")
        for line in await alert.locator(".evidence-box, .reasons").all_inner_texts():
            assert not re.search(r"\bW[CPHM]\d", line), line
        # Officer safety first, under its own heading, never among the other alerts.
        officer = page.locator("#officer-safety")
        await expect(officer.locator("h2")).to_have_text(re.compile("Officer safety"))
        await expect(officer.locator("li.alert[data-kind=officer_safety]")).to_contain_text(
            "weapons"
        )
        await expect(page.locator("#alerts li.alert[data-kind=officer_safety]")).to_have_count(0)
        risk = page.locator("#alerts li.alert[data-kind=household_risk]")
        await expect(risk.locator(".reasons")).to_contain_text(
            re.compile(r"Drew Webtest \(partner, \d+\) has an active domestic abuse high-risk")
        )
        # Each prior contact with its date and type, behind a disclosure inside the folded
        # evidence (issue 15: the alerts of a ringing call fit on the screen together).
        await alert.locator(".evidence-details > summary").click()
        await alert.locator(".evidence-records summary").click()
        evidence = alert.locator(".evidence li")
        await expect(evidence).to_have_count(len(seeded.contact_ids))
        texts = await evidence.all_inner_texts()
        kinds = ("Burglary", "Assault", "Harassment")
        for when, kind in zip(seeded.contact_dates, kinds, strict=True):
            day = f"{when.day} {when.strftime('%b')} {when.year}"
            assert any(day in t and kind in t for t in texts), (day, kind, texts)

        # Household members and their markers.
        household = page.locator("#household")
        await expect(household).to_contain_text("9 Test Terrace")
        await expect(household).to_contain_text(re.compile(r"Drew Webtest \(partner, \d+\)"))
        assert not re.search(r"\bW[CPHM]\d", await household.inner_text())
        await expect(household.locator(".marker")).to_contain_text(
            [re.compile(r"domestic abuse high-risk \(active\)", re.I)]
        )
        # Most severe first.
        ranks = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
        shown = [
            ranks[str(await item.get_attribute("data-severity"))]
            for item in await page.locator("#alerts li.alert").all()
        ]
        assert shown == sorted(shown, reverse=True) and len(shown) >= 2, shown
        # The alerts region is announced to screen readers as alerts arrive.
        await expect(page.locator("#alerts")).to_have_attribute("aria-live", "assertive")
        await assert_accessible(page, "handler ringing: officer safety, evidence open")
        # A withheld number shows as such.
        await phone.ring("web-1b", "H1", None)
        await page.locator("#call-list button", has_text="Withheld").click()
        await expect(page.locator("#caller-number")).to_have_text("Withheld")
        await assert_accessible(page, "handler with a second call ringing")
        assert errors == []
    finally:
        await phone.close()


async def test_acknowledgement_reaches_supervisor_without_reload(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
    second_context: BrowserContext,
) -> None:
    """2. The handler acknowledges the alert (from the keyboard); the supervisor's page, open
    in a second browser context, shows it acknowledged without a reload."""
    await seed_repeat_victim(settings, officer_safety=True)
    handler_token = await make_staff("H1", Role.handler)
    supervisor_token = await make_staff("S1", Role.supervisor)
    service = live_service()
    phone = Telephony(service.url)
    try:
        handler = await login(browser_context, service.url, handler_token, "/handler")
        call_id = await phone.ring("web-2", "H1")
        alert = handler.locator("#alerts li.alert[data-kind=repeat_victim]")
        await expect(alert).to_be_visible()

        supervisor = await login(
            second_context, service.url, supervisor_token, f"/supervisor/calls/{call_id}"
        )
        errors = watch_errors(supervisor)
        await supervisor.evaluate("window.__notReloaded = true")
        row = supervisor.locator(f"#board-rows tr[data-call-id='{call_id}']")
        await expect(row).to_have_attribute("data-flagged", "true")
        await expect(row.locator(".flags")).to_contain_text("not acknowledged")
        alert_id = await alert.get_attribute("data-alert-id")
        detail = supervisor.locator(f"#detail-alerts li.alert[data-alert-id='{alert_id}']")
        await expect(detail).to_have_attribute("data-acknowledged", "false")
        # Officer safety first on the supervisor's screen too, under its own heading.
        officer = supervisor.locator("#detail-officer-safety")
        await expect(officer.locator("h3")).to_have_text(re.compile("Officer safety"))
        await expect(officer.locator("li.alert")).to_have_count(1)
        await expect(officer.locator("li.alert")).to_have_attribute(
            "data-category", "officer_safety"
        )

        # Keyboard only: focus the button and press Enter.
        await alert.locator("button.ack").focus()
        await handler.keyboard.press("Enter")
        await expect(alert).to_have_attribute("data-acknowledged", "true")
        await expect(alert.locator(".ack-status")).to_contain_text("Acknowledged by H1")

        # Issue 15: the handler's acknowledgement is shown as theirs; the supervisor's own
        # button stays (theirs is a separate record).
        await expect(detail).to_have_attribute("data-handler-ack", "true")
        await expect(detail).to_have_attribute("data-acknowledged", "false")
        await expect(detail.locator(".ack-status")).to_contain_text("Acknowledged by H1 (handler)")
        await expect(detail.locator("button.ack")).to_be_visible()
        # The call's other alerts too: then the board says all are acknowledged.
        pending = handler.locator(".alerts-panel li.alert[data-acknowledged=false] button.ack")
        for left in range(await pending.count(), 0, -1):
            await pending.first.focus()
            await handler.keyboard.press("Enter")
            await expect(pending).to_have_count(left - 1)
        await expect(row.locator(".flags")).to_contain_text("all acknowledged")
        await expect(supervisor.locator("#handlers li[data-handler=H1]")).to_contain_text("Ringing")
        await assert_accessible(handler, "handler with every alert acknowledged")
        await assert_accessible(supervisor, "supervisor detail with every alert acknowledged")
        assert await supervisor.evaluate("window.__notReloaded === true")
        assert errors == []
    finally:
        await phone.close()


async def test_burglary_advice_ticked_items_are_the_assessment_record(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """3. Incident type burglary: the advice panel shows burglary's preservation advice; two
    items ticked and the assessment submitted: the record holds exactly those two."""
    await seed_repeat_victim(settings)
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    expected = [a for a in load_configured(settings.rules_dir).advice["burglary"]]
    preservation = [a.id for a in expected if a.kind == "preservation"]
    assert len(preservation) >= 2
    try:
        page = await login(browser_context, service.url, token, "/handler")
        errors = watch_errors(page)
        call_id = await phone.ring("web-3", "H1")
        await phone.post("web-3", "answered", handler_id="H1")
        await expect(page.locator("#call-card")).to_have_attribute("data-state", "answered")

        await page.select_option("#incident-type", "burglary")
        advice = page.locator("#advice")
        for advice_id in preservation:
            await expect(advice.locator(f"li[data-advice-id='{advice_id}']")).to_be_visible()
        group = advice.locator("fieldset", has_text="Evidence preservation")
        await expect(group.locator("li")).to_have_count(len(preservation))

        chosen = preservation[:2]
        for advice_id in chosen:  # ticked from the keyboard
            await page.locator(f"input[id='advice-{advice_id}']").focus()
            await page.keyboard.press("Space")
            await expect(page.locator(f"input[id='advice-{advice_id}']")).to_be_checked()

        await page.select_option("#grade", "priority")
        # The call carries high alerts (repeat victim, household risk): threat, harm, risk
        # and vulnerability must be assessed for the record to be accepted.
        for element in ("threat", "harm", "risk", "vulnerability"):
            await page.select_option(f"#el-{element}-risk", "medium")
            await page.fill(f"#el-{element}-text", f"{element} discussed with the caller")
        await page.select_option("#rvc", "yes")
        await page.check("#victim")
        await page.click("#assessment button[type=submit]")
        status = page.locator("#assessment-status")
        await expect(status).to_have_attribute("data-version", "1")

        async with httpx.AsyncClient(base_url=service.url) as http:
            response = await http.get(
                f"/api/v1/calls/{call_id}/assessment",
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 200, response.text
        record = response.json()
        given = [i for ids in record["advice_given"].values() for i in ids]
        assert sorted(given) == sorted(chosen)
        assert record["incident_type"] == "burglary"
        assert errors == []
    finally:
        await phone.close()


async def test_narrative_cue_appears_and_negated_phrase_does_not(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """4. Typing a narrative with a hidden cue shows the cue; a negated phrase shows none."""
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    try:
        page = await login(browser_context, service.url, token, "/handler")
        errors = watch_errors(page)
        await phone.ring("web-4", "H1", QUIET_NUMBER)
        await expect(page.locator("#narrative")).to_be_enabled()

        box = page.locator("#narrative")
        async with page.expect_response(lambda r: r.url.endswith("/narrative")) as first:
            await box.press_sequentially("Caller says she is not pregnant. ", delay=5)
        assert (await first.value).status == 200
        await expect(page.locator("#cues-empty")).to_be_visible()
        await expect(page.locator("#cues li")).to_have_count(0)

        await box.press_sequentially("Her kids are hiding upstairs.", delay=5)
        cue = page.locator("#cues li[data-strand=children_present]")
        await expect(cue).to_be_visible()
        await expect(cue).to_contain_text("kids")
        # The negated phrase is in the same narrative and still produced nothing.
        await expect(page.locator("#cues li")).to_have_count(1)
        await expect(page.locator("#cues li[data-strand=pregnancy]")).to_have_count(0)
        assert errors == []

        # A reload brings back the narrative and its cues (typing on must not replace the
        # stored text with a fragment).
        await page.reload()
        await expect(page.locator("#narrative")).to_have_value(
            "Caller says she is not pregnant. Her kids are hiding upstairs."
        )
        await expect(page.locator("#cues li[data-strand=children_present]")).to_be_visible()
    finally:
        await phone.close()


async def test_restart_shows_reconnecting_then_catches_up_without_reload(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    """5. The worker restarts mid-call: the page shows "reconnecting", then catches up on
    what it missed (resuming from its cursor) without a reload."""
    await seed_repeat_victim(settings)
    token = await make_staff("H1", Role.handler)
    supervisor_token = await make_staff("S1", Role.supervisor)
    first = live_service()

    # A gate on the page's socket: while closed, every (re)connection is refused, so the test
    # decides when the page may catch up (after events it must have missed).
    gate = {"open": True}
    urls: list[str] = []

    async def route(ws: WebSocketRoute) -> None:
        urls.append(ws.url)
        if gate["open"]:
            ws.connect_to_server()
        else:
            await ws.close(code=1013, reason="test gate closed")

    await browser_context.route_web_socket("**/ws*", route)
    phone = Telephony(first.url)
    second: ServiceProcess | None = None
    try:
        page = await login(browser_context, first.url, token, "/handler")
        errors = watch_errors(page)
        call_id = await phone.ring("web-5", "H1")
        alert = page.locator("#alerts li.alert[data-kind=repeat_victim]")
        await expect(alert).to_have_attribute("data-acknowledged", "false")
        await page.evaluate("window.__notReloaded = true")

        gate["open"] = False
        first.stop()  # the worker goes away mid-call
        await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        await expect(page.locator("#conn")).to_contain_text("Reconnecting")
        await expect(page.locator("body")).to_have_attribute("data-conn", "reconnecting")
        await page.screenshot(path=str(screenshot_path("handler-reconnecting.png")))
        await assert_accessible(page, "handler reconnecting")

        second = ServiceProcess(env=first.env, port=first.port).start()
        # What happens while the page is away: the call is answered, the alert acknowledged
        # by a supervisor.
        await phone.post("web-5", "answered", handler_id="H1")
        async with httpx.AsyncClient(base_url=second.url) as http:
            alert_id = await alert.get_attribute("data-alert-id")
            ack = await http.post(
                f"/api/v1/alerts/{alert_id}/ack",
                headers={"Authorization": f"Bearer {supervisor_token}"},
            )
            assert ack.status_code == 200, ack.text
        # Still refused: the page must not look live while it is not.
        await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        await expect(page.locator("#call-card")).to_have_attribute("data-state", "ringing")

        resumed_from = len(urls)
        gate["open"] = True
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
        await expect(page.locator("#call-card")).to_have_attribute("data-state", "answered")
        await expect(alert).to_have_attribute("data-supervisor-ack", "true")
        await expect(alert.locator(".ack-status")).to_contain_text("Acknowledged by S1")
        assert await page.evaluate("window.__notReloaded === true")
        # It resumed from its cursor rather than starting afresh.
        assert any("after=" in url for url in urls[resumed_from:]), urls
        assert call_id > 0 and errors == []
    finally:
        await phone.close()
        if second is not None:
            second.stop()


async def test_other_handlers_call_is_forbidden_and_logged_out_users_go_to_login(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
    second_context: BrowserContext,
) -> None:
    """6. A handler cannot open another handler's call page (403 page); logged-out users
    are sent to the login page."""
    own_token = await make_staff("H1", Role.handler)
    other_token = await make_staff("H2", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    try:
        call_id = await phone.ring("web-6", "H1", QUIET_NUMBER)

        for path in ("/handler", "/supervisor", f"/handler/calls/{call_id}"):
            anonymous = await second_context.new_page()
            await anonymous.goto(service.url + path)
            await expect(anonymous).to_have_url(f"{service.url}/login?next={path}")
            await expect(anonymous.locator("#token")).to_be_visible()
            await anonymous.close()

        other = await login(browser_context, service.url, other_token, "/handler")
        response = await other.goto(f"{service.url}/handler/calls/{call_id}")
        assert response is not None and response.status == 403
        await expect(other.locator("h1")).to_have_text("403 Forbidden")
        await expect(other.locator("body")).to_contain_text("another handler")
        assert (response.headers.get("cache-control") or "") == "no-store"
        # Nor through the page's data endpoint.
        data = await other.evaluate(
            "async (id) => (await fetch(`/web/api/calls/${id}/screen`)).status", call_id
        )
        assert data == 403

        own = await login(second_context, service.url, own_token, f"/handler/calls/{call_id}")
        await expect(own.locator("#call-card")).to_have_attribute("data-call-id", str(call_id))
        # Logging out ends the session: the page sends you back to the login.
        await own.click("form[action='/logout'] button")
        await expect(own).to_have_url(service.url + "/login")
        await own.goto(service.url + "/handler")
        await expect(own).to_have_url(f"{service.url}/login?next=/handler")
    finally:
        await phone.close()


async def test_screenshots_of_both_pages_at_1366x768(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
    second_context: BrowserContext,
) -> None:
    """7. Screenshots of the handler's screen and the supervisor's board at 1366x768, in
    test-artifacts/screenshots/, with a realistic call on them; nothing overflows sideways."""
    await seed_repeat_victim(settings)
    handler_token = await make_staff("H1", Role.handler, name="Pat Handler")
    await make_staff("H2", Role.handler, name="Lee Handler")
    supervisor_token = await make_staff("S1", Role.supervisor, name="Sam Supervisor")
    service = live_service()
    phone = Telephony(service.url)
    try:
        handler = await login(browser_context, service.url, handler_token, "/handler")
        # The unflagged call comes first: the board must still list the flagged one first.
        await phone.ring("web-7b", "H2", QUIET_NUMBER, called="101", queue="non-emergency")
        await phone.ring("web-7", "H1")
        await phone.post("web-7", "answered", handler_id="H1")
        await expect(handler.locator("#alerts li.alert").first).to_be_visible()
        await handler.select_option("#incident-type", "burglary")
        await expect(handler.locator("#advice li").first).to_be_visible()
        await handler.locator("#narrative").press_sequentially(
            "Back door forced overnight. Her kids were asleep upstairs.", delay=2
        )
        await expect(handler.locator("#cues li").first).to_be_visible()

        supervisor = await login(second_context, service.url, supervisor_token, "/supervisor")
        await expect(supervisor.locator("#board-rows tr")).to_have_count(2)
        await expect(supervisor.locator("#board-rows tr").first).to_have_attribute(
            "data-flagged", "true"
        )
        # Filters: flagged only, by handler, by line.
        await supervisor.check("#f-flagged")
        await expect(supervisor.locator("#board-rows tr")).to_have_count(1)
        await supervisor.uncheck("#f-flagged")
        await supervisor.select_option("#f-line", "101")
        await expect(supervisor.locator("#board-rows tr")).to_have_count(1)
        await expect(supervisor.locator("#board-rows tr .handler")).to_have_text("H2")
        await supervisor.select_option("#f-line", "")
        await supervisor.select_option("#f-handler", "H1")
        await expect(supervisor.locator("#board-rows tr .line")).to_have_text("999")
        await supervisor.select_option("#f-handler", "")
        await expect(supervisor.locator("#board-rows tr")).to_have_count(2)

        board_path = screenshot_path("supervisor-board.png")
        await supervisor.screenshot(path=str(board_path))
        # Click through to the flagged call's detail: its alerts and acknowledgements.
        await supervisor.locator("#board-rows tr[data-flagged=true] th a").click()
        await expect(supervisor).to_have_url(re.compile(r"/supervisor/calls/\d+$"))
        await expect(supervisor.locator("#conn")).to_have_attribute("data-state", "live")
        await expect(supervisor.locator("#detail-alerts li.alert").first).to_contain_text(
            "Not acknowledged"
        )
        await expect(supervisor.locator("#board-rows tr.selected")).to_have_count(1)

        shots: dict[str, Any] = {"supervisor-board.png": board_path.stat().st_size}
        for name, page in (("handler.png", handler), ("supervisor.png", supervisor)):
            assert page.viewport_size == {"width": 1366, "height": 768}
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1366, f"{name}: content {width}px wide overflows 1366px"
            path = screenshot_path(name)
            await page.screenshot(path=str(path))
            await assert_accessible(page, name)
            shots[name] = path.stat().st_size
        assert all(size > 10_000 for size in shots.values()), shots
    finally:
        await phone.close()
