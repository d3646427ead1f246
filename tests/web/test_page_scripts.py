"""The pages' ES modules load and run clean (issue 17, point 4: the shared browser code in
one module, the big scripts split): the handler's screen with a ringing then answered call
and its alerts, the supervisor's board and a call's detail (acknowledging an alert there),
and the QA screen with a call open, at 1366x768 and 1920x1080. A module that fails to load,
an import that names nothing, a CSP refusal or a script error fails the test; a screenshot
of each state goes to test-artifacts/screenshots/ (page-scripts-*.png), and axe-core finds no
violation in any of them (login, login refused, handler idle / ringing / answered / wrap-up,
supervisor board and detail, the error page, QA).

Every wait is on a condition (Playwright's `expect`), never a fixed sleep.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.async_api import Browser, Page, expect

from app.auth.models import Role
from app.config import Settings
from tests.conftest import MakeStaff
from tests.support.servers import ServiceProcess
from tests.web.axe import assert_accessible
from tests.web.qa_support import open_page, seed_qa_world
from tests.web.support import REPEAT_VICTIM, Telephony, login, screenshot_path
from tests.web.test_screens import watch_errors

LiveService = Callable[..., ServiceProcess]


async def watch_from_load(page: Page) -> list[str]:
    """The page's errors from its first line of script on: watched, then loaded again."""
    errors = watch_errors(page)
    await page.reload()
    return errors


async def _shot(page: Page, name: str, size: str) -> None:
    """A screenshot of the state, and axe-core over it (0 violations)."""
    await assert_accessible(page, f"{name} at {size}")
    # The running clocks (waiting, on call, board durations) are masked: they are the only
    # part of a screen that differs from one run to the next.
    clocks = page.locator("#call-wait, #call-duration, #board-rows .duration")
    await page.screenshot(
        path=str(screenshot_path(f"page-scripts-{name}-{size}.png")), mask=[clocks]
    )


@pytest.mark.parametrize("viewport", [(1366, 768), (1920, 1080)], ids=["1366x768", "1920x1080"])
async def test_handler_supervisor_and_qa_pages_run_without_errors(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser: Browser,
    viewport: tuple[int, int],
) -> None:
    width, height = viewport
    size = f"{width}x{height}"
    service = live_service()
    world = await seed_qa_world(settings, service.url, make_staff)
    handler_token = await make_staff("H9", Role.handler, name="Alex Handler")
    phone = Telephony(service.url)
    contexts = []
    try:
        for _ in range(3):
            context = await browser.new_context(viewport={"width": width, "height": height})
            context.set_default_timeout(10_000)
            contexts.append(context)
        handler_ctx, supervisor_ctx, qa_ctx = contexts

        sign_in = await handler_ctx.new_page()
        await sign_in.goto(service.url + "/login")
        await _shot(sign_in, "login", size)
        await sign_in.fill("#token", "not-a-staff-token")
        await sign_in.click("form[action='/login'] button[type=submit]")
        await expect(sign_in.locator(".form-error")).to_be_visible()
        await _shot(sign_in, "login-refused", size)
        await sign_in.close()

        handler = await login(handler_ctx, service.url, handler_token, "/handler")
        handler_errors = await watch_from_load(handler)
        await expect(handler.locator("#call-card")).to_have_attribute("data-state", "none")
        await _shot(handler, "handler-idle", size)

        await phone.ring("pages-1", "H9", REPEAT_VICTIM)
        await expect(handler.locator("#call-card")).to_have_attribute("data-state", "ringing")
        await expect(handler.locator("#alerts li.alert[data-kind=repeat_victim]")).to_be_visible()
        await expect(handler.locator("#household .household")).to_be_visible()
        await _shot(handler, "handler-ringing", size)

        await phone.post("pages-1", "answered", handler_id="H9")
        await expect(handler.locator("#call-card")).to_have_attribute("data-state", "answered")
        await handler.select_option("#incident-type", "burglary")
        await expect(handler.locator("#advice li").first).to_be_visible()
        await handler.locator("#narrative").fill("Back door forced overnight. He has a knife.")
        await expect(handler.locator("#cues li").first).to_be_visible()
        await expect(handler.locator("#conn")).to_have_attribute("data-state", "live")
        await _shot(handler, "handler-answered", size)

        supervisor = await login(supervisor_ctx, service.url, world.tokens["S1"], "/supervisor")
        supervisor_errors = await watch_from_load(supervisor)
        row = supervisor.locator("#board-rows tr[data-flagged=true]")
        await expect(row).to_have_count(1)
        await expect(supervisor.locator("#handlers li[data-handler=H9]")).to_contain_text("On call")
        await _shot(supervisor, "supervisor-board", size)

        await row.locator("th a").click()
        await expect(supervisor).to_have_url(re.compile(r"/supervisor/calls/\d+$"))
        await expect(supervisor.locator("#conn")).to_have_attribute("data-state", "live")
        first = supervisor.locator("#detail-alerts li.alert").first
        await expect(first).to_contain_text("Not acknowledged")
        await _shot(supervisor, "supervisor-detail", size)
        # Acknowledged on the supervisor's page: both pages show who did it.
        await first.locator("button.ack").click()
        await expect(first).to_have_attribute("data-acknowledged", "true")
        await expect(first.locator(".ack-status")).to_contain_text("Acknowledged by S1")
        alert_id = await first.get_attribute("data-alert-id")
        on_handler = handler.locator(f"#alerts li.alert[data-alert-id='{alert_id}']")
        # Issue 15: the supervisor's acknowledgement is shown, never taken for the handler's.
        await expect(on_handler).to_have_attribute("data-supervisor-ack", "true")
        await expect(on_handler).to_have_attribute("data-acknowledged", "false")
        await expect(on_handler.locator(".ack-status")).to_contain_text("Acknowledged by S1")

        # The call ends unassessed: the handler's screen keeps it for wrap-up.
        await phone.post("pages-1", "ended", cause="normal_clearing")
        await expect(handler.locator("#call-card")).to_have_attribute("data-state", "ended")
        await expect(handler.locator("#call-card")).to_contain_text("wrap-up: assessment due")
        await _shot(handler, "handler-wrap-up", size)
        # A page the handler may not open: the error page.
        refused = await handler_ctx.new_page()
        await refused.goto(service.url + "/supervisor")
        await expect(refused.locator("#error-title")).to_be_visible()
        await _shot(refused, "error", size)

        path = f"/qa?call={world.rich_call}"
        qa = await open_page(qa_ctx, service.url, world.tokens["Q1"], path)
        qa_errors = await watch_from_load(qa)
        await expect(qa.locator("#qa")).to_have_attribute("data-state", "ready")
        await expect(qa.locator("#record-h")).to_have_text(f"Call record: call {world.rich_call}")
        await expect(qa.locator("#record .record-part").first).to_be_visible()
        await _shot(qa, "qa", size)

        assert handler_errors == [], handler_errors
        assert supervisor_errors == [], supervisor_errors
        assert qa_errors == [], qa_errors
    finally:
        await phone.close()
        for context in contexts:
            await context.close()
