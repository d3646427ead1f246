"""ring -> screen: signed POST of `ringing` sent -> `call.ringing` frame (with the alerts) read
from the handler's socket. PostgreSQL + Redis, real uvicorn, real sockets.

    .venv/bin/python -m bench.ring_to_screen [--closed 300] [--rate 200] [--seconds 10]
        [--handlers 500] [--database-url postgresql+asyncpg://.../loaded_db]

Closed loop: one call at a time. Open loop: `rate` ringing events/s spread over `handlers`
connected handlers, latency measured from each event's scheduled send time (no coordinated
omission), lost = posted but never seen. Floor: a bare FastAPI POST that sends one frame on a
socket, closed loop, same client; the ratio is ours/floor at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from app.telephony.signature import signed_headers
from bench.realtime_env import SECRET, bench_backend, make_handlers, start_service
from tests.support.servers import free_port, wait_until


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def body(call_id: str, type_: str, **fields: Any) -> bytes:
    doc = {
        "event_id": f"b-{call_id}-{type_}", "call_id": call_id, "type": type_,
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    doc.update(fields)
    return json.dumps(doc).encode()


def offered(call_id: str) -> bytes:
    return body(call_id, "offered", caller={"number": "", "presentation": "withheld"}, called="999")


class Screens:
    """Handler sockets; records when each call's `call.ringing` (with alerts) arrives."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.waiters: dict[int, asyncio.Future[float]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: list[ClientConnection] = []

    async def open(self, ws_url: str, token: str) -> None:
        ws = await connect(ws_url + "/ws", additional_headers={"Authorization": f"Bearer {token}"})
        json.loads(await ws.recv())  # hello
        self.sockets.append(ws)
        self.tasks.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.perf_counter()
            if '"call.ringing"' not in raw[:60]:
                continue
            frame = json.loads(raw)
            assert frame["data"]["alerts"], "ringing frame without alerts"
            self.seen[frame["call_id"]] = now
            waiter = self.waiters.pop(frame["call_id"], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(now)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for ws in self.sockets:
            await ws.close()


async def post(http: httpx.AsyncClient, raw: bytes) -> int:
    response = await http.post(
        "/api/v1/telephony/events", content=raw, headers=signed_headers(SECRET.encode(), raw)
    )
    response.raise_for_status()
    return int(response.json()["call_id"])


async def closed_loop(url: str, screens: Screens, n: int, handler: str) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for i in range(n + 20):
            cid = f"closed-{i}"
            call_id = await post(http, offered(cid))
            waiter = asyncio.get_running_loop().create_future()
            screens.waiters[call_id] = waiter
            start = time.perf_counter()
            await post(http, body(cid, "ringing", handler_id=handler))
            arrived = await asyncio.wait_for(waiter, 10)
            if i >= 20:  # warm-up excluded
                out.append(arrived - start)
    return out


async def open_loop(
    url: str, screens: Screens, rate: int, seconds: int, handlers: list[str]
) -> tuple[list[float], int, int]:
    total = rate * seconds
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        ids: dict[int, int] = {}
        sem = asyncio.Semaphore(16)

        async def offer(i: int) -> None:
            async with sem:
                ids[i] = await post(http, offered(f"open-{i}"))

        await asyncio.gather(*(offer(i) for i in range(total)))
        scheduled: dict[int, float] = {}
        begin = time.perf_counter() + 0.2
        sends = []

        async def ring(i: int) -> None:
            at = begin + i / rate
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            scheduled[ids[i]] = at
            await post(http, body(f"open-{i}", "ringing", handler_id=handlers[i % len(handlers)]))

        for i in range(total):
            sends.append(asyncio.create_task(ring(i)))
        await asyncio.gather(*sends)
        deadline = time.perf_counter() + 10
        while len([c for c in scheduled if c in screens.seen]) < total:
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.05)
    latencies = [screens.seen[c] - at for c, at in scheduled.items() if c in screens.seen]
    return latencies, total, total - len(latencies)


async def floor_loop(n: int) -> list[float]:
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before timing)
        [sys.executable, "-m", "uvicorn", "bench.ring_to_screen.floor:app", "--port", str(port),
         "--log-level", "warning"], env=os.environ.copy(),
    )  # fmt: skip
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200, 20)
        out: list[float] = []
        async with (
            connect(f"ws://127.0.0.1:{port}/ws") as ws,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
        ):
            payload = json.dumps({"type": "call.ringing", "data": {"alerts": [1]}}).encode()
            for i in range(n + 20):
                start = time.perf_counter()
                await http.post("/floor", content=payload)
                await ws.recv()
                if i >= 20:
                    out.append(time.perf_counter() - start)
        return out
    finally:
        proc.terminate()
        proc.wait(10)


async def run(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    handlers = [f"BH{i:04d}" for i in range(args.handlers)]
    tokens = await make_handlers(settings, handlers)
    service = await asyncio.to_thread(start_service, settings, args.workers)
    screens = Screens()
    try:
        for staff_id in handlers:
            await screens.open(service.ws_url, tokens[staff_id])
        # The measuring client's own full GC passes (500 sockets, thousands of tasks) stall its
        # loop for 50-150 ms and were counted as delivery latency: freeze what is set up.
        gc.collect()
        gc.freeze()
        closed = await closed_loop(service.url, screens, args.closed, handlers[0])
        open_lat, posted, lost = await open_loop(
            service.url, screens, args.rate, args.seconds, handlers
        )
    finally:
        await screens.close()
        service.stop()
    floor = await floor_loop(args.closed)
    return {
        "closed_p50_ms": pct(closed, 0.5), "closed_p99_ms": pct(closed, 0.99),
        "open_rate": args.rate, "open_handlers": args.handlers, "open_posted": posted,
        "open_lost": lost, "open_p50_ms": pct(open_lat, 0.5) if open_lat else None,
        "open_p99_ms": pct(open_lat, 0.99) if open_lat else None,
        "floor_p50_ms": pct(floor, 0.5), "floor_p99_ms": pct(floor, 0.99),
        "ratio_p50": pct(closed, 0.5) / pct(floor, 0.5),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--closed", type=int, default=300)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--handlers", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=None, help="a database with history loaded")
    args = parser.parse_args()
    with bench_backend(args.database_url) as settings:
        result = asyncio.run(run(args, settings))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
