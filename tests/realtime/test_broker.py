"""The broker on the run's backend (in-process or Redis): cursors, resume rules, bounded
per-subscriber queues."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from app.config import Settings
from app.realtime import create_broker
from app.realtime.broker import BLOCKED, DUPLICATE, PUBLISHED, CursorGone, Message
from app.realtime.envelope import encode_body
from app.realtime.redis import RedisBroker
from tests.support.servers import throwaway_redis, wait_until


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


async def test_publish_messages_keeps_each_channels_order_and_reaches_every_subscriber(
    settings: Settings,
) -> None:
    broker = create_broker(settings)
    await broker.connect()
    try:
        handler = await broker.subscribe("handler:M1", maxsize=100)
        supervisors = await broker.subscribe("supervisors", maxsize=100)
        channels = ("supervisors", "handler:M1")
        messages = [
            Message(
                channels,
                tuple(encode_body("call.offered", n, {"n": n, "on": c}) for c in channels),
            )
            for n in range(4)
        ]
        assert await broker.publish_messages(messages) == [PUBLISHED] * 4
        assert await broker.publish_messages([]) == []  # nothing to send: nothing delivered
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


def _numbered(call_id: int, seq: int, lenient: bool = False) -> Message:
    body = encode_body("call.ringing", call_id, {"seq": seq})
    return Message(("supervisors",), (body,), call_id, seq, lenient)


async def test_the_gate_takes_a_calls_messages_once_each_and_in_order(settings: Settings) -> None:
    broker = create_broker(settings)
    await broker.connect()
    call = 900_000 + int(time.time() * 1000) % 100_000  # a gate of its own on a shared Redis
    try:
        sub = await broker.subscribe("supervisors", maxsize=100)
        # 2 before 1: blocked (nothing sent); 1 then 2 in one call: both, in order.
        assert await broker.publish_messages([_numbered(call, 2)]) == [BLOCKED]
        assert await broker.publish_messages([_numbered(call, 1), _numbered(call, 2)]) == [
            PUBLISHED, PUBLISHED
        ]  # fmt: skip
        # Sent again (a relay after the committer died before marking it): dropped.
        assert await broker.publish_messages([_numbered(call, 2), _numbered(call, 1)]) == [
            DUPLICATE, DUPLICATE
        ]  # fmt: skip
        # A gap the store vouches for (the gate was lost): lenient passes it, then in order.
        assert await broker.publish_messages([_numbered(call, 5)]) == [BLOCKED]
        assert await broker.publish_messages([_numbered(call, 5, True), _numbered(call, 6)]) == [
            PUBLISHED, PUBLISHED
        ]  # fmt: skip
        got = [json.loads((await asyncio.wait_for(sub.queue.get(), 5)).text) for _ in range(4)]
        assert [m["data"]["seq"] for m in got] == [1, 2, 5, 6]
        assert sub.queue.empty()
        sub.close()
    finally:
        await broker.disconnect()


async def test_a_subscription_right_after_a_redis_restart_is_served() -> None:
    """After a restart the pool's connections are closed by the server: the first read on
    one must be retried on a fresh connection, not refused (a socket would get 1013 while
    Redis answers)."""
    with throwaway_redis() as server:
        broker = RedisBroker(server.url, "fc:restart:", 60)
        await broker.connect()
        try:
            subs = [await broker.subscribe(f"c{n}", 10) for n in range(3)]
            await broker.ping()
            server.stop()
            server.start()
            wait_until(server._answers, 10, what="redis back")
            again = await broker.subscribe("c0", 10)  # raised BrokerUnavailable before
            assert again.baseline == (0, 0)
            for sub in (*subs, again):
                sub.close()
        finally:
            await broker.disconnect()
