"""The audit chain's costs (issue 16 point 4): appending at commit (the head row is the lock,
so appenders take turns) and `firstcontact audit verify` over the whole log.

    .venv/bin/python -m bench.audit [--transactions 2000] [--writers 8] [--rows 3] [--embedded]

A fresh database (PostgreSQL at 127.0.0.1, or SQLite with --embedded). `--writers` tasks
each commit transactions of `--rows` audit rows (the size of a ring's consultation) until
`--transactions` are done; reported: transactions/s, p50/p99 commit latency, then the rows/s
that verify reads and checks.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid

import asyncpg

from app import migrate
from app.audit import chain
from app.audit import service as audit
from app.config import Settings
from app.db import create_engine, create_sessionmaker, unit_of_work

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def run(settings: Settings, transactions: int, writers: int, rows: int) -> None:
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    latencies: list[float] = []
    left = [transactions]

    async def writer(n: int) -> None:
        while left[0] > 0:
            left[0] -= 1
            started = time.perf_counter()
            async with unit_of_work(sessions) as session:
                for k in range(rows):
                    audit.record(
                        session, actor=f"staff:B{n}", action="consultation",
                        subject_type="person", subject_id=f"P{k}", call_id=str(n),
                        records={"contacts": ["C1", "C2"], "markers": []},
                    )  # fmt: skip
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(writers)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(
        f"append: {transactions} transactions x {rows} rows, {writers} writers: "
        f"{transactions / elapsed:.0f} tx/s; commit p50 {statistics.median(latencies) * 1000:.1f}"
        f" ms, p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms"
    )
    async with sessions() as session:
        started = time.perf_counter()
        checked, problems = await session.run_sync(lambda s: chain.verify(s.connection()))
        elapsed = time.perf_counter() - started
    print(f"verify: {checked} rows in {elapsed:.2f} s ({checked / elapsed:.0f} rows/s), "
          f"{len(problems)} problems")  # fmt: skip
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args()
    if args.embedded:
        path = tempfile.mkdtemp(prefix="fc-bench-audit-") + "/audit.db"
        settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", redis_url=None)
        migrate.upgrade(settings)
        asyncio.run(run(settings, args.transactions, args.writers, args.rows))
        return
    name = f"fc_bench_audit_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        settings = Settings(
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", redis_url=None
        )
        migrate.upgrade(settings)
        asyncio.run(run(settings, args.transactions, args.writers, args.rows))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
