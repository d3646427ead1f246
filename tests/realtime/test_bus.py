"""The Redis broker's per-channel buses (issue 19): a process receives only the messages of
the channels it has listeners for, a listener that joins while messages are being published
gets every one after its baseline once, the last listener leaving unsubscribes, and a Redis
restart loses nothing. Several brokers on one Redis and prefix stand for several processes;
on a throwaway Redis (and a prefix per test), so that what `PUBSUB` shows is theirs alone."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from app.cache.redis import connect
from app.realtime import redis as redis_broker
from app.realtime.broker import BrokerUnavailable, Delivered, Message, Subscription
from app.realtime.envelope import Cursor, encode_body
from app.realtime.redis import RedisBroker
from tests.support.servers import ThrowawayRedis, eventually, throwaway_redis, wait_until


@pytest.fixture(scope="module")
def redis_server() -> Iterator[ThrowawayRedis]:
    with throwaway_redis() as server:
        yield server


@contextlib.asynccontextmanager
async def processes(url: str, count: int) -> AsyncIterator[list[RedisBroker]]:
    """`count` brokers on one Redis and a prefix of their own, each upstream connected."""
    prefix = f"fcbus:{uuid.uuid4().hex[:8]}:"
    brokers = [RedisBroker(url, prefix, 60) for _ in range(count)]
    try:
        for broker in brokers:
            await broker.connect()
            await _upstream_up(broker)
        yield brokers
    finally:
        for broker in brokers:
            await broker.disconnect()


async def _upstream_up(broker: RedisBroker) -> None:
    async def up() -> bool:
        return broker.upstream_ok.is_set()

    await eventually(up, what="the upstream connection")


async def _subscribers(broker: RedisBroker, channel: str) -> int:
    """How many connections Redis has subscribed to `channel`'s bus."""
    [(_, count)] = await broker.client.pubsub_numsub(broker.bus_prefix + channel)
    return int(count)


async def _buses(broker: RedisBroker) -> set[str]:
    """The channels whose bus some connection is subscribed to."""
    found = await broker.client.pubsub_channels(broker.bus_prefix + "*")
    return {name.decode()[len(broker.bus_prefix) :] for name in found}


async def _get(sub: Subscription) -> Delivered:
    return await asyncio.wait_for(sub.queue.get(), 10)


async def _next_live(sub: Subscription) -> Delivered:
    """The next message after the listener's baseline (what came before, a socket skips)."""
    got = await _get(sub)
    while got.cursor <= sub.baseline:
        got = await _get(sub)
    return got


def _body(n: int) -> str:
    return encode_body("call.ringing", n, {"n": n})


async def test_a_process_receives_only_the_channels_it_listens_to(
    redis_server: ThrowawayRedis,
) -> None:
    async with processes(redis_server.url, 3) as (a, b, publisher):
        desk = await a.subscribe("handler:A1", maxsize=100)
        board = await b.subscribe("supervisors", maxsize=100)
        other_desk = await b.subscribe("handler:B1", maxsize=100)
        assert await _buses(a) == {"handler:A1", "supervisors", "handler:B1"}
        for channel in ("handler:A1", "supervisors", "handler:B1"):
            assert await _subscribers(a, channel) == 1

        # Both scripts: a call's messages to its handler and the supervisors, then a marker
        # on B's desk, published last (one connection gets its messages in publishing order).
        messages = [
            Message(("supervisors", "handler:A1"), (_body(n), _body(n)), call_id=1, seq=n + 1)
            for n in range(20)
        ]
        assert await publisher.publish_messages(messages) == [1] * 20
        await publisher.publish("handler:B1", _body(99))

        assert (await _get(other_desk)).text.endswith('{"n":99}}')
        got_a = [await _get(desk) for _ in range(20)]
        got_b = [await _get(board) for _ in range(20)]
        for got in (got_a, got_b):
            assert [g.text.split('"data":')[1] for g in got] == [
                f'{{"n":{n}}}}}' for n in range(20)
            ]
        # B got the supervisors' 20 and its marker, never A's desk; A got its desk's 20 only;
        # the publisher, listening to nothing, got nothing.
        assert (a.received, b.received, publisher.received) == (20, 21, 0)
        assert desk.queue.empty() and board.queue.empty() and other_desk.queue.empty()
        for sub in (desk, board, other_desk):
            sub.close()


async def test_the_last_listener_leaving_unsubscribes(redis_server: ThrowawayRedis) -> None:
    async with processes(redis_server.url, 2) as (a, publisher):
        first = await a.subscribe("handler:L1", maxsize=100)
        second = await a.subscribe("handler:L1", maxsize=100)
        marker = await a.subscribe("handler:M1", maxsize=100)
        assert await _subscribers(a, "handler:L1") == 1  # one per process, not per listener
        first.close()
        assert await _subscribers(a, "handler:L1") == 1
        second.close()

        async def unsubscribed() -> bool:
            return await _subscribers(a, "handler:L1") == 0

        await eventually(unsubscribed, what="UNSUBSCRIBE of the last listener's channel")
        assert await _buses(a) == {"handler:M1"}
        await publisher.publish("handler:L1", _body(1))
        await publisher.publish("handler:M1", _body(2))
        await _get(marker)
        assert a.received == 1  # the marker only
        marker.close()
        await eventually(unsubscribed, what="nothing subscribed")
        assert await _buses(a) == set()


async def _turns(count: int) -> None:
    """Let the event loop run `count` times: varies where the next step lands among the
    broker's own tasks (not a wait for anything: what must hold is asserted after)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_listeners_coming_and_going_at_once_end_subscribed_to_exactly_theirs(
    redis_server: ThrowawayRedis,
) -> None:
    async with processes(redis_server.url, 2) as (a, publisher):
        for n in range(40):
            channel = f"handler:R{n % 3}"
            # Left and listened to again at once, with 0-3 turns of the loop in between: the
            # UNSUBSCRIBE may or may not have gone out, the channel must end subscribed.
            gone = await a.subscribe(channel, maxsize=100)
            gone.close()
            await _turns(n % 4)
            # Several at once, one of them dropped while it subscribes (its socket went away).
            joining = [asyncio.create_task(a.subscribe(channel, maxsize=100)) for _ in range(3)]
            dropped = asyncio.create_task(a.subscribe(channel, maxsize=100))
            await _turns(n % 5)
            dropped.cancel()
            subs = await asyncio.gather(*joining)
            with contextlib.suppress(asyncio.CancelledError):
                (await dropped).close()
            assert await _subscribers(a, channel) == 1
            await publisher.publish(channel, _body(n))
            for sub in subs:
                assert (await _next_live(sub)).text.endswith(f'{{"n":{n}}}}}')
                sub.close()
            assert channel not in a.fanout.feeds

        async def none_left() -> bool:
            return await _buses(a) == set()

        await eventually(none_left, what="every channel unsubscribed")


class HeldRelay:
    """A TCP relay to Redis for a broker's upstream connection whose client-to-Redis direction
    can be held: what the broker writes waits here (and is kept in `held`) until released, as
    on a slow link. Redis's answers pass freely."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.held = b""
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def __aenter__(self) -> HeldRelay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._open.set()

    def hold(self) -> None:
        self.held = b""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def _serve(self, client: asyncio.StreamReader, back: asyncio.StreamWriter) -> None:
        redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, held: bool) -> None:
            while data := await src.read(65536):
                if held and not self._open.is_set():
                    self.held += data
                    await self._open.wait()
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(
            pipe(client, redis_writer, True), pipe(redis_reader, back, False),
            return_exceptions=True,
        )  # fmt: skip


@contextlib.asynccontextmanager
async def _behind(relay: HeldRelay, url: str, prefix: str) -> AsyncIterator[RedisBroker]:
    """A broker whose upstream connection goes through `relay` (the rest straight to Redis)."""
    broker = RedisBroker(url, prefix, 60)
    broker._bus_client = connect(relay.url, socket_timeout=None, health_check_interval=5)
    await broker.connect()
    try:
        await _upstream_up(broker)
        yield broker
    finally:
        await broker.disconnect()


async def test_a_listeners_baseline_is_read_only_once_redis_confirmed_its_subscribe(
    redis_server: ThrowawayRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        HeldRelay(redis_server.port) as relay,
        processes(redis_server.url, 1) as (publisher,),
        _behind(relay, redis_server.url, publisher.prefix) as listener,
    ):
        relay.hold()
        joining = asyncio.create_task(listener.subscribe("handler:H1", maxsize=100))

        async def subscribe_sent() -> bool:
            return b"SUBSCRIBE" in relay.held

        await eventually(subscribe_sent, what="the SUBSCRIBE written")
        # Redis has not seen the SUBSCRIBE: this reaches no subscription of the listener's,
        # so its baseline must come after it (read once the SUBSCRIBE is confirmed).
        await publisher.publish("handler:H1", _body(1))
        assert not joining.done()
        relay.release()
        sub = await joining
        await publisher.publish("handler:H1", _body(2))
        [after] = await listener.read_after("handler:H1", sub.baseline)
        got = await _next_live(sub)
        assert got == after and got.text.endswith('{"n":2}}')
        sub.close()

        # A SUBSCRIBE Redis does not confirm in time (a hung Redis): try again later, and
        # nothing is left registered; once the link moves again the channel is unsubscribed.
        monkeypatch.setattr(redis_broker, "CONFIRM_TIMEOUT", 0.2)
        relay.hold()
        with pytest.raises(BrokerUnavailable):
            await listener.subscribe("handler:H2", maxsize=100)
        assert "handler:H2" not in listener.fanout.feeds
        relay.release()

        async def nothing_subscribed() -> bool:
            return await _buses(publisher) == set()

        await eventually(nothing_subscribed, what="UNSUBSCRIBE after the timeout")


async def _while_publishing(
    publisher: RedisBroker,
    listener: RedisBroker,
    channels: tuple[str, ...],
    join: Callable[[], Awaitable[list[Subscription]]],
) -> None:
    """Publish on `channels` in turn without pause while `join` has listeners join, and 20
    rounds more after; each listener must get every message after its baseline once, in
    order."""
    some_published, joined = asyncio.Event(), asyncio.Event()

    async def publish() -> None:
        n = after_join = 0
        while after_join < 20:
            for channel in channels:
                await publisher.publish(channel, _body(n))
            n += 1
            if n == 5:
                some_published.set()
            if joined.is_set():
                after_join += 1

    publishing = asyncio.create_task(publish())
    await some_published.wait()
    subs = await join()
    joined.set()
    await publishing
    for sub in subs:
        last: Cursor = await listener.tail(sub.channel)
        expected = [d.cursor for d in await listener.read_after(sub.channel, sub.baseline)]
        assert expected and expected[-1] == last
        got: list[Cursor] = []
        while not got or got[-1] < last:
            item = await _get(sub)
            if item.cursor > sub.baseline:  # what came before is skipped by the socket
                got.append(item.cursor)
        assert got == expected, f"{sub.channel}: gap or duplicate after {sub.baseline}"
        assert sub.queue.empty()
        sub.close()


async def test_a_listener_joining_while_messages_are_published_misses_nothing(
    redis_server: ThrowawayRedis,
) -> None:
    async with processes(redis_server.url, 2) as (publisher, listener):
        for n in range(30):
            channel = f"handler:J{n}"

            async def join(channel: str = channel, count: int = 1 + n % 3) -> list[Subscription]:
                # The first SUBSCRIBEs; the others wait for the same confirmation.
                return list(
                    await asyncio.gather(
                        *(listener.subscribe(channel, 10_000) for _ in range(count))
                    )
                )

            await _while_publishing(publisher, listener, (channel,), join)


async def test_listeners_joining_while_the_upstream_connection_drops_miss_nothing(
    redis_server: ThrowawayRedis,
) -> None:
    async with processes(redis_server.url, 2) as (publisher, listener):
        for n in range(10):
            desk, board = f"handler:K{n}", f"supervisors:K{n}"

            async def join(desk: str = desk, board: str = board) -> list[Subscription]:
                first = await listener.subscribe(desk, 10_000)
                # Redis stays up and publishing goes on: the reconnection must read each
                # channel after its last cursor, and those joining meanwhile (a channel
                # listened to already, a new one) must get what follows their baseline.
                await publisher.client.client_kill_filter(_type="pubsub")
                return [
                    first,
                    await listener.subscribe(desk, 10_000),
                    await listener.subscribe(board, 10_000),
                ]

            await _while_publishing(publisher, listener, (desk, board), join)
            await _upstream_up(listener)


async def _publish_after_restart(broker: RedisBroker, channel: str, body: str) -> None:
    """As the outbox relay does: again when a command met a connection Redis closed."""
    for _ in range(3):
        try:
            await broker.publish(channel, body)
            return
        except BrokerUnavailable:
            continue
    raise AssertionError("Redis is back but publishing fails")


async def test_a_redis_restart_loses_nothing_and_every_channel_is_subscribed_again() -> None:
    with throwaway_redis(persist=True) as server:
        async with processes(server.url, 2) as (listener, publisher):
            channels = ("handler:X1", "supervisors")
            subs = {c: await listener.subscribe(c, maxsize=100) for c in channels}
            for n in range(3):
                for channel in channels:
                    await publisher.publish(channel, _body(n))
            server.stop()
            server.start()
            wait_until(server._answers, 10, what="redis back")
            # At once, before the listener's upstream is back (its backoff): these come from
            # the streams, read after the last cursor delivered, as each channel is confirmed.
            for n in range(3, 8):
                for channel in channels:
                    await _publish_after_restart(publisher, channel, _body(n))
            # A channel listened to now (the upstream may still be down) is subscribed too.
            late = await listener.subscribe("handler:X2", maxsize=100)
            await _upstream_up(listener)
            await publisher.publish("handler:X2", _body(8))
            for n in range(8, 10):
                for channel in channels:
                    await publisher.publish(channel, _body(n))

            for channel, sub in subs.items():
                got = [await _get(sub) for _ in range(10)]
                assert [g.text.split('"data":')[1] for g in got] == [
                    f'{{"n":{n}}}}}' for n in range(10)
                ], channel
                assert sub.queue.empty()
                assert await _subscribers(listener, channel) == 1
            assert (await _next_live(late)).text.endswith('{"n":8}}')
            for sub in (*subs.values(), late):
                sub.close()
