"""The newcomer's path with a browser: `firstcontact demo` serves and rings the demo handlers;
the printed login URL and a printed handler token show a call with alerts within seconds."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from playwright.async_api import Browser, expect

from app.web import demo
from tests.support.servers import eventually, free_port
from tests.web.axe import assert_accessible
from tests.web.support import VIEWPORT


def start_demo(cwd: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "TELEPHONY_", "SESSION_", "ENV"))
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", "--port", str(port)],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


async def test_demo_rings_the_demo_handlers_with_alerts(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    proc = start_demo(tmp_path, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2) as http:

            async def ready() -> bool:
                assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, 120, what="the demo service to be ready", interval=0.2)
        printed = log.read_text()
        assert f"browser: {base}/login" in printed, printed
        token = re.search(r"handler\s+H1001\s+(fct_\S+)", printed)
        assert token, printed

        context = await browser.new_context(viewport=VIEWPORT)
        try:
            page = await context.new_page()
            await page.goto(base + "/login")
            await page.fill("#token", token[1])
            await page.click("form[action='/login'] button[type=submit]")
            await expect(page).to_have_url(base + "/handler")
            # The first demo call at H1001 comes from a repeat victim: its alert appears.
            await expect(page.locator("#alerts li.alert").first).to_be_visible(timeout=30_000)
            await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
            await assert_accessible(page, "handler on the demo's calls")
        finally:
            await context.close()
    finally:
        stop(proc)


def test_demo_calls_ring_demo_handlers_from_demo_history_numbers() -> None:
    rng = random.Random(7)
    pool = demo.demo_callers()
    seen: set[str] = set()
    for _ in range(300):
        script = demo._script(rng, "", None, pool)
        offered = next(body for _, body in script.steps if body["type"] == "offered")
        ringing = next(body for _, body in script.steps if body["type"] == "ringing")
        assert ringing["handler_id"] in demo.DEMO_HANDLERS
        if offered["caller"]["presentation"] == "allowed":
            assert offered["caller"]["number"] in pool
            seen.add(offered["caller"]["number"])
    assert len(seen) > 3  # several scenarios, not one number
    opener = demo._script(rng, "H1001", demo.first_calls()[0], pool)
    first = opener.steps[0][1]
    assert first["caller"] == {"number": demo.first_calls()[0], "presentation": "allowed"}
    assert all(b.get("handler_id") in (None, "H1001") for _, b in opener.steps)
