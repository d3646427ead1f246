"""The demo's live calls: so that a newcomer who opens the handler's screen sees calls ringing
with alerts within seconds, `firstcontact demo` rings the demo handlers from numbers of the
demo history, at a gentle rate, for as long as it serves.

It is the simulator's platform (`app.simulate.CallScript`: offered, ringing, answered,
sometimes transferred, ended; some withheld; signed like a real platform) with every presented
number taken from the demo history's scenario numbers, and the first call to each handler from
a scenario that raises alerts. It runs in a daemon thread beside the server and starts once
/readyz answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from datetime import UTC, datetime

import httpx

from app.history.demo import DEMO_NUMBERS
from app.simulate import EVENTS_PATH, CallScript
from app.telephony.signature import signed_headers

log = logging.getLogger(__name__)

DEMO_HANDLERS = ("H1001", "H1002")
# Scenarios whose calls raise alerts: the first call at each desk comes from one of them.
ALERTING = ("repeat_victim", "household_risk", "da_escalation", "vulnerability_marker")
# One new call every this many seconds on average: a handler sees a few calls a minute.
MEAN_GAP_SECONDS = 6.0


def demo_callers() -> list[str]:
    return [n.e164 for n in DEMO_NUMBERS]


def first_calls() -> list[str]:
    return [n.e164 for n in DEMO_NUMBERS if n.scenario in ALERTING]


async def _send(http: httpx.AsyncClient, secret: bytes, body: dict[str, object]) -> None:
    body = {**body, "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    raw = json.dumps(body, separators=(",", ":")).encode()
    for attempt in range(3):
        headers = signed_headers(secret, raw)  # re-signed per attempt, as a platform does
        try:
            response = await http.post(EVENTS_PATH, content=raw, headers=headers)
        except httpx.TransportError:
            pass
        else:
            if response.status_code < 500:
                return
        await asyncio.sleep(0.5 * 2**attempt)


async def _play(http: httpx.AsyncClient, secret: bytes, script: CallScript) -> None:
    start = time.monotonic()
    for at, body in script.steps:
        delay = start + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await _send(http, secret, body)


def _script(rng: random.Random, handler: str, number: str | None, pool: list[str]) -> CallScript:
    """A simulated call whose caller, when the number is presented, is from the demo history
    (`number` for the opening calls, else one of `pool`); withheld calls stay withheld."""
    script = CallScript(rng, [handler] if number else list(DEMO_HANDLERS), pool)
    for _, body in script.steps:
        caller = body.get("caller")
        presented = isinstance(caller, dict) and caller.get("presentation") == "allowed"
        if body["type"] == "offered" and (number or presented):
            body["caller"] = {"number": number or rng.choice(pool), "presentation": "allowed"}
    return script


async def ring_forever(base_url: str, secret: bytes, *, seed: int | None = None) -> None:
    """Play demo calls against `base_url` until the process ends."""
    rng = random.Random(seed)
    pool = demo_callers()
    openers = first_calls()
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        for handler, number in zip(DEMO_HANDLERS, openers, strict=False):
            task = asyncio.create_task(_play(http, secret, _script(rng, handler, number, pool)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while True:
            await asyncio.sleep(rng.expovariate(1.0 / MEAN_GAP_SECONDS))
            task = asyncio.create_task(_play(http, secret, _script(rng, "", None, pool)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


def _wait_ready(base_url: str, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + "/readyz", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


def start_in_background(base_url: str, secret: bytes) -> threading.Thread:
    """Start ringing once the service at `base_url` is ready; a daemon thread."""

    def run() -> None:
        if not _wait_ready(base_url):
            log.warning("demo calls not started: the service never became ready")
            return
        log.info("demo calls ringing", extra={"handlers": list(DEMO_HANDLERS)})
        try:
            asyncio.run(ring_forever(base_url, secret))
        except Exception:
            log.exception("demo calls stopped")

    thread = threading.Thread(target=run, name="demo-calls", daemon=True)
    thread.start()
    return thread
