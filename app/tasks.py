"""Stopping a background task for sure.

redis-py can turn a cancellation that lands while it connects into a connection error, or
swallow it. A task cancelled once may then go on (a periodic round returns normally and
sleeps again) and the lifespan waiting for it never ends: a stop hangs until the server's
shutdown timeout. Every stop of a task that may talk to Redis or the database goes through
`cancel_and_wait`."""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """For a task that retries on connection errors (or goes on waiting): it still stops when
    it is cancelled, even if the client swallowed the cancellation."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` until it is done (one cancellation can be lost inside the Redis client)
    and wait for it. Its outcome, whatever it is, is left on the task."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
