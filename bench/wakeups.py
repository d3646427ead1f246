"""What a round trip costs in wall time when the line is busy, and when it is quiet (issue 19).

    .venv/bin/python -m bench.wakeups [--runs 300] [--gap-ms 50]

At 20 calls/s the service sends each statement after tens of milliseconds of nothing: the
PostgreSQL backend and Redis sleep in between and have to be woken, and so does this process
to read the answer. Back to back, the same statements are answered from hot processes. This
measures both on one connection each (PostgreSQL: the database `test`, BENCH_PG_DSN; Redis:
BENCH_REDIS_URL): p50 and p99 wall time of `SELECT 1`, of a one-row UPDATE committed on its
own (the WAL flushed to disk, as every stored event is), and of a Redis PING, back to back and
after `--gap-ms` of sleep. The floor's request pays one such wake-up each way; every round
trip an event adds on the ring -> screen path pays another.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as redis

DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def _timed(one: Callable[[], Awaitable[object]], runs: int, gap: float) -> list[float]:
    for _ in range(20):  # prepared, cached, connection warm
        await one()
    out = []
    for _ in range(runs):
        if gap:
            await asyncio.sleep(gap)
        start = time.perf_counter()
        await one()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def main(runs: int, gap_ms: float) -> None:
    pg = await asyncpg.connect(DSN)
    cache = redis.from_url(REDIS_URL)
    try:
        # A logged table (a temporary one is not written to the WAL, so never flushed).
        await pg.execute(
            "DROP TABLE IF EXISTS bench_wakeups;"
            " CREATE TABLE bench_wakeups (id int PRIMARY KEY, n int NOT NULL);"
            " INSERT INTO bench_wakeups VALUES (1, 0)"
        )
        probes: dict[str, Callable[[], Awaitable[object]]] = {
            "PostgreSQL SELECT 1": lambda: pg.fetchval("SELECT 1"),
            "PostgreSQL UPDATE, committed": lambda: pg.execute(
                "UPDATE bench_wakeups SET n = n + 1 WHERE id = $1", 1
            ),
            "Redis PING": cache.ping,
        }
        print(f"{runs} runs each; quiet = after {gap_ms:g} ms of sleep\n")
        print("| round trip | busy p50 / p99 ms | quiet p50 / p99 ms |")
        print("|---|---|---|")
        for name, one in probes.items():
            busy = _quantiles(await _timed(one, runs, 0.0))
            quiet = _quantiles(await _timed(one, runs, gap_ms / 1000))
            print(f"| {name} | {busy[0]:.3f} / {busy[1]:.3f} | {quiet[0]:.3f} / {quiet[1]:.3f} |")
    finally:
        await pg.execute("DROP TABLE IF EXISTS bench_wakeups")
        await pg.close()
        await cache.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--gap-ms", type=float, default=50.0)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.gap_ms))
