"""A telephony platform for demos and load: signed canonical call lifecycles over HTTP.

Calls arrive at `rate` per second (Poisson arrivals) for `duration` seconds; each call plays
out in real time (divided by `speed`): offered, ringing at a handler, answered, sometimes
transferred, ended; some are abandoned while ringing. Callers are a mix of repeat callers
(a small pool that calls again and again), new numbers in the Ofcom drama ranges (never a
real subscriber), withheld and unavailable numbers. Like a real platform it occasionally
sends an event twice, and retries on connection errors and 5xx.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from app.telephony.signature import signed_headers

EVENTS_PATH = "/api/v1/telephony/events"
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*([smh]))?\s*$")


def parse_rate(text: str) -> float:
    """Calls per second from "5/s", "30/m", "100/h" or a bare number (per second)."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"rate must look like 5/s, 30/m or 2.5; got {text!r}")
    value = float(match.group(1))
    per = {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    if value <= 0:
        raise ValueError("rate must be positive")
    return value / per


@dataclass
class SimulationConfig:
    url: str = "http://127.0.0.1:8000"
    secret: bytes = b""
    rate: float = 5.0  # calls per second
    duration: float = 60.0  # seconds during which new calls arrive
    handlers: list[str] = field(default_factory=lambda: ["H1001", "H1002"])
    speed: float = 1.0  # >1 plays each call faster than real time
    seed: int | None = None
    concurrency: int = 64


@dataclass
class SimulationReport:
    calls: int = 0
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        by_status = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        rate = self.sent / self.seconds if self.seconds else 0.0
        return (
            f"{self.calls} calls, {self.sent} events in {self.seconds:.1f} s "
            f"({rate:.1f} events/s); responses {{{by_status}}}; connection errors {self.errors}"
        )


class CallScript:
    """The events of one call, as (delay in seconds from the call's start, event body)."""

    def __init__(self, rng: random.Random, handlers: list[str], repeat_pool: list[str]) -> None:
        self.call_id = "sim-" + uuid.uuid4().hex[:16]
        self.rng = rng
        self.steps: list[tuple[float, dict[str, object]]] = []
        number, presentation = self._caller(repeat_pool)
        called = rng.choices(["999", "101"], weights=[6, 4])[0]
        queue = "emergency" if called == "999" else "non-emergency"
        handler = rng.choice(handlers)
        t = 0.0
        self._add(t, "offered", caller={"number": number, "presentation": presentation},
                  called=called, queue=queue)  # fmt: skip
        t += rng.uniform(0.2, 1.5)
        self._add(t, "ringing", handler_id=handler)
        if rng.random() < 0.1:  # abandoned while ringing
            t += rng.uniform(1.0, 8.0)
            self._add(t, "ended", cause="abandoned")
            return
        t += rng.uniform(1.0, 5.0)
        self._add(t, "answered", handler_id=handler)
        if rng.random() < 0.12 and len(handlers) > 1:
            t += rng.uniform(5.0, 20.0)
            other = rng.choice([h for h in handlers if h != handler])
            self._add(t, "transferred", handler_id=other, queue="dv-unit")
        t += rng.uniform(5.0, 40.0)
        self._add(t, "ended", cause="normal_clearing")

    def _caller(self, repeat_pool: list[str]) -> tuple[str, str]:
        roll = self.rng.random()
        if roll < 0.10:
            return self.rng.choice(["anonymous", "Withheld", "restricted"]), "withheld"
        if roll < 0.13:
            return "", "unavailable"
        if roll < 0.45:
            return self.rng.choice(repeat_pool), "allowed"
        if roll < 0.75:
            return f"07700 900{self.rng.randrange(1000):03d}", "allowed"
        return f"020 7946 0{self.rng.randrange(1000):03d}", "allowed"

    def _add(self, at: float, type_: str, **fields: object) -> None:
        body = {"event_id": f"{self.call_id}-{len(self.steps) + 1}", "call_id": self.call_id,
                "type": type_, **fields}  # fmt: skip
        self.steps.append((at, body))


def repeat_callers(rng: random.Random, size: int = 12) -> list[str]:
    return [f"07700 900{rng.randrange(1000):03d}" for _ in range(size)]


async def _post(
    http: httpx.AsyncClient,
    config: SimulationConfig,
    body: dict[str, object],
    report: SimulationReport,
) -> None:
    body = {**body, "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    raw = json.dumps(body, separators=(",", ":")).encode()
    for attempt in range(4):
        try:
            response = await http.post(
                EVENTS_PATH, content=raw, headers=signed_headers(config.secret, raw)
            )
        except httpx.TransportError:
            report.errors += 1
        else:
            report.sent += 1
            report.statuses[response.status_code] += 1
            if response.status_code < 500:
                return
        await asyncio.sleep(0.2 * 2**attempt)  # a platform's retry: same event id, re-signed


async def _play(
    http: httpx.AsyncClient,
    config: SimulationConfig,
    script: CallScript,
    report: SimulationReport,
    limit: asyncio.Semaphore,
) -> None:
    start = time.monotonic()
    for at, body in script.steps:
        delay = start + at / config.speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with limit:
            await _post(http, config, body, report)
            if script.rng.random() < 0.02:  # the platform sends it again
                await _post(http, config, body, report)


async def run(config: SimulationConfig) -> SimulationReport:
    """Play calls against `config.url` until `duration` is over and every call has ended."""
    rng = random.Random(config.seed)
    pool = repeat_callers(rng)
    report = SimulationReport()
    limit = asyncio.Semaphore(config.concurrency)
    started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=config.url, timeout=10.0) as http:
        while time.monotonic() - started < config.duration:
            script = CallScript(rng, config.handlers, pool)
            report.calls += 1
            tasks.append(asyncio.create_task(_play(http, config, script, report, limit)))
            await asyncio.sleep(rng.expovariate(config.rate))
        await asyncio.gather(*tasks)
    report.seconds = time.monotonic() - started
    return report
