"""bench/ingest: signed canonical events per second, sustained, with 2 uvicorn workers on
PostgreSQL + Redis; every accepted event must be stored (rows counted after) and processed.

    .venv/bin/python -m bench.ingest [--events 40000] [--connections 48] [--workers 2]
                                     [--batch N] [--history 1000000] [--warmup 2000]

A fresh database (dropped after) and Redis prefix; the service under uvicorn on a loopback
port with the default pipeline steps. The load generator only targets 127.0.0.1 and is bounded
in count (--events) and time (--max-seconds). To leave the CPU to the service on a small
machine, it is a lean HTTP/1.1 keep-alive client on asyncio streams with every request built
and signed beforehand (signatures stay valid for 300 s, longer than a run). Each call's four
events (offered, ringing, answered, ended) go in order on one connection, as a platform sends
them; calls are spread over the connections. With `--batch N` the events go N to a signed
request to the batch webhook instead (N/4 calls per batch, their events in phase order: every
offered, then every ringing, ...; each call's events in order). With `--history N` the
database first gets N contacts (N/10 people, two to a household; `bench/history_data.py`) and
the callers are those people: each `offered` then looks up a real caller, household and
history, as design.md measures it ("1M contacts loaded"). Before timing, `--warmup` events
(2,000) go through the same connections and the database is analyzed (see `warm_up`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app.telephony.signature import signed_headers
from bench.history_data import load, people_for, phone_of
from bench.realtime_env import SECRET, bench_backend, start_service

HOST = "127.0.0.1"  # never anything else
SINGLE = "/api/v1/telephony/events"
BATCH = SINGLE + "/batch"


def _request(port: int, path: str, raw: bytes, ts: int) -> bytes:
    headers = signed_headers(SECRET.encode(), raw, ts)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
        f"X-Signature-Timestamp: {headers['X-Signature-Timestamp']}\r\n"
        f"X-Signature: {headers['X-Signature']}\r\n\r\n"
    )
    return head.encode() + raw


def caller_number(c: int, known: int) -> str:
    """Call `c`'s caller: one call in ten withheld, the others from 1,000 numbers that ring
    again and again (so each lookup follows the write-back of that number's previous call);
    with `known` people loaded (`--history`), those are the numbers of loaded people."""
    if c % 10 == 0:
        return "anonymous"
    if known:
        return phone_of(c % 1000 * 97 % known)
    return f"07700 900{c % 1000:03d}"


def build_requests(
    calls: int, port: int, batch: int = 0, known: int = 0, prefix: str = "bench"
) -> list[list[bytes]]:
    """Per call, its four signed requests as raw HTTP/1.1 bytes; with `batch`, per group of
    batch/4 calls, one signed batch request. Call and event ids start with `prefix`."""
    ts = int(time.time())
    start = datetime.now(UTC) - timedelta(minutes=30)
    events: list[list[dict[str, Any]]] = []
    for c in range(calls):
        cid = f"{prefix}-{c}"
        at = start + timedelta(milliseconds=c)
        number = caller_number(c, known)
        bodies: list[dict[str, Any]] = [
            {"type": "offered", "caller": {"number": number, "presentation": "allowed"},
             "called": "999", "queue": "emergency"},
            {"type": "ringing", "handler_id": f"H{1001 + c % 2}"},
            {"type": "answered", "handler_id": f"H{1001 + c % 2}"},
            {"type": "ended", "cause": "normal_clearing"},
        ]  # fmt: skip
        events.append(
            [
                {"event_id": f"{cid}-{i}", "call_id": cid,
                 "occurred_at": (at + timedelta(seconds=i)).isoformat(), **extra}
                for i, extra in enumerate(bodies)
            ]
        )  # fmt: skip
    if not batch:
        return [
            [
                _request(port, SINGLE, json.dumps(e, separators=(",", ":")).encode(), ts)
                for e in call
            ]
            for call in events
        ]
    per = max(1, batch // 4)
    out = []
    for g in range(0, len(events), per):
        group = events[g : g + per]
        ordered = [call[phase] for phase in range(4) for call in group]
        out.append([_request(port, BATCH, json.dumps(ordered, separators=(",", ":")).encode(), ts)])
    return out


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length) if length else b""


def listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` (one per worker under SO_REUSEPORT)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return sum(1 for line in table if line.split()[1:4:2] == [local, "0A"])


def wait_listening(port: int, workers: int, timeout: float = 60.0) -> int:
    """The service answers once one worker is up; connections opened before the others
    listen would all go to the first."""
    deadline = time.monotonic() + timeout
    while (found := listening_sockets(port)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)  # before timing: nothing else runs yet
    return found


async def open_connections(port: int, n: int) -> list[tuple[Any, Any]]:
    """Open the keep-alive connections before timing, a few ms apart. Each worker listens on
    its own SO_REUSEPORT socket and the kernel spreads connections over them by address; the
    run reports each process's CPU so that an uneven split shows (see BENCHMARKS.md)."""
    out = []
    for _ in range(n):
        out.append(await asyncio.open_connection(HOST, port))
        await asyncio.sleep(0.005)
    return out


async def connection(
    stream: tuple[Any, Any],
    calls: list[list[bytes]],
    deadline: float,
    statuses: dict[int, int],
    events: Counter[str],
    close: bool = True,
) -> None:
    reader, writer = stream
    try:
        for requests in calls:
            for request in requests:
                if time.monotonic() > deadline:
                    return
                writer.write(request)
                status, body = await _read_response(reader)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200 and body.startswith(b'{"accepted"'):  # a batch's outcome
                    outcome = json.loads(body)
                    events.update(accepted=outcome["accepted"], replayed=outcome["replayed"],
                                  invalid=outcome["invalid"])  # fmt: skip
                elif status == 202:
                    events["accepted"] += 1
    finally:
        if close:
            writer.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (0 if it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


async def backend_pids(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


async def count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def run(
    events: int,
    connections: int,
    max_seconds: float,
    port: int,
    dsn: str,
    service_pid: int,
    batch: int = 0,
    workers: int = 2,
    known: int = 0,
    warmup: int = 0,
) -> dict[str, object]:
    calls = build_requests(events // 4, port, batch, known)
    shards = [calls[i::connections] for i in range(connections)]
    shards = [s for s in shards if s]
    statuses: dict[int, int] = {}
    outcomes: Counter[str] = Counter()
    listening = wait_listening(port, workers)
    streams = await open_connections(port, len(shards))
    warmed = await warm_up(streams, warmup, port, batch, known, dsn) if warmup else {}
    service = tree(service_pid)
    service_cpu = sum(cpu_seconds(p) for p in service)
    worker_cpu = {p: cpu_seconds(p) for p in service}
    client_cpu = time.process_time()
    started = time.monotonic()
    deadline = started + max_seconds
    await asyncio.gather(
        *(
            connection(st, s, deadline, statuses, outcomes)
            for st, s in zip(streams, shards, strict=True)
        )
    )
    # How evenly the workers shared the load (CPU seconds while the events were sent).
    busy = sorted(round(cpu_seconds(p) - worker_cpu[p], 1) for p in service)
    elapsed = time.monotonic() - started
    accepted = outcomes["accepted"]
    timed = "event_id LIKE 'bench-%'"  # not the warm-up's
    stored = await count(dsn, f"SELECT count(*) FROM call_event WHERE {timed}")
    drain_started = time.monotonic()
    unprocessed = -1
    while time.monotonic() - drain_started < 120:
        unprocessed = await count(dsn, "SELECT count(*) FROM call_event WHERE processed_at IS NULL")
        if unprocessed == 0:
            break
        await asyncio.sleep(0.2)
    calls_ended = await count(
        dsn, "SELECT count(*) FROM call WHERE state = 'ended' AND external_id LIKE 'bench-%'"
    )
    # CPU spent per event, independent of what else the machine runs: the service's workers
    # over the run (ingest + processing), and the PostgreSQL backends serving them.
    service_cpu = sum(cpu_seconds(p) for p in service) - service_cpu
    pg_cpu = sum(cpu_seconds(p) for p in await backend_pids(dsn))
    client_cpu = time.process_time() - client_cpu
    per_event_ms = {
        "service": round(1000 * service_cpu / max(accepted, 1), 3),
        "postgres": round(1000 * pg_cpu / max(accepted, 1), 3),
        "client": round(1000 * client_cpu / max(accepted, 1), 3),
    }
    server_ms = per_event_ms["service"] + per_event_ms["postgres"]
    return {
        **warmed,
        "cpu_ms_per_event": per_event_ms,
        "service_processes_cpu_seconds_while_sending": busy,
        # What 2 otherwise idle cores could sustain at that cost (service + PostgreSQL).
        "projected_events_per_second_2_idle_cores": round(2000 / server_ms, 0) if server_ms else 0,
        "load_average_after": os.getloadavg()[0],
        "batch": batch,
        "listening_sockets": listening,
        "requests": sum(statuses.values()),
        "statuses": statuses,
        "events": dict(outcomes),
        "seconds": round(elapsed, 2),
        "events_per_second": round(accepted / elapsed, 1),
        "stored": stored,
        "all_stored": stored == accepted,
        "unprocessed_after_drain": unprocessed,
        "drain_seconds": round(time.monotonic() - drain_started, 2),
        "calls_ended": calls_ended,
    }


async def warm_up(
    streams: list[tuple[Any, Any]], events: int, port: int, batch: int, known: int, dsn: str
) -> dict[str, object]:
    """Before timing: `events` events through the same connections, then ANALYZE, as a
    service that has taken calls for a minute has had (autovacuum analyzes a table after its
    first 50 rows and every 10% after). Without it a short run from an empty database measures
    PostgreSQL's plans for empty tables: a prepared statement's generic plan, chosen after five
    executions on a table that then had no rows, seq-scans the call_event table the run fills
    (~7 ms a scan at 20,000 rows, here) until an ANALYZE invalidates it."""
    calls = build_requests(max(1, events // 4), port, batch, known, prefix="warm")
    shards = [calls[i :: len(streams)] for i in range(len(streams))]
    statuses: dict[int, int] = {}
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    await asyncio.gather(
        *(
            connection(st, s, started + 120, statuses, outcomes, close=False)
            for st, s in zip(streams, shards, strict=True)
            if s
        )
    )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return {"warmup_events": outcomes["accepted"], "warmup_statuses": statuses}


async def load_history(settings: Any, dsn: str, contacts: int) -> dict[str, object]:
    """Load the scratch history, then VACUUM ANALYZE and CHECKPOINT, so that the run does not
    share the cores with the import's aftermath (autovacuum, writing out the import's WAL), as
    a service would after a force's nightly import has settled."""
    seconds, rows = await load(settings, contacts)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return {"history_rows": rows, "history_import_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--connections", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument(
        "--batch", type=int, default=0, help="events per signed batch request (0: single)"
    )
    parser.add_argument(
        "--history", type=int, default=0,
        help="contacts to load first (people and households with them; design.md: 1,000,000)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=int, default=2_000,
        help="events sent, then ANALYZE, before timing (0: time from an empty database)",
    )  # fmt: skip
    args = parser.parse_args()
    if not 0 <= args.warmup <= 100_000:
        raise SystemExit("--warmup must be between 0 and 100,000")
    if not 4 <= args.events <= 1_000_000:
        raise SystemExit("--events must be between 4 and 1,000,000")
    if args.batch and not 4 <= args.batch <= 500:
        raise SystemExit("--batch must be between 4 and 500 (TELEPHONY_MAX_BATCH)")
    if not 0 <= args.history <= 10_000_000:
        raise SystemExit("--history must be between 0 and 10,000,000")
    with bench_backend() as settings:
        dsn = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
        loaded: dict[str, object] = {}
        if args.history:
            loaded = asyncio.run(load_history(settings, dsn, args.history))
        service = start_service(settings, workers=args.workers)
        try:
            result = asyncio.run(
                run(
                    args.events,
                    args.connections,
                    min(args.max_seconds, 240),
                    service.port,
                    dsn,
                    service.proc.pid if service.proc else 0,
                    args.batch,
                    args.workers,
                    people_for(args.history) if args.history else 0,
                    args.warmup,
                )  # fmt: skip
            )
        finally:
            service.stop()
    machine = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    print(json.dumps({"machine": machine, "workers": args.workers, **loaded, **result}, indent=2))


if __name__ == "__main__":
    main()
