"""Browser fixtures: Debian's Chromium driven by Playwright (installed by
scripts/ensure-browser.sh; `playwright install` is not used: it downloads browsers)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from tests.web.support import VIEWPORT

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def launch_options() -> dict[str, object]:
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        # Not a skip: the browser tests are part of the suite. The test command installs it.
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: run scripts/ensure-browser.sh")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(**launch_options())
        yield chromium
        await chromium.close()


@pytest.fixture
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (cookies, storage) at 1366x768."""
    context = await browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    yield context
    await context.close()


@pytest.fixture
async def second_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    yield context
    await context.close()
