"""The broker on the run's backend (in-process or Redis): cursors, resume rules, bounded
per-subscriber queues."""

from __future__ import annotations

import asyncio

import pytest

from app.config import Settings
from app.realtime import create_broker
from app.realtime.broker import CursorGone
from app.realtime.envelope import encode_body


async def test_slow_subscriber_overflows_alone_and_others_get_everything_in_order(
    settings: Settings,
) -> None:
    broker = create_broker(settings)
    await broker.connect()
    try:
        slow = await broker.subscribe("handler:B1", maxsize=2)
        fast = await broker.subscribe("handler:B1", maxsize=100)
        bodies = [encode_body("call.ringing", n, {"n": n}) for n in range(5)]
        for body in bodies:
            await broker.publish("handler:B1", body)
        got = [await asyncio.wait_for(fast.queue.get(), 5) for _ in bodies]
        assert [g.cursor for g in got] == sorted(g.cursor for g in got)
        assert [g.text.split('"data":')[1] for g in got] == [f'{{"n":{n}}}}}' for n in range(5)]
        assert slow.overflowed.is_set() and slow.queue.qsize() == 2
        slow.close(), fast.close()
    finally:
        await broker.disconnect()


async def test_read_after_gives_exactly_the_rest_or_cursor_gone(settings: Settings) -> None:
    broker = create_broker(settings)
    await broker.connect()
    try:
        assert await broker.read_after("supervisors", (0, 0)) == []  # empty: from the start
        for n in range(3):
            await broker.publish("supervisors", encode_body("call.offered", n, {}))
        everything = await broker.read_after("supervisors", (0, 0))
        assert len(everything) == 3
        assert await broker.tail("supervisors") == everything[-1].cursor
        rest = await broker.read_after("supervisors", everything[0].cursor)
        assert [r.cursor for r in rest] == [e.cursor for e in everything[1:]]
        assert await broker.read_after("supervisors", everything[-1].cursor) == []
        with pytest.raises(CursorGone):
            await broker.read_after("supervisors", (1, 0))  # never handed out here
        with pytest.raises(CursorGone):
            await broker.read_after("handler:nobody", (5, 0))
    finally:
        await broker.disconnect()


async def test_publish_many_keeps_each_channels_order_and_reaches_every_subscriber(
    settings: Settings,
) -> None:
    broker = create_broker(settings)
    await broker.connect()
    try:
        handler = await broker.subscribe("handler:M1", maxsize=100)
        supervisors = await broker.subscribe("supervisors", maxsize=100)
        messages = [
            (channel, encode_body("call.offered", n, {"n": n, "on": channel}))
            for n in range(4)
            for channel in ("supervisors", "handler:M1")
        ]
        await broker.publish_many(messages)
        await broker.publish_many([])  # nothing to send: no error, nothing delivered
        for sub, channel in ((handler, "handler:M1"), (supervisors, "supervisors")):
            got = [await asyncio.wait_for(sub.queue.get(), 5) for _ in range(4)]
            assert [g.cursor for g in got] == sorted(g.cursor for g in got)
            assert [g.text.split('"data":')[1] for g in got] == [
                f'{{"n":{n},"on":"{channel}"}}}}' for n in range(4)
            ]
            assert sub.queue.empty()
            retained = await broker.read_after(channel, (0, 0))
            assert [r.cursor for r in retained] == [g.cursor for g in got]
        handler.close(), supervisors.close()
    finally:
        await broker.disconnect()
