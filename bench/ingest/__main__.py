"""bench/ingest: signed canonical events per second, sustained, with 2 uvicorn workers on
PostgreSQL + Redis; every accepted event must be stored (rows counted after) and processed.

    .venv/bin/python -m bench.ingest [--events 40000] [--connections 48] [--workers 2]

A fresh database (dropped after) and Redis prefix; the service under uvicorn on a loopback
port with the default pipeline steps. The load generator only targets 127.0.0.1 and is bounded
in count (--events) and time (--max-seconds). To leave the CPU to the service on a small
machine, it is a lean HTTP/1.1 keep-alive client on asyncio streams with every request built
and signed beforehand (signatures stay valid for 300 s, longer than a run). Each call's four
events (offered, ringing, answered, ended) go in order on one connection, as a platform sends
them; calls are spread over the connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app.telephony.signature import signed_headers
from bench.realtime_env import SECRET, bench_backend, start_service

HOST = "127.0.0.1"  # never anything else


def build_requests(calls: int, port: int) -> list[list[bytes]]:
    """Per call, its four signed requests as raw HTTP/1.1 bytes."""
    ts = int(time.time())
    start = datetime.now(UTC) - timedelta(minutes=30)
    out: list[list[bytes]] = []
    for c in range(calls):
        cid = f"bench-{c}"
        at = start + timedelta(milliseconds=c)
        number = f"07700 900{c % 1000:03d}" if c % 10 else "anonymous"
        bodies = [
            {"type": "offered", "caller": {"number": number, "presentation": "allowed"},
             "called": "999", "queue": "emergency"},
            {"type": "ringing", "handler_id": f"H{1001 + c % 2}"},
            {"type": "answered", "handler_id": f"H{1001 + c % 2}"},
            {"type": "ended", "cause": "normal_clearing"},
        ]  # fmt: skip
        requests = []
        for i, extra in enumerate(bodies):
            body = {"event_id": f"{cid}-{i}", "call_id": cid,
                    "occurred_at": (at + timedelta(seconds=i)).isoformat(), **extra}  # fmt: skip
            raw = json.dumps(body, separators=(",", ":")).encode()
            headers = signed_headers(SECRET.encode(), raw, ts)
            head = (
                f"POST /api/v1/telephony/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
                f"X-Signature-Timestamp: {headers['X-Signature-Timestamp']}\r\n"
                f"X-Signature: {headers['X-Signature']}\r\n\r\n"
            )
            requests.append(head.encode() + raw)
        out.append(requests)
    return out


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def open_connections(port: int, n: int) -> list[tuple[Any, Any]]:
    """Open the keep-alive connections before timing, a few ms apart. The workers share one
    listening socket and a worker that wakes accepts every pending connection, so the split
    between workers is the kernel's and uvicorn's, not ours: the run reports each process's
    CPU so that an uneven split shows (see BENCHMARKS.md)."""
    out = []
    for _ in range(n):
        out.append(await asyncio.open_connection(HOST, port))
        await asyncio.sleep(0.005)
    return out


async def connection(
    stream: tuple[Any, Any], calls: list[list[bytes]], deadline: float, statuses: dict[int, int]
) -> None:
    reader, writer = stream
    try:
        for requests in calls:
            for request in requests:
                if time.monotonic() > deadline:
                    return
                writer.write(request)
                status = await _read_response(reader)
                statuses[status] = statuses.get(status, 0) + 1
    finally:
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
    events: int, connections: int, max_seconds: float, port: int, dsn: str, service_pid: int
) -> dict[str, object]:
    calls = build_requests(events // 4, port)
    shards = [calls[i::connections] for i in range(connections)]
    statuses: dict[int, int] = {}
    streams = await open_connections(port, len(shards))
    service = tree(service_pid)
    service_cpu = sum(cpu_seconds(p) for p in service)
    worker_cpu = {p: cpu_seconds(p) for p in service}
    client_cpu = time.process_time()
    started = time.monotonic()
    deadline = started + max_seconds
    await asyncio.gather(
        *(connection(st, s, deadline, statuses) for st, s in zip(streams, shards, strict=True))
    )
    # How evenly the workers shared the load (CPU seconds while the events were sent).
    busy = sorted(round(cpu_seconds(p) - worker_cpu[p], 1) for p in service)
    elapsed = time.monotonic() - started
    accepted = statuses.get(202, 0)
    stored = await count(dsn, "SELECT count(*) FROM call_event")
    drain_started = time.monotonic()
    unprocessed = -1
    while time.monotonic() - drain_started < 120:
        unprocessed = await count(dsn, "SELECT count(*) FROM call_event WHERE processed_at IS NULL")
        if unprocessed == 0:
            break
        await asyncio.sleep(0.2)
    calls_ended = await count(dsn, "SELECT count(*) FROM call WHERE state = 'ended'")
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
        "cpu_ms_per_event": per_event_ms,
        "service_processes_cpu_seconds_while_sending": busy,
        # What 2 otherwise idle cores could sustain at that cost (service + PostgreSQL).
        "projected_events_per_second_2_idle_cores": round(2000 / server_ms, 0) if server_ms else 0,
        "load_average_after": os.getloadavg()[0],
        "sent": sum(statuses.values()),
        "statuses": statuses,
        "seconds": round(elapsed, 2),
        "events_per_second": round(accepted / elapsed, 1),
        "stored": stored,
        "all_stored": stored == accepted,
        "unprocessed_after_drain": unprocessed,
        "drain_seconds": round(time.monotonic() - drain_started, 2),
        "calls_ended": calls_ended,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--connections", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    if not 4 <= args.events <= 1_000_000:
        raise SystemExit("--events must be between 4 and 1,000,000")
    with bench_backend() as settings:
        dsn = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
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
                )  # fmt: skip
            )
        finally:
            service.stop()
    machine = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    print(json.dumps({"machine": machine, "workers": args.workers, **result}, indent=2))


if __name__ == "__main__":
    main()
