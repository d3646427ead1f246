"""axe-core for every browser test: `await assert_accessible(page, "what the page shows")`
runs axe-core in the page as it is now and fails on any violation, with axe's report.

axe-core comes from the `axe-playwright-python` test dependency, whose wheel ships
axe.min.js: it is injected by Playwright and runs offline; nothing is vendored into the app."""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

AXE = Axe()


async def assert_accessible(page: Page, name: str) -> None:
    """No violation of any rule axe-core runs by default (WCAG 2.x A and AA, and best
    practices such as page-has-heading-one), over the whole page in its current state."""
    results = await AXE.run(page)
    assert results.violations_count == 0, f"axe-core on {name}:\n{results.generate_report()}"
