"""ring -> screen, open loop: signed `offered` then `ringing` per call, latency = the
`ringing` POST's scheduled send -> its `call.ringing` frame read on the handler's socket.
PostgreSQL + Redis, real uvicorn, real sockets, the bare floor in the same run.

    .venv/bin/python -m bench.ring_to_screen                # the full sweep (about 25 min)
    .venv/bin/python -m bench.ring_to_screen --quick        # 20, 100, 200 calls/s, 20 s each

Each call has a distinct caller number, presentation allowed, so every call looks its caller
up; `--known` of them (30%) are people of a loaded history of `--contacts` contacts (1M:
loaded once into the database `bench_1m` and copied for each run, see history.py), the rest
numbers the history does not hold. Calls are spread over `--handlers` handler sockets (500).

Per rate (calls/s; events/s is twice that) and per service (the floor, then the service with
each of `--workers`): a fixed schedule of sends that never waits for answers (open loop, no
coordinated omission; calls arrive as a Poisson process at that mean rate, `--arrivals`),
p50 / p99 of the ringing latency, frames lost (posted, never seen within 10 s of the
schedule's end), CPU per event of the service's processes (all workers and
the supervisor, from /proc, over the step) and of the PostgreSQL backends of its database
and of Redis (shared with whatever else runs). Prints a markdown table for BENCHMARKS.md and
writes every figure as JSON (`--json`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from app.config import Settings
from app.telephony.signature import signed_headers
from bench.realtime_env import SECRET, bench_backend, make_handlers, start_service
from bench.ring_to_screen import client, cpu
from bench.ring_to_screen.history import ensure_template, known_number, unknown_number
from tests.support.servers import free_port, wait_until

FULL_RATES = (20, 50, 100, 150, 200, 300)
QUICK_RATES = (20, 100, 200)
RING_AFTER = 0.25  # seconds from a call's `offered` to its `ringing` (queued, then rung)
# Calls arrive at random (a Poisson process, as a contact centre's calls do: Erlang C assumes
# it) or on a fixed grid, one every 1/rate s. On the grid, whenever RING_AFTER * rate is a
# whole number (20, 100, 200 calls/s...), every call's ringing is sent at the very instant of
# a later call's offered and waits for it: a collision for every ringing, which only a
# clockwork platform would produce. The grid is kept to compare with earlier figures.
ARRIVALS = ("poisson", "grid")
GRACE = 10.0  # seconds after the schedule for the last frames; later ones are lost
PEOPLE_PER_CONTACT = 10  # bench/history_data.py: a person per 10 contacts


def _window(kind: str, events: int) -> None:
    """For bench.round_trips: when the meters ran (a monotonic time, the same clock in
    every process), and how many events the step sent."""
    trace = os.environ.get("FC_BENCH_TRACE")
    if trace:
        with open(trace + ".window", "a") as out:
            out.write(f"{kind} {time.monotonic():.6f} {events}\n")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Callers:
    """Distinct, allowed caller numbers: a `known` share of the history's people (each once),
    the rest numbers it does not hold."""

    def __init__(self, contacts: int, known: float, seed: int = 19) -> None:
        self.rng = random.Random(seed)
        self.known = known if contacts else 0.0
        self.people = list(range(contacts // PEOPLE_PER_CONTACT))
        self.rng.shuffle(self.people)
        self.unknown = 0

    def next(self) -> str:
        if self.people and self.rng.random() < self.known:
            return known_number(self.people.pop())
        self.unknown += 1
        return unknown_number(self.unknown)


def event(call_id: str, type_: str, **fields: Any) -> bytes:
    doc = {
        "event_id": f"{call_id}-{type_}", "call_id": call_id, "type": type_,
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    doc.update(fields)
    return json.dumps(doc).encode()


def arrival_times(rate: int, calls: int, arrivals: str, seed: int = 19) -> list[float]:
    """When each of `calls` calls arrives (seconds from the start) at a mean of `rate` a
    second: exponential gaps (Poisson, the same for a given seed) or one every 1/rate s."""
    if arrivals == "grid":
        return [i / rate for i in range(calls)]
    if arrivals != "poisson":
        raise ValueError(f"arrivals must be one of {ARRIVALS}, not {arrivals!r}")
    rng = random.Random(seed)
    times, at = [], 0.0
    for _ in range(calls):
        times.append(at)
        at += rng.expovariate(rate)
    return times


def schedule(
    tag: str,
    rate: int,
    seconds: float,
    callers: Callers,
    handlers: list[str],
    arrivals: str = "poisson",
) -> list[client.Request]:
    """`rate` calls a second (on average) for `seconds`: each an `offered`, then its
    `ringing` RING_AFTER later at a handler's desk. Signed now (well inside the signature's
    300 s tolerance)."""
    out: list[client.Request] = []
    secret = SECRET.encode()
    for i, at in enumerate(arrival_times(rate, int(rate * seconds), arrivals)):
        cid = f"{tag}-{i}"
        caller = {"number": callers.next(), "presentation": "allowed"}
        first = event(cid, "offered", caller=caller, called="999")
        ring = event(
            cid, "ringing", caller=caller, called="999", handler_id=handlers[i % len(handlers)]
        )
        out.append(client.Request(at, first, signed_headers(secret, first), (cid, "offered")))
        out.append(
            client.Request(at + RING_AFTER, ring, signed_headers(secret, ring), (cid, "ringing"))
        )
    return out


class Screens:
    """Sockets that record when each call's ringing frame arrives (`key_of`: the frame's
    text -> the call's key, or None for any other frame)."""

    def __init__(self, key_of: Callable[[str], object | None]) -> None:
        self.key_of = key_of
        self.seen: dict[object, float] = {}
        self._arrived = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: list[ClientConnection] = []
        self.closed = 0  # sockets the server closed (a slow consumer is dropped: frames lost)
        self.sizes: list[int] = []  # bytes of each ringing frame (for the capacity plan)

    async def open(
        self, url: str, headers: dict[str, str] | None = None, hello: bool = True
    ) -> None:
        ws = await connect(url, additional_headers=headers, max_queue=None)
        if hello:
            await ws.recv()
        self.sockets.append(ws)
        self.tasks.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.perf_counter()
            key = self.key_of(raw if isinstance(raw, str) else raw.decode())
            if key is not None:
                self.seen[key] = now
                self.sizes.append(len(raw))
                self._arrived.set()
        self.closed += 1

    async def wait_for(self, keys: set[object], within: float) -> None:
        """Until every one of `keys` has been seen, or `within` seconds have passed."""
        deadline = time.perf_counter() + within
        while not keys <= self.seen.keys():
            self._arrived.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


def service_key(raw: str) -> object | None:
    if '"call.ringing"' not in raw[:80]:
        return None
    return int(json.loads(raw)["call_id"])


def floor_key(raw: str) -> object | None:
    doc = json.loads(raw)
    return doc["call_id"] if doc.get("type") == "ringing" else None


@dataclass
class Step:
    target: str  # floor | 1 worker | 2 workers
    rate: int
    calls: int
    p50_ms: float | None
    p99_ms: float | None
    lost: int
    refused: int  # answers that were not 2xx (or no answer)
    client_lag_p99_ms: float  # how late the client sent (its own overload shows here)
    cpu_ms_per_event: float
    postgres_ms_per_event: float | None = None
    redis_ms_per_event: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    name: str
    url: str
    path: str
    screens: Screens
    meters: dict[str, cpu.Meter]
    # the key a frame carries for a call: the floor echoes the external id, the service gives
    # its own id (read from the webhook's answer)
    keyed_by_answer: bool


async def one_at_a_time(
    target: Target, pool: client.Pool, requests: list[client.Request]
) -> tuple[list[client.Answer], dict[tuple[str, str], float]]:
    """Closed loop: each request once the previous one is answered and, after a ringing, once
    its frame has arrived (every event alone in its transaction: the single-event cost)."""
    answers: list[client.Answer] = []
    sent: dict[tuple[str, str], float] = {}
    for request in sorted(requests, key=lambda r: r.at):
        sent[request.key] = time.perf_counter()
        try:
            status, payload = await pool.post(request.body, request.headers)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, payload = 0, b""
        answer = client.Answer(request.key, status, payload, 0.0)
        answers.append(answer)
        if request.key[1] == "ringing" and 200 <= status < 300:
            key = client.call_id_of(answer) if target.keyed_by_answer else request.key[0]
            await target.screens.wait_for({key}, GRACE)
    return answers, sent


async def step(
    target: Target,
    rate: int,
    seconds: float,
    callers: Callers,
    handlers: list[str],
    closed: bool = False,
    arrivals: str = "poisson",
) -> Step:
    """One rate for `seconds` (open loop), or (`closed`) `rate * seconds` calls one at a time."""
    tag = f"{target.name.replace(' ', '')}-{rate}-{time.time_ns()}"
    requests = schedule(tag, rate, seconds, callers, handlers, arrivals)
    port = int(target.url.rsplit(":", 1)[1])
    pool = client.Pool("127.0.0.1", port, target.path)
    for meter in target.meters.values():
        meter.start()
    _window("start", 0)
    if closed:
        answers, sent = await one_at_a_time(target, pool, requests)
    else:
        begin = time.perf_counter() + 0.2
        answers = await client.run_schedule(pool, requests, begin)
        sent = {r.key: begin + r.at for r in requests}
    keys: dict[tuple[str, str], object] = {}
    refused = 0
    for answer in answers:
        if not 200 <= answer.status < 300:
            refused += 1
        elif answer.key[1] == "ringing":
            keys[answer.key] = (
                client.call_id_of(answer) if target.keyed_by_answer else answer.key[0]
            )
    await target.screens.wait_for(set(keys.values()), GRACE)
    used = {name: meter.stop() for name, meter in target.meters.items()}
    _window("stop", len(requests))
    await pool.close()
    latencies = [
        target.screens.seen[k] - sent[request_key]
        for request_key, k in keys.items()
        if k in target.screens.seen
    ]
    calls = len(requests) // 2
    per_event = {name: used[name] * 1000 / len(requests) for name in used}
    lags = [a.late for a in answers]
    missing = [(rk[0], k) for rk, k in keys.items() if k not in target.screens.seen][:5]
    statuses = sorted({a.status for a in answers if not 200 <= a.status < 300})
    sizes = sorted(target.screens.sizes)
    extra = {
        "sockets_closed": target.screens.closed,
        "missing": missing,
        "refusals": statuses,
        "frame_bytes_p50": sizes[len(sizes) // 2] if sizes else None,
    }
    return Step(
        target=target.name, rate=0 if closed else rate, calls=calls,
        p50_ms=pct(latencies, 0.5) if latencies else None,
        p99_ms=pct(latencies, 0.99) if latencies else None,
        lost=calls - len(latencies), refused=refused,
        client_lag_p99_ms=pct(lags, 0.99),
        cpu_ms_per_event=per_event["service"],
        postgres_ms_per_event=per_event.get("postgres"), redis_ms_per_event=per_event.get("redis"),
        extra=extra,
    )  # fmt: skip


def report(result: Step) -> None:
    what = f"{result.rate} calls/s" if result.rate else f"closed loop ({result.calls} calls)"
    print(
        f"  {result.target} {what}: p50 {fmt(result.p50_ms)} p99 {fmt(result.p99_ms)} "
        f"lost {result.lost} cpu {result.cpu_ms_per_event:.3f} ms/event "
        f"load {os.getloadavg()[0]:.2f} {result.extra}",
        flush=True,
    )


async def sweep(
    target: Target, args: argparse.Namespace, callers: Callers, handlers: list[str]
) -> list[Step]:
    # Warm-up, not reported: first requests import and compile, pools fill.
    await step(
        target, min(args.rates, default=20), min(args.seconds, 5.0), callers, handlers,
        arrivals=args.arrivals,
    )  # fmt: skip
    out = []
    if args.closed:
        out.append(await step(target, args.closed, 1.0, callers, handlers, closed=True))
        report(out[-1])
    for rate in args.rates:
        out.append(
            await step(target, rate, args.seconds, callers, handlers, arrivals=args.arrivals)
        )
        report(out[-1])
        gc.collect()
    return out


async def run_floor(args: argparse.Namespace, handlers: list[str]) -> list[Step]:
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before timing)
        [sys.executable, "-m", "uvicorn", "bench.ring_to_screen.floor:app", "--port", str(port),
         "--log-level", "warning"], env=os.environ.copy(),
    )  # fmt: skip
    screens = Screens(floor_key)
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200, 20,
        )  # fmt: skip
        for _ in handlers:
            await screens.open(f"ws://127.0.0.1:{port}/ws", hello=False)
        freeze(args)
        meters = {"service": cpu.Meter(lambda: cpu.tree(proc.pid))}
        url = f"http://127.0.0.1:{port}"
        target = Target("floor", url, "/floor", screens, meters, keyed_by_answer=False)
        return await sweep(target, args, Callers(0, 0.0, seed=1), handlers)
    finally:
        await screens.close()
        proc.terminate()
        proc.wait(10)  # noqa: ASYNC101


async def run_service(
    args: argparse.Namespace,
    settings: Settings,
    workers: int,
    handlers: list[str],
    callers: Callers,
) -> list[Step]:
    tokens = await make_handlers(settings, handlers)
    service = await asyncio.to_thread(start_service, settings, workers, LOG_LEVEL=args.log_level)
    assert service.proc is not None
    root = service.proc.pid
    meters = {"service": cpu.Meter(lambda: cpu.tree(root))}
    database = settings.database_url.rsplit("/", 1)[1]
    if settings.database_url.startswith("postgresql"):
        meters["postgres"] = cpu.Meter(lambda: cpu.postgres_backends(database))
    if settings.redis_url:
        redis_port = int(settings.redis_url.rsplit(":", 1)[1].split("/", 1)[0])
        meters["redis"] = cpu.Meter(lambda: cpu.redis_server(redis_port))
    screens = Screens(service_key)
    try:
        for staff_id in handlers:
            await screens.open(
                service.ws_url + "/ws", {"Authorization": f"Bearer {tokens[staff_id]}"}
            )
        freeze(args)
        name = f"{workers} worker" + ("s" if workers > 1 else "")
        target = Target(
            name, service.url, "/api/v1/telephony/events", screens, meters, keyed_by_answer=True
        )
        return await sweep(target, args, callers, handlers)
    finally:
        await screens.close()
        await asyncio.to_thread(service.stop)


def freeze(args: argparse.Namespace) -> None:
    """The client's own full GC passes (500 sockets, thousands of tasks) stall its loop for
    50-150 ms, counted as delivery latency: freeze what is set up (the command only)."""
    if args.freeze:
        gc.collect()
        gc.freeze()


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(steps: list[Step], args: argparse.Namespace) -> str:
    """The markdown table: a row per rate, a column group per target."""
    targets = list(dict.fromkeys(s.target for s in steps))
    by = {(s.target, s.rate): s for s in steps}
    head = ["calls/s (events/s)"]
    for t in targets:
        head += [f"{t} p50 / p99 ms", f"{t} lost"] + (
            [] if t == "floor" else [f"{t} CPU ms/event (PG, Redis)"]
        )
    head.append("ours/floor p50, p99 (1 worker)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rate in ([0] if args.closed else []) + args.rates:
        row = [f"{rate} ({2 * rate})" if rate else "one call at a time"]
        for t in targets:
            s = by.get((t, rate))
            if s is None:
                row += ["", ""] + ([] if t == "floor" else [""])
                continue
            row += [f"{fmt(s.p50_ms)} / {fmt(s.p99_ms)}", str(s.lost)]
            if t != "floor":
                pg, redis = fmt(s.postgres_ms_per_event, 3), fmt(s.redis_ms_per_event, 3)
                row.append(f"{fmt(s.cpu_ms_per_event, 3)} ({pg}, {redis})")
        floor, ours = by.get(("floor", rate)), by.get(("1 worker", rate))
        if floor and ours and floor.p50_ms and ours.p50_ms and floor.p99_ms and ours.p99_ms:
            row.append(f"{ours.p50_ms / floor.p50_ms:.1f}x, {ours.p99_ms / floor.p99_ms:.1f}x")
        else:
            row.append("")
        lines.append("| " + " | ".join(row) + " |")
    floor_cpu = [s for s in steps if s.target == "floor"]
    if floor_cpu:
        lines.append("")
        lines.append(
            "Floor CPU ms/event: "
            + ", ".join(f"{s.rate or 'one at a time'}: {s.cpu_ms_per_event:.3f}" for s in floor_cpu)
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace, settings: Settings) -> list[Step]:
    handlers = [f"BH{i:04d}" for i in range(args.handlers)]
    steps: list[Step] = []
    if not args.no_floor:
        steps += await run_floor(args, handlers)
    callers = Callers(args.contacts, args.known)
    for workers in args.workers:
        steps += await run_service(args, settings, workers, handlers, callers)
    return steps


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", default=None, help="calls/s, comma-separated (default: 20,50,100,150,200,300)"
    )
    parser.add_argument("--quick", action="store_true", help="20,100,200 calls/s, 20 s each")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per rate (default 60; --quick 20)"
    )
    parser.add_argument("--handlers", type=int, default=500)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--contacts", type=int, default=1_000_000, help="history size (0: empty)")
    parser.add_argument(
        "--known", type=float, default=0.3, help="share of callers the history knows"
    )
    parser.add_argument(
        "--closed", type=int, default=200, help="calls one at a time before the sweep (0: none)"
    )
    parser.add_argument(
        "--arrivals", choices=ARRIVALS, default="poisson",
        help="calls at random (Poisson, default) or one every 1/rate s (grid: earlier figures)",
    )  # fmt: skip
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument(
        "--log-level", default="INFO", help="the service's LOG_LEVEL (INFO: as deployed)"
    )
    parser.add_argument("--json", default=None, help="write every figure here")
    args = parser.parse_args(argv)
    rates = QUICK_RATES if args.quick else FULL_RATES
    given = args.rates is not None  # "--rates=" alone: no open loop (closed loop only)
    args.rates = [int(r) for r in args.rates.split(",") if r] if given else list(rates)
    args.seconds = args.seconds or (20.0 if args.quick else 60.0)
    args.workers = [int(w) for w in args.workers.split(",")]
    args.freeze = False  # main() sets it
    return args


def main() -> None:
    args = parse()
    args.freeze = True
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    template = ensure_template(args.contacts) if args.contacts else None
    with bench_backend(template=template) as settings:
        steps = asyncio.run(run(args, settings))
    print()
    print(
        f"load average at the end: {os.getloadavg()[0]:.2f}; {args.contacts:,} contacts, "
        f"{args.known:.0%} of callers known, {args.handlers} handler sockets, "
        f"{args.seconds:.0f} s per rate, {args.arrivals} arrivals"
    )
    print()
    print(table(steps, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(s) for s in steps], f, indent=2)


if __name__ == "__main__":
    main()
