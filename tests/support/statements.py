"""What a test's code sends to PostgreSQL, statement by statement, through asyncpg's own
query loggers (no stand-in: the statements the service sent, as the server received them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@asynccontextmanager
async def statements_sent(engine: AsyncEngine) -> AsyncIterator[Callable[[], Awaitable[list[str]]]]:
    """While the block runs, every statement sent on a connection `engine`'s pool hands out
    is written down; `await sent()` gives them all so far, in order."""
    loop = asyncio.get_running_loop()
    sent: list[str] = []

    def watch(dbapi_connection: Any, *_: Any) -> None:
        raw = dbapi_connection.driver_connection
        raw.add_query_logger(lambda record: sent.append(record.query))

    async def so_far() -> list[str]:
        # asyncpg hands each record to its loggers with call_soon: once a callback queued
        # after the statements has run, every one of them has been written down.
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done
        return list(sent)

    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", watch)
    try:
        yield so_far
    finally:
        event.remove(pool, "checkout", watch)
