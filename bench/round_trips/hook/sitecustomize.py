"""Loaded by the service's interpreter when bench.round_trips puts this folder on its
PYTHONPATH: with FC_BENCH_TRACE set, every round trip to PostgreSQL (a statement, BEGIN and
COMMIT included) and to Redis (a command or a pipeline) is written to FC_BENCH_TRACE.<pid>
as one line: a monotonic time, PG or RD, and the statement's first words. Never loaded by
the service otherwise."""

from __future__ import annotations

import os
import time
from typing import Any

_PATH = os.environ.get("FC_BENCH_TRACE")

if _PATH:
    _out = open(f"{_PATH}.{os.getpid()}", "w", buffering=1)  # noqa: SIM115 (the process's life)

    def _line(kind: str, text: str) -> None:
        _out.write(f"{time.monotonic():.6f} {kind} {' '.join(text.split())[:100]}\n")

    import asyncpg.connection
    import asyncpg.prepared_stmt

    def _wrap(cls: Any, name: str, simple_only: bool = False) -> None:
        original = getattr(cls, name)

        async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
            # `execute` with arguments goes on to `_execute`, which records it.
            if not (simple_only and len(args) > 1):
                query = args[0] if args and isinstance(args[0], str) else self.get_query()
                _line("PG", query)
            return await original(self, *args, **kwargs)

        setattr(cls, name, traced)

    _wrap(asyncpg.connection.Connection, "_execute")
    _wrap(asyncpg.connection.Connection, "_executemany")
    _wrap(asyncpg.connection.Connection, "execute", simple_only=True)
    _wrap(asyncpg.prepared_stmt.PreparedStatement, "fetch")  # SQLAlchemy's statements

    import redis.asyncio.connection

    _send = redis.asyncio.connection.AbstractConnection.send_packed_command

    async def _traced_send(self: Any, command: Any, check_health: bool = True) -> None:
        first = command[0] if isinstance(command, list | tuple) else command
        words = bytes(first)[:200].split(b"\r\n")
        _line("RD", words[2].decode(errors="replace") if len(words) > 2 else "?")
        await _send(self, command, check_health)

    redis.asyncio.connection.AbstractConnection.send_packed_command = _traced_send
