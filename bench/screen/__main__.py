"""ring -> screen in the browser: signed POST of `ringing` sent -> the alert element on the
handler's page in Debian's Chromium. PostgreSQL + Redis (or the embedded default), real
uvicorn, the real page and its WebSocket.

    .venv/bin/python -m bench.screen [--rings 200] [--warmup 10] [--embedded]
        [--database-url postgresql+asyncpg://.../loaded_db]

Each ring: `offered` (the caller queued: history lookup, alerts stored), then the clock starts
and `ringing` at the handler's desk is posted; the page records, with a MutationObserver, when
the alert's element is inserted and when the frame showing it has been painted (a
requestAnimationFrame, then a task after it). Both clocks are the machine's wall clock
(`time.time()` and `performance.timeOrigin + performance.now()`). Then `ended`, and the next
ring waits until the page shows the call ended. Goal: painted p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright

from app import migrate
from app.config import Settings
from app.telephony.signature import signed_headers
from bench.realtime_env import SECRET, bench_backend, make_handlers, start_service
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.web.support import REPEAT_VICTIM, VIEWPORT, seed_repeat_victim

RESULTS = Path(__file__).resolve().parents[1] / "results"

# Injected before the page's own scripts: note when each alert element appears.
OBSERVER = r"""
window.__seen = {};
window.__frames = {};
const stamp = () => performance.timeOrigin + performance.now();
// When the `call.ringing` frame reached the page (server part vs. the page's own part).
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => {
      const at = stamp();
      const match = /"type":"call\.ringing","ts":"[^"]*","call_id":(\d+)/.exec(event.data);
      if (match && !window.__frames[match[1]]) window.__frames[match[1]] = at;
    });
  }
};
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (!(node instanceof Element) || !node.matches("#alerts li.alert")) continue;
      const call = (node.dataset.key || "").split(":")[0];
      if (!call || window.__seen[call]) continue;
      const entry = { inserted: stamp(), painted: null };
      window.__seen[call] = entry;
      requestAnimationFrame(() => {
        const channel = new MessageChannel();
        channel.port1.onmessage = () => { entry.painted = stamp(); };
        channel.port2.postMessage(null);
      });
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def event(call: str, type_: str, **fields: Any) -> bytes:
    doc = {
        "event_id": f"{call}-{type_}",
        "call_id": call,
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat(),
        **fields,
    }
    return json.dumps(doc).encode()


async def post(http: httpx.AsyncClient, raw: bytes) -> tuple[float, int]:
    """(milliseconds to the response, the service's call id)."""
    started = time.perf_counter()
    response = await http.post(
        "/api/v1/telephony/events", content=raw, headers=signed_headers(SECRET.encode(), raw)
    )
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000, int(response.json()["call_id"])


async def run(base_url: str, token: str, rings: int, warmup: int) -> dict[str, Any]:
    caller = {"number": REPEAT_VICTIM, "presentation": "allowed"}
    inserted: list[float] = []
    painted: list[float] = []
    post_ms: list[float] = []
    frames: list[float] = []
    page_part: list[float] = []
    async with async_playwright() as pw, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport=VIEWPORT)
        await context.add_init_script(OBSERVER)
        page = await context.new_page()
        await page.goto(base_url + "/login?next=/handler")
        await page.fill("#token", token)
        await page.click("form[action='/login'] button[type=submit]")
        await page.wait_for_selector("#conn[data-state=live]")
        tag = uuid.uuid4().hex[:6]
        for i in range(warmup + rings):
            call = f"bench-screen-{tag}-{i}"
            await post(http, event(call, "offered", caller=caller, called="999", queue="emergency"))
            sent_at = time.time() * 1000
            took, call_id = await post(http, event(call, "ringing", caller=caller, handler_id="H1"))
            key = str(call_id)
            await page.wait_for_function(
                "(k) => window.__seen[k] && window.__seen[k].painted", arg=key
            )
            seen = await page.evaluate("(k) => window.__seen[k]", key)
            frame_at = await page.evaluate("(k) => window.__frames[k] || null", key)
            if i >= warmup:
                if frame_at is not None:
                    frames.append(frame_at - sent_at)
                    page_part.append(seen["painted"] - frame_at)
                inserted.append(seen["inserted"] - sent_at)
                painted.append(seen["painted"] - sent_at)
                post_ms.append(took)
            await post(http, event(call, "ended", cause="normal_clearing"))
            await page.wait_for_selector(f"#call-card[data-call-id='{key}'][data-state=ended]")
        await browser.close()
    return {
        "inserted": inserted,
        "painted": painted,
        "post": post_ms,
        "frame": frames,
        "page": page_part,
    }


def summary(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {pct(values, 0.5):.1f} | {pct(values, 0.9):.1f} | {pct(values, 0.99):.1f}"
        f" | {max(values):.1f} |"
    )


def machine() -> str:
    model = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line),
            "",
        )
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB RAM, Python {python}"


async def seed_and_staff(settings: Settings) -> str:
    await seed_repeat_victim(settings)
    return (await make_handlers(settings, ["H1"]))["H1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rings", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--embedded", action="store_true", help="SQLite + in-process broker")
    parser.add_argument("--database-url", default=None, help="a loaded PostgreSQL database")
    args = parser.parse_args()

    with ExitStack() as stack:
        if args.embedded:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fc-bench-")))
            settings = Settings(
                env="test",
                database_url=f"sqlite+aiosqlite:///{folder}/bench.db",
                telephony_secret=SECRET,
                session_secret="bench-session-secret-0123456789",
            )
            migrate.upgrade(settings)
        else:
            settings = stack.enter_context(bench_backend(args.database_url))
        token = asyncio.run(seed_and_staff(settings))
        service = start_service(settings, **({"REDIS_URL": ""} if args.embedded else {}))
        stack.callback(service.stop)
        result = asyncio.run(run(service.url, token, args.rings, args.warmup))

    backend = "embedded (SQLite, in-process)" if args.embedded else "PostgreSQL + Redis"
    lines = [
        f"bench.screen: {args.rings} rings after {args.warmup} warm-up, {backend}",
        f"machine: {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| ms from the ringing POST sent | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|",
        summary("alert element inserted (DOM)", result["inserted"]),
        summary("alert element painted (frame after insert)", result["painted"]),
        summary("ringing POST response (for reference)", result["post"]),
        summary("`call.ringing` frame received by the page", result["frame"]),
        summary("the page's own part: frame received -> painted", result["page"]),
    ]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"screen-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"backend": backend, **result}))
    print(f"\nraw figures: {out}")


if __name__ == "__main__":
    main()
