"""Find and link on the handler's screen (issue 13 point 3), in Debian's Chromium against a
real `firstcontact serve`: a withheld call rings, the handler searches by name and date of
birth, links the victim, and the victim's alerts appear on the screen. axe-core finds no
violation with the results shown; screenshots at 1366x768 and 1920x1080. Every wait is on a
condition (Playwright's `expect`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.async_api import BrowserContext, expect

from app.auth.models import Role
from app.config import Settings
from tests.conftest import MakeStaff
from tests.history.identify_support import seed_store
from tests.support.servers import ServiceProcess
from tests.web.axe import assert_accessible
from tests.web.support import Telephony, login
from tests.web.test_handler_work import both_sizes, watch_errors

LiveService = Callable[..., ServiceProcess]
# The test command runs it on PostgreSQL + Redis (scripts/test_passes.py).
pytestmark = pytest.mark.production_only


async def test_the_handler_finds_and_links_the_victim_of_a_withheld_call(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    await seed_store(settings)
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    try:
        page = await login(browser_context, service.url, token, "/handler")
        errors = watch_errors(page)
        search = page.locator("#identify-q")
        await expect(search).to_be_disabled()  # no call at the desk yet

        call_id = await phone.ring("find-1", "H1", number=None)
        await phone.post("find-1", "answered", handler_id="H1")
        card = page.locator("#call-card")
        await expect(card).to_have_attribute("data-call-id", str(call_id))
        await expect(page.locator("#alerts li.alert[data-kind=withheld_number]")).to_be_visible()
        await expect(search).to_be_enabled()

        await search.fill("Jo Demo 1985-03-02")
        await page.click("#identify button[type=submit]")
        results = page.locator("#identify-results li.identify-result")
        await expect(results.first).to_contain_text("Jo Demo, born")
        await expect(results.first).to_contain_text("12 Acacia Avenue")
        await expect(page.locator("#identify-status")).to_have_text("Found 1 person, 0 addresses")
        await assert_accessible(page, "handler with search results")
        await both_sizes(page, "handler-identify")

        await results.first.get_by_role("button", name="victim").click()
        await expect(results.first.locator(".identify-linked")).to_have_text("Linked as victim")
        for kind in ("repeat_victim", "household_risk"):
            await expect(page.locator(f"#alerts li.alert[data-kind={kind}]")).to_be_visible()
        # No internal id on what the handler reads.
        text = await page.locator("#identify-results").inner_text()
        assert "P-JO" not in text and "H-12" not in text
        assert errors == []
    finally:
        await phone.close()
