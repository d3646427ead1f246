"""Issue 11 in Chromium: a handler's open page is sent to the login page as soon as their
access is taken away (the socket is closed with 4001), while another handler's page stays
live; logging out lands on the plain login page. Real `firstcontact serve` process."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import BrowserContext, expect

from app.auth.models import Role
from app.config import Settings
from tests.conftest import MakeStaff
from tests.support.servers import ServiceProcess
from tests.web.axe import assert_accessible
from tests.web.support import QUIET_NUMBER, Telephony, login

LiveService = Callable[..., ServiceProcess]
# The test command runs it on PostgreSQL + Redis (scripts/test_passes.py).
pytestmark = pytest.mark.production_only


async def test_revoking_a_handler_sends_their_open_page_to_the_login(
    settings: Settings,
    live_service: LiveService,
    make_staff: MakeStaff,
    browser_context: BrowserContext,
    second_context: BrowserContext,
) -> None:
    revoked_token = await make_staff("H1", Role.handler)
    other_token = await make_staff("H2", Role.handler)
    admin = await make_staff("A1", Role.admin)
    service = live_service()
    page = await login(browser_context, service.url, revoked_token, "/handler")
    other = await login(second_context, service.url, other_token, "/handler")

    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        response = await http.post(
            "/api/v1/staff/H1/revoke", headers={"Authorization": f"Bearer {admin}"}
        )
    assert response.status_code == 200, response.text
    answered = time.monotonic()
    # live.js sends the page to the login with a way back (the path, URL-encoded).
    await expect(page).to_have_url(f"{service.url}/login?next=%2Fhandler", timeout=5000)
    print(f"\nrevoked handler's page at the login {time.monotonic() - answered:.2f} s later")

    # The other handler is untouched: still live, and their calls still arrive.
    await expect(other.locator("#conn")).to_have_attribute("data-state", "live")
    phone = Telephony(service.url)
    try:
        call_id = await phone.ring("web-rv-1", "H2", QUIET_NUMBER)
    finally:
        await phone.close()
    await expect(other.locator("#call-card")).to_have_attribute("data-call-id", str(call_id))

    # Logging out closes the page's own socket first; the page still lands on /login itself.
    await other.click("form[action='/logout'] button")
    await expect(other).to_have_url(service.url + "/login")
    await assert_accessible(other, "login after logging out")
