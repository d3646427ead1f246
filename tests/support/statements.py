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
    watched: dict[int, tuple[Any, Callable[[Any], None]]] = {}

    def log(record: Any) -> None:
        sent.append(record.query)

    def watch(dbapi_connection: Any, *_: Any) -> None:
        raw = dbapi_connection.driver_connection
        if id(raw) in watched:
            return  # checked out again: its statements are written down once
        watched[id(raw)] = (raw, log)
        raw.add_query_logger(log)

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
        for raw, logger in watched.values():
            raw.remove_query_logger(logger)


def without_introspection(statements: list[str]) -> list[str]:
    """`statements` less asyncpg's own look-up of a type a connection meets for the first
    time (its JIT setting read in a transaction of its own, the type's tree, the setting put
    back): once per connection and type, not the service's. Its records may be logged out
    of order with the statement before it, so each look-up takes out its own statements and
    one BEGIN and one COMMIT."""
    looked_up = sum("current_setting('jit')" in query for query in statements)
    brackets = {"BEGIN;": looked_up, "COMMIT;": looked_up}
    kept: list[str] = []
    for query in statements:
        if any(
            mark in query
            for mark in ("current_setting('jit')", "typeinfo_tree", "set_config('jit'")
        ):
            continue
        if brackets.get(query.strip(), 0) > 0:
            brackets[query.strip()] -= 1
            continue
        kept.append(query)
    return kept
