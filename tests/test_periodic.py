"""A periodic task stops even when its round swallows the cancellation (as redis-py can
while it connects): otherwise the lifespan's shutdown hangs until the server gives up."""

from __future__ import annotations

import asyncio

from app.periodic import Periodic


class Swallowing(Periodic):
    """The first round waits on something that turns a cancellation into a normal return;
    later rounds are ordinary."""

    name = "swallowing"

    def __init__(self) -> None:
        super().__init__(period=0.001)
        self.rounds = 0
        self.in_round = asyncio.Event()

    async def tick(self) -> None:
        self.rounds += 1
        self.in_round.set()
        if self.rounds > 1:
            return
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]


async def test_stop_ends_a_task_whose_round_swallowed_the_cancellation() -> None:
    task = Swallowing()
    await task.start()
    await asyncio.wait_for(task.in_round.wait(), 10)
    stopping = asyncio.create_task(task.stop())
    done, _ = await asyncio.wait({stopping}, timeout=10)
    assert stopping in done, "stop hung: one cancellation, swallowed, and the task went on"
    assert task._task is None
    assert task.rounds >= 1
