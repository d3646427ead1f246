"""What one statement costs the service's process, by the way it is sent (issue 19).

    .venv/bin/python -m bench.statements [--runs 3000]

On one PostgreSQL connection (the database `test`, BENCH_PG_DSN), CPU time of this process
(`time.process_time`) per execution of a one-parameter SELECT: through an AsyncSession,
through a Core AsyncConnection, through asyncpg (prepared, and with its statement cache);
then a whole transaction (BEGIN, the statement, COMMIT) through a session and through asyncpg.
The gap between the first two and the asyncpg lines is what app/db_direct.py saves per hot
statement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import Integer, bindparam, literal, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _per_run(runs: int, one: Callable[[int], Awaitable[object]]) -> float:
    await one(0)  # prepared and cached before timing
    start = time.process_time()
    for i in range(runs):
        await one(i)
    return (time.process_time() - start) / runs * 1000


async def main(runs: int) -> None:
    engine = create_async_engine(
        "postgresql+asyncpg://" + DSN.split("://", 1)[1],
        connect_args={"prepared_statement_cache_size": 2048},
    )
    stmt = select(literal(1, Integer) + bindparam("x", type_=Integer))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    figures: list[tuple[str, float]] = []
    async with sessions() as session:
        figures.append(("AsyncSession.execute", await _per_run(
            runs, lambda i: session.execute(stmt, {"x": i}))))  # fmt: skip
        conn = await session.connection()
        figures.append(("AsyncConnection.execute (Core)", await _per_run(
            runs, lambda i: conn.execute(stmt, {"x": i}))))  # fmt: skip
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        prepared = await raw.prepare("SELECT 1 + $1::int")
        figures.append(("asyncpg prepared statement", await _per_run(runs, prepared.fetch)))
        figures.append(("asyncpg fetch (statement cache)", await _per_run(
            runs, lambda i: raw.fetch("SELECT 1 + $1::int", i))))  # fmt: skip

    async def session_tx(i: int) -> None:
        async with sessions() as session, session.begin():
            await session.execute(stmt, {"x": i})

    figures.append(("BEGIN + statement + COMMIT, session", await _per_run(runs // 10, session_tx)))
    direct = await asyncpg.connect(DSN)

    async def asyncpg_tx(i: int) -> None:
        async with direct.transaction():
            await direct.fetch("SELECT 1 + $1::int", i)

    figures.append(("BEGIN + statement + COMMIT, asyncpg", await _per_run(runs // 10, asyncpg_tx)))
    await direct.close()
    await engine.dispose()
    print("| sent through | CPU ms per execution |\n|---|---|")
    for name, ms in figures:
        print(f"| {name} | {ms:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3000)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.runs))
