"""Issue 16, acceptance 1: single sign-on end to end in Chromium against a real OpenID
provider (`oidc-provider` on Node, tests/oidc/), with a real `firstcontact serve` process.

The provider's issuer is on `localhost`, the service on 127.0.0.1: two sites, as a force's
provider and the service are, so the callback is a cross-site navigation (our session cookie
is SameSite=Strict). Covered: the login page's button, authorization code with PKCE, the
staff record made on first login from the mapped role, a second role landing on its own
screen, no mapped role -> 403 and nothing made, logout ending our session and the
provider's (the next sign-in asks for the login again).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth.models import Staff, StaffSession
from app.config import Settings
from app.db import create_engine
from tests.support.servers import ServiceProcess
from tests.web.oidc_support import OidcProvider

LiveService = Callable[..., ServiceProcess]

ACCOUNTS: dict[str, dict[str, object]] = {
    "pat": {"name": "Pat Handler", "roles": ["Everyone", "FC-Handlers"]},
    "sam": {"name": "Sam Supervisor", "roles": ["FC-Handlers", "FC-Supervisors"]},
    "kim": {"name": "Kim Nobody", "roles": ["Finance"]},
}


@pytest.fixture
def sso(settings: Settings, live_service: LiveService) -> Iterator[tuple[ServiceProcess, str]]:
    provider = OidcProvider(accounts=ACCOUNTS)
    service = live_service(**provider.service_env())
    provider.redirect_uri = service.url + "/login/oidc/callback"
    provider.post_logout_uri = service.url + "/login"
    provider.start()
    try:
        yield service, provider.issuer
    finally:
        provider.stop()


async def _sign_in(page: Page, service: ServiceProcess, issuer: str, login: str) -> None:
    """From our login page through the provider's login and consent pages."""
    await page.goto(service.url + "/login")
    await page.click("text=Sign in with Test Force ID")
    await expect(page).to_have_url(re.compile("^" + re.escape(issuer)))
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "any")
    await page.click("button[type=submit]")
    await page.locator("button", has_text="Continue").click()


async def _rows(settings: Settings, query: Any) -> list[Any]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


async def test_single_sign_on_login_role_mapping_and_logout(
    settings: Settings, sso: tuple[ServiceProcess, str], browser_context: BrowserContext
) -> None:
    service, issuer = sso
    page = await browser_context.new_page()

    # First login: the staff member is made from the mapped role and lands on their screen.
    await _sign_in(page, service, issuer, "pat")
    await expect(page).to_have_url(service.url + "/handler")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    made = await _rows(settings, select(Staff.id, Staff.name, Staff.role, Staff.oidc_subject))
    assert [(r.name, r.role) for r in made] == [("Pat Handler", "handler")]
    staff_id = made[0].id
    assert staff_id.startswith("sso-") and made[0].oidc_subject
    sessions = await _rows(settings, select(StaffSession.method, StaffSession.token_id))
    assert [(s.method, s.token_id) for s in sessions] == [("oidc", None)]

    # Logout ends our session and, through the provider's end of session, the provider's.
    await page.click("form[action='/logout'] button")
    await expect(page).to_have_url(re.compile("^" + re.escape(issuer)))
    await page.click("button[name=logout]")
    await expect(page).to_have_url(service.url + "/login")
    ended = await _rows(settings, select(StaffSession.end_reason))
    assert [e.end_reason for e in ended] == ["logout"]
    await page.goto(service.url + "/handler")
    await expect(page).to_have_url(service.url + "/login?next=/handler")

    # Signing in again asks the provider for the login again (its session ended too); the
    # same staff member comes back (found by the provider's subject, not made twice).
    await _sign_in(page, service, issuer, "pat")
    await expect(page).to_have_url(service.url + "/handler")
    again = await _rows(settings, select(Staff.id))
    assert [r.id for r in again] == [staff_id]

    # Every login is audited (success with the staff member, never a token or a code).
    logins = await _rows(
        settings,
        select(AuditLog.actor, AuditLog.justification).where(AuditLog.action == "authentication"),
    )
    assert [(a.actor, a.justification) for a in logins] == [
        (f"staff:{staff_id}", "oidc login: signed in (staff record made)"),
        (f"staff:{staff_id}", "oidc login: signed in"),
    ]


async def test_single_sign_on_maps_the_first_listed_role(
    settings: Settings, sso: tuple[ServiceProcess, str], browser_context: BrowserContext
) -> None:
    service, issuer = sso
    page = await browser_context.new_page()
    # Sam holds both groups; OIDC_ROLE_MAP lists the supervisors' first.
    await _sign_in(page, service, issuer, "sam")
    await expect(page).to_have_url(service.url + "/supervisor")
    made = await _rows(settings, select(Staff.role))
    assert [r.role for r in made] == ["supervisor"]


async def test_single_sign_on_without_a_mapped_role_is_refused_and_makes_nothing(
    settings: Settings, sso: tuple[ServiceProcess, str], browser_context: BrowserContext
) -> None:
    service, issuer = sso
    page = await browser_context.new_page()
    callback: list[int] = []
    page.on(
        "response",
        lambda r: callback.append(r.status) if "/login/oidc/callback" in r.url else None,
    )
    await _sign_in(page, service, issuer, "kim")
    await expect(page.locator("h1")).to_have_text("403 Forbidden")
    await expect(page.locator("main")).to_contain_text("no role in this service")
    assert callback == [403]
    assert await _rows(settings, select(Staff.id)) == []
    assert await _rows(settings, select(StaffSession.id)) == []
    refused = await _rows(
        settings, select(func.count()).where(AuditLog.justification == "oidc login: no mapped role")
    )
    assert refused[0][0] == 1
