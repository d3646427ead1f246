"""The transactional outbox (issue 18) in one process, on the run's backend: each event's
message is a row written with the event, numbered per call, published at once and marked sent;
what a publish could not deliver (broker away, the committer gone) stays a row and the relay
sends it, in order, once; rolled-back messages are never written; sent rows are purged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from app import db_direct
from app.calls import repository as repo
from app.calls.models import Call
from app.config import Settings
from app.db import unit_of_work
from app.realtime.broker import BrokerUnavailable, Message, Subscription
from app.realtime.envelope import encode_body
from app.realtime.models import OutboxMessage
from app.realtime.outbox import outbox_backlog, purge_sent, stage
from app.resources import Resources
from tests.calls.test_pipeline import fast, running
from tests.support.servers import eventually, waiting_for_a_lock
from tests.telephony.support import lifecycle, post_signed

_START = datetime.now(UTC) - timedelta(minutes=1)


@asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[tuple[Resources, httpx.AsyncClient]]:
    # The relay's own loop out of the way (an hour between passes): the tests call it.
    async with running(fast(settings, outbox_poll_seconds=3600.0, outbox_grace_seconds=0.0)) as (
        app, http,
    ):  # fmt: skip
        yield app.state.resources, http


async def _drain(sub: Subscription, n: int) -> list[dict[str, Any]]:
    return [json.loads((await asyncio.wait_for(sub.queue.get(), 10)).text) for _ in range(n)]


async def lifecycle_frames(
    supervisors: Subscription, handler: Subscription
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A whole call's frames (`lifecycle`), numbered in order: the supervisors see all four,
    the handler's desk from the ringing on."""
    seen = await _drain(supervisors, 4)
    desk = await _drain(handler, 3)
    assert [m["data"]["seq"] for m in seen] == [1, 2, 3, 4]
    assert [(m["type"], m["data"]["seq"]) for m in desk] == [
        ("call.ringing", 2), ("call.answered", 3), ("call.ended", 4)
    ]  # fmt: skip
    return seen, desk


async def _nothing_then_marker(resources: Resources, sub: Subscription) -> None:
    """Nothing reached `sub` so far: a marker published now is the next thing it receives
    (the channel keeps order), so waiting for it waits for anything sent before it."""
    await resources.broker.publish(sub.channel, encode_body("test.marker", None, {}))
    (got,) = await _drain(sub, 1)
    assert got["type"] == "test.marker", got


async def _rows(resources: Resources) -> list[OutboxMessage]:
    async with resources.sessions() as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_each_event_is_a_numbered_row_published_at_once_and_marked_sent(
    settings: Settings,
) -> None:
    async with _service(settings) as (resources, http):
        supervisors = await resources.broker.subscribe("supervisors", maxsize=100)
        handler = await resources.broker.subscribe("handler:H1001", maxsize=100)
        for body in lifecycle("ob-1", _START):
            assert (await post_signed(http, body)).status_code == 202
        # Published by the committing worker, not the relay (its loop sleeps for an hour).
        seen, desk = await lifecycle_frames(supervisors, handler)
        rows = await _rows(resources)
        assert [(r.seq, r.channels) for r in rows] == [
            (1, ["supervisors"]),
            (2, ["handler:H1001", "supervisors"]),
            (3, ["handler:H1001", "supervisors"]),
            (4, ["handler:H1001", "supervisors"]),
        ]
        async with resources.sessions() as session:
            call = await session.scalar(select(Call).where(Call.external_id == "ob-1"))
            assert call is not None and call.frame_seq == 4

        async def all_marked() -> bool:
            return all(r.sent_at is not None for r in await _rows(resources))

        await eventually(all_marked, what="the rows marked sent (batched, after the publish)")
        assert resources.outbox is not None and await resources.outbox.relay_once(0.0) == 0
        supervisors.close(), handler.close()


async def test_what_the_broker_did_not_take_waits_in_the_table_and_the_relay_sends_it_once(
    settings: Settings,
) -> None:
    async with _service(settings) as (resources, http):
        broker = resources.broker
        supervisors = await broker.subscribe("supervisors", maxsize=100)
        original = broker.publish_messages

        async def away(messages: Any) -> list[int]:
            raise BrokerUnavailable("ConnectionError")

        broker.publish_messages = away  # type: ignore[method-assign]
        events = lifecycle("ob-2", _START)
        for body in events[:2]:  # accepted (stored) while the broker is away
            assert (await post_signed(http, body)).status_code == 202
        async with resources.sessions() as session:
            count, age = await outbox_backlog(session)
        assert count == 2 and age is not None and age >= 0
        broker.publish_messages = original  # type: ignore[method-assign]
        # Back: a new event of the call may not overtake the two waiting (the gate blocks it).
        assert (await post_signed(http, events[2])).status_code == 202
        assert resources.outbox is not None
        assert await resources.outbox.relay_once(0.0) >= 2
        got = await _drain(supervisors, 3)
        assert [m["data"]["seq"] for m in got] == [1, 2, 3]
        await resources.outbox.relay_once(0.0)  # nothing twice, whoever sends it again
        # The fast path's own retry of the third may still be out, and its mark waiting to be
        # written: stopped (the marks written) first, so no mark lands after the reset below.
        await resources.outbox.stop()
        async with resources.sessions() as session:
            await session.execute(update(OutboxMessage).values(sent_at=None))
            await session.commit()
        assert await resources.outbox.relay_once(0.0) == 3  # found already taken: marked
        await _nothing_then_marker(resources, supervisors)
        async with resources.sessions() as session:
            assert await outbox_backlog(session) == (0, None)
        supervisors.close()


async def test_a_commit_without_its_publish_is_sent_by_the_relay(settings: Settings) -> None:
    # The committer dies between its commit and its publish: here, a process without a relay
    # only stores (resources.outbox None), as a killed worker leaves its rows.
    async with _service(settings) as (resources, http):
        relay = resources.outbox
        assert relay is not None
        handler = await resources.broker.subscribe("handler:H1001", maxsize=100)
        resources.outbox = None
        for body in lifecycle("ob-3", _START)[:3]:
            assert (await post_signed(http, body)).status_code == 202
        await _nothing_then_marker(resources, handler)
        resources.outbox = relay
        assert await relay.relay_once(0.0) == 3
        got = await _drain(handler, 2)
        assert [(m["type"], m["data"]["seq"]) for m in got] == [
            ("call.ringing", 2), ("call.answered", 3)
        ]  # fmt: skip
        handler.close()


async def test_a_rolled_back_message_is_never_written_and_sent_rows_are_purged(
    settings: Settings,
) -> None:
    async with _service(settings) as (resources, _http):
        async with resources.sessions() as session:
            await session.scalar(select(Call.id).limit(1))  # in a transaction, as publishers are
            stage(session, resources, "alert.raised", None, [("supervisors", {"n": 1})])
            await session.rollback()
            await session.commit()  # a later commit of the session writes nothing of it
        assert await _rows(resources) == []
        async with unit_of_work(resources.sessions) as session:  # commit, then the publish
            stage(session, resources, "alert.raised", None, [("supervisors", {"n": 2})])
        rows = await _rows(resources)
        assert [r.seq for r in rows] == [None]  # outside any call: no number, no gate

        async def marked() -> bool:
            return all(r.sent_at is not None for r in await _rows(resources))

        await eventually(marked, what="the row marked sent")
        async with resources.sessions() as session, session.begin():
            assert await purge_sent(session, 3600) == 0  # sent just now: kept a while
            assert await purge_sent(session, 0) == 1
        assert await _rows(resources) == []


def test_message_bodies_round_trip_through_a_row() -> None:
    # Bodies are compact JSON (no raw newline): one per line in `bodies`.
    body = json.dumps({"text": "line one\nline two"}, separators=(",", ":"))
    assert "\n" not in body
    message = Message(("a", "b"), (body, body))
    assert tuple("\n".join(message.bodies).split("\n")) == message.bodies


async def test_a_call_locked_by_the_ingest_is_numbered_in_the_insert_others_as_before(
    settings: Settings, backend: str
) -> None:
    # The ingest's lock returns the call's number, so the commit numbers its messages in the
    # statement that writes them (PostgreSQL); a call the transaction did not lock is numbered
    # by its own UPDATE first. Either way the numbers run on, across both, without a gap or
    # a repeat, also for two transactions of one call at once (the second waits for the lock).
    async with _service(settings) as (resources, _http):
        async with unit_of_work(resources.sessions) as session:
            (call,) = (
                await repo.lock_or_create_calls(session, "t", [("num-1", "offered")])
            ).values()
        seen: list[str] = []

        async def in_transaction(
            lock: bool, messages: int, gate: asyncio.Event | None = None,
            locked: asyncio.Event | None = None,
        ) -> None:  # fmt: skip
            async with unit_of_work(resources.sessions) as session:
                conn = await db_direct.driver(session)
                log = lambda record: seen.append(record.query)  # noqa: E731
                if conn is not None:
                    conn.raw.add_query_logger(log)
                try:
                    if lock:
                        await repo.lock_or_create_calls(session, "t", [("num-1", "offered")])
                        if locked is not None:
                            locked.set()
                        if gate is not None:
                            await gate.wait()  # holds the lock while the other one asks for it
                    for n in range(messages):
                        stage(session, resources, "call.note", call.id, [("supervisors", {"n": n})])
                    await session.commit()
                finally:
                    if conn is not None:
                        conn.raw.remove_query_logger(log)

        def statements(start: str) -> int:
            return sum(1 for q in seen if q.startswith(start))

        await in_transaction(lock=True, messages=2)
        if backend == "production":
            assert (statements("UPDATE call SET frame_seq"), statements("WITH bump AS")) == (0, 1)
        seen.clear()
        await in_transaction(lock=False, messages=1)
        if backend == "production":
            assert (statements("UPDATE call SET frame_seq"), statements("WITH bump AS")) == (1, 0)
        gate, locked = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(in_transaction(lock=True, messages=2, gate=gate, locked=locked))
        try:
            await asyncio.wait_for(locked.wait(), 10)
            second = asyncio.create_task(in_transaction(lock=True, messages=3))
            if backend == "production":
                await eventually(
                    lambda: waiting_for_a_lock(resources.engine), what="the second waits"
                )
        finally:
            gate.set()  # whatever happened: no transaction left open
        await asyncio.gather(first, second)
        rows = [r for r in await _rows(resources) if r.type == "call.note"]
        assert sorted(r.seq for r in rows) == [1, 2, 3, 4, 5, 6, 7, 8]
        # Numbers follow the row ids (commit order of a call's messages), as the relay needs.
        assert [r.seq for r in rows] == sorted(r.seq for r in rows)
        for row in rows:
            assert [json.loads(b)["data"]["seq"] for b in row.bodies.split("\n")] == [row.seq]
        async with resources.sessions() as session:
            stored = await session.get(Call, call.id)
            assert stored is not None and stored.frame_seq == 8


async def test_a_commit_marks_the_rows_published_before_it_in_its_own_statement(
    settings: Settings, backend: str
) -> None:
    # The timer that writes marks on its own is an hour away: only a commit can mark here.
    quiet = fast(
        settings, outbox_poll_seconds=3600.0, outbox_grace_seconds=7200.0,
        outbox_mark_seconds=3600.0,
    )  # fmt: skip
    async with running(quiet) as (app, http):
        resources: Resources = app.state.resources
        relay = resources.outbox
        assert relay is not None
        first = lifecycle("ride-1", _START)[0]
        assert (await post_signed(http, first)).status_code == 202
        published = [r.id for r in await _rows(resources)]
        assert published and relay.marks_to_ride() == published  # waiting for their mark

        second = lifecycle("ride-2", _START)[0]
        assert (await post_signed(http, second)).status_code == 202
        rows = await _rows(resources)
        marked = {r.id for r in rows if r.sent_at is not None}
        later = [r.id for r in rows if r.id not in published]
        if backend == "production":
            # The second event's outbox statement marked the first's rows; its own wait.
            assert marked == set(published)
            assert relay.marks_to_ride() == later
        else:
            # SQLite: no such statement; the marks wait for the timer.
            assert marked == set()
            assert relay.marks_to_ride() == published + later
