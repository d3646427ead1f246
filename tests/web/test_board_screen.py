"""The supervisor's board and alert feedback in Debian's Chromium (issue 15, acceptance 3-4),
against a real `firstcontact serve` process on this run's backend. Every wait is on a
condition; the escalation threshold is set tiny (ALERT_ESCALATION_SECONDS) and waited on."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import BrowserContext, expect

from app.auth.models import Role
from app.config import Settings
from tests.conftest import MakeStaff
from tests.support.servers import ServiceProcess
from tests.web.qa_support import assert_accessible
from tests.web.support import QUIET_NUMBER, Telephony, login, screenshot_path, seed_repeat_victim

LiveService = Callable[..., ServiceProcess]
# The test command runs it on PostgreSQL + Redis (scripts/test_passes.py).
pytestmark = pytest.mark.production_only


async def test_board_rows_escalation_recent_counters_and_feedback(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
    second_context: BrowserContext,
) -> None:
    seeded = await seed_repeat_victim(settings, officer_safety=True)
    handler_token = await make_staff("H1", Role.handler)
    supervisor_token = await make_staff("S1", Role.supervisor)
    service = live_service(ALERT_ESCALATION_SECONDS="2")
    phone = Telephony(service.url)
    try:
        handler = await login(browser_context, service.url, handler_token, "/handler")
        supervisor = await login(second_context, service.url, supervisor_token, "/supervisor")
        errors: list[str] = []
        supervisor.on("pageerror", lambda exc: errors.append(str(exc)))

        # A call waiting in the queue and one abandoned there.
        await phone.post("b-wait", "offered", caller={"number": QUIET_NUMBER}, called="999")
        await phone.post("b-gone", "offered", caller={"number": "07700 900777"}, called="101")
        await phone.post("b-gone", "ended", cause="abandoned")
        await expect(supervisor.locator("#c-waiting")).to_have_text("1")
        await expect(supervisor.locator("#c-abandoned")).to_have_text("1")

        # The repeat victim rings at H1 and is answered; a second call is answered too.
        call_id = await phone.ring("b-1", "H1", seeded.number)
        await phone.post("b-1", "answered", handler_id="H1")
        row = supervisor.locator(f"#board-rows tr[data-call-id='{call_id}']")
        await expect(row).to_have_attribute("data-flagged", "true")
        # The caller masked to the last 3 digits; the top alert by title; time since ring.
        await expect(row.locator(".caller")).to_have_text(
            "\u2022\u2022\u2022 " + seeded.number[-3:]
        )
        await expect(row.locator(".flags .top-title")).not_to_be_empty()
        await expect(row.locator(".grade")).to_contain_text("(suggested)")
        await expect(row.locator(".duration")).to_have_text(re.compile(r"^\d+:\d\d$"))
        # Past the (2 s) threshold, the unacknowledged HIGH/CRITICAL alert escalates: red, sounded.
        await expect(row).to_have_attribute("data-escalated", "true")
        await expect(row.locator(".timer .timer-late")).to_be_visible()
        assert await supervisor.evaluate("window.firstcontactBoard.sounded") >= 1
        await expect(supervisor.locator("#escalation-announce")).to_contain_text(f"Call {call_id}")

        second = await phone.ring("b-2", "H1", QUIET_NUMBER)
        await phone.post("b-2", "answered", handler_id="H1")
        await expect(supervisor.locator("#handlers li[data-handler=H1]")).to_have_attribute(
            "data-holding", "2"
        )
        await expect(supervisor.locator("#holding-warning")).to_contain_text(
            "H1 holds 2 answered calls"
        )

        # The handler sets the incident type: the board row follows.
        async with httpx.AsyncClient(base_url=service.url) as http:
            put = await http.put(
                f"/api/v1/calls/{call_id}/incident-type",
                json={"incident_type": "burglary"},
                headers={"Authorization": f"Bearer {handler_token}"},
            )
            assert put.status_code == 200, put.text
        await expect(row.locator(".incident")).to_contain_text("Burglary")

        for width, height in ((1366, 768), (1920, 1080)):
            await supervisor.set_viewport_size({"width": width, "height": height})
            suffix = "" if width == 1366 else "-1920"
            await supervisor.screenshot(path=str(screenshot_path(f"board-issue15{suffix}.png")))
        await supervisor.set_viewport_size({"width": 1366, "height": 768})

        # Handler feedback, one click each, on the repeat-victim alert (with a reason), on
        # the call's own page (the second call took the desk's main view).
        await handler.goto(f"{service.url}/handler/calls/{call_id}")
        await expect(handler.locator("#conn")).to_have_attribute("data-state", "live")
        alert = handler.locator("li.alert[data-kind=repeat_victim]").first
        await expect(alert).to_be_visible()
        await alert.locator("input.feedback-reason").fill("found the earlier report")
        await alert.locator("button[data-verdict=helpful]").click()
        await expect(alert.locator(".feedback")).to_have_attribute("data-verdict", "helpful")
        await expect(alert.locator("button[data-verdict=helpful]")).to_have_attribute(
            "aria-pressed", "true"
        )
        others = handler.locator(
            "li.alert:not([data-kind=repeat_victim]) button[data-verdict=not_relevant]"
        )
        rated_other = await others.count() > 0
        if rated_other:
            await others.first.click()
            await expect(
                handler.locator("li.alert:not([data-kind=repeat_victim]) .feedback").first
            ).to_have_attribute("data-verdict", "not_relevant")

        # The handler acknowledges; the supervisor still has their own button, and the timer
        # stops (someone acknowledged).
        alert_id = await alert.get_attribute("data-alert-id")
        await alert.locator("button.ack").click()
        await expect(alert).to_have_attribute("data-acknowledged", "true")

        # The call ends unassessed: it moves to "recently ended" (no assessment).
        await phone.post("b-1", "ended", cause="normal_clearing")
        recent = supervisor.locator(f"#recent-rows tr[data-call-id='{call_id}']")
        await expect(recent.locator(".needs")).to_contain_text("no assessment")
        await expect(row).to_have_count(0)

        # The detail view: evidence, cues, assessment, everyone's acknowledgements.
        await recent.locator("th a").click()
        await expect(supervisor.locator("#conn")).to_have_attribute("data-state", "live")
        detail_alert = supervisor.locator(f"li.alert[data-alert-id='{alert_id}']")
        await expect(detail_alert).to_have_attribute("data-handler-ack", "true")
        await expect(detail_alert).to_have_attribute("data-supervisor-ack", "false")
        await expect(detail_alert.locator(".evidence-box")).to_contain_text("Evidence")
        await expect(supervisor.locator("#detail-assessment")).to_contain_text("Not assessed yet")
        await expect(supervisor.locator("#detail-platform")).to_have_text("b-1")
        await detail_alert.locator("button.ack").click()
        await expect(detail_alert).to_have_attribute("data-supervisor-ack", "true")
        await expect(detail_alert.locator(".ack-status")).to_contain_text("(handler)")
        await expect(detail_alert.locator(".ack-status")).to_contain_text("(supervisor)")
        for width, height in ((1366, 768), (1920, 1080)):
            await supervisor.set_viewport_size({"width": width, "height": height})
            suffix = "" if width == 1366 else "-1920"
            await supervisor.screenshot(
                path=str(screenshot_path(f"board-detail-issue15{suffix}.png"))
            )
        await assert_accessible(supervisor, "supervisor detail")
        await supervisor.goto(service.url + "/supervisor")
        await expect(supervisor.locator("#conn")).to_have_attribute("data-state", "live")
        await assert_accessible(supervisor, "supervisor board")
        # The clock is injectable: an hour later the ended call leaves "recently ended" and the
        # abandoned call leaves the counter (no waiting an hour).
        recent = supervisor.locator(f"#recent-rows tr[data-call-id='{call_id}']")
        await expect(recent).to_have_count(1)
        await expect(supervisor.locator("#c-abandoned")).to_have_text("1")
        await supervisor.evaluate(
            "window.firstcontactBoard.clock.now = () => Date.now() + 61 * 60 * 1000"
        )
        await expect(recent).to_have_count(0)
        await expect(supervisor.locator("#c-abandoned")).to_have_text("0")
        await expect(supervisor.locator("#recent-empty")).to_be_visible()

        # Per-rule precision reflects the clicks.
        async with httpx.AsyncClient(base_url=service.url) as http:
            auth = {"Authorization": f"Bearer {supervisor_token}"}
            body = (await http.get("/api/v1/alerts/precision", headers=auth)).json()
            exported = (await http.get("/api/v1/alerts/precision.csv", headers=auth)).text
        rules = {r["rule"]: r for r in body["rules"]}
        repeat = next(r for name, r in rules.items() if name.startswith("repeat_victim"))
        assert (repeat["helpful"], repeat["rated"], repeat["precision"]) == (1, 1, 1.0)
        rated = sum(r["rated"] for r in body["rules"])
        assert rated == (2 if rated_other else 1)
        table = {row["rule"]: row for row in csv.DictReader(io.StringIO(exported))}
        assert table[repeat["rule"]]["precision"] == "1.0000"
        assert second and errors == []
    finally:
        await phone.close()
