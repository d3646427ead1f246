"""The qualifier control on the handler's screen (issue 13 point 2), in Debian's Chromium
against a real `firstcontact serve`: ticking domestic abuse on a rape call saves through
PUT /api/v1/calls/{id}/qualifiers and the screen shows the DA prompts beside the
sexual-offence preservation advice; hate crime shows its strands. axe-core finds no
violation; screenshots at 1366x768 and 1920x1080."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.async_api import BrowserContext, expect

from app.auth.models import Role
from app.config import Settings
from tests.conftest import MakeStaff
from tests.support.servers import ServiceProcess
from tests.web.axe import assert_accessible
from tests.web.support import QUIET_NUMBER, Telephony, login
from tests.web.test_handler_work import both_sizes, expect_saved, watch_errors

LiveService = Callable[..., ServiceProcess]


async def test_ticking_domestic_abuse_merges_its_prompts_with_the_incident_types(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
) -> None:
    token = await make_staff("H1", Role.handler)
    service = live_service()
    phone = Telephony(service.url)
    try:
        page = await login(browser_context, service.url, token, "/handler")
        errors = watch_errors(page)
        card = page.locator("#call-card")
        call_id = await phone.ring("qual-a", "H1", QUIET_NUMBER)
        await phone.post("qual-a", "answered", handler_id="H1")
        await expect(card).to_have_attribute("data-state", "answered")

        await page.select_option("#incident-type", "sexual_offence")
        await expect(page.locator('[data-advice-id="sexual.avoid_washing"]')).to_be_visible()
        await expect(page.locator("#prompt-da\\.suspect_present")).to_have_count(0)

        await page.check('#qualifiers input[data-qualifier="domestic_abuse"]')
        await expect(page.locator("#prompt-da\\.suspect_present")).to_be_visible()
        # Issue 14: the must-ask prompts are shown; the rest are folded behind "More prompts"
        # and stay tickable once opened.
        folded = page.locator("#prompt-da\\.substances")
        await expect(folded).to_be_hidden()
        await expect(page.locator("#prompts input[type=checkbox]")).to_have_count(10)
        await page.click("#prompts-more summary")
        await expect(folded).to_be_visible()
        await page.click("#prompts-more summary")
        await expect(folded).to_be_hidden()
        await expect(page.locator('[data-advice-id="sexual.avoid_washing"]')).to_be_visible()
        await expect(page.locator('[data-advice-id="da.keep_messages"]')).to_be_visible()
        await expect_saved(page)

        # Hate crime shows its strands; ticking one saves it with the qualifier.
        strands = page.locator('#qualifiers [data-strands-of="hate_crime"]')
        await expect(strands).to_be_hidden()
        await page.check('#qualifiers input[data-qualifier="hate_crime"]')
        await expect(strands).to_be_visible()
        await page.check('#qualifiers input[data-strand-of="hate_crime"][value="religion"]')
        await expect_saved(page)
        await expect(page.locator("#prompt-hate\\.strand")).to_be_visible()

        async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
            read = await http.get(
                f"/api/v1/calls/{call_id}", headers={"Authorization": f"Bearer {token}"}
            )
        assert read.status_code == 200, read.text
        assert read.json()["qualifiers"] == ["domestic_abuse", "hate_crime"]
        assert read.json()["qualifier_strands"] == {"hate_crime": ["religion"]}

        # A reload reads them back from the service.
        await page.reload()
        await expect(
            page.locator('#qualifiers input[data-qualifier="domestic_abuse"]')
        ).to_be_checked()
        await expect(
            page.locator('#qualifiers input[data-strand-of="hate_crime"][value="religion"]')
        ).to_be_checked()

        await assert_accessible(page, "handler with qualifiers")
        await both_sizes(page, "handler-qualifiers")
        assert errors == []
    finally:
        await phone.close()
