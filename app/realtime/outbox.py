"""The transactional outbox (issue 18): no frame lives only in a process's memory.

Publishers `stage` a message in the transaction that produces it. When that transaction
commits (a `before_commit` hook, so every commit path does it), its staged messages are
numbered per call (`call.frame_seq`, one UPDATE: the call's row lock orders two transactions'
messages of one call) and written to `outbox_message` (one INSERT), atomically with what they
announce. Then:

- the fast path: the worker that committed publishes its own rows at once, in order, in one
  broker call (no poll delay), and marks them sent off the request's path: on PostgreSQL in
  the outbox statement of its next commit (`_marks_cte`, no round trip of its own while events
  keep coming), else in one UPDATE for every row still unmarked OUTBOX_MARK_SECONDS after it
  was published;
- the relay (one per process, `Relay`): every OUTBOX_POLL_SECONDS (per host: each of a
  host's HOST_WORKERS workers every that many periods) it takes the unsent rows
  older than OUTBOX_GRACE_SECONDS, oldest first (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
  workers never take the same rows; SQLite has one process), publishes and marks them. It
  covers what a worker left behind: killed between commit and publish, Redis away, a publish
  blocked behind an earlier message of the same call.

The broker's gate (app.realtime.broker) takes a call's message n only after n-1 and never twice,
so a row published by its committer and again by a relay (the committer died before marking
it) reaches the channels once, and a call's messages never overtake each other whoever sends
them. Sent rows are deleted after OUTBOX_RETENTION_SECONDS (`purge_sent`, housekeeping).

Fault injection for the drills: FC_FAULT_KILL_AFTER_COMMIT=N makes the process exit at once
(`os._exit`) after its N-th commit that wrote messages, before publishing them. Read once at
start; unset (always, outside the drills) it costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, case, delete, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app import db_riders, json_codec, tracing
from app.audit import chain as audit_chain
from app.calls.models import Call
from app.calls.repository import locked_frame_seqs
from app.calls.step import ExpressContext
from app.db import after_commit, is_postgres, utcnow
from app.db_direct import driver, driver_sync, insert_many, unnest_insert_sql, wait
from app.realtime.broker import BLOCKED, BrokerUnavailable, Message
from app.realtime.envelope import encode_body
from app.realtime.models import OutboxMessage
from app.resources import Resources
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_STAGED = "outbox_staged"
FAULT_KILL_AFTER_COMMIT = "FC_FAULT_KILL_AFTER_COMMIT"
# Rows per relay pass, and per UPDATE marking rows sent.
BATCH = 500
# How often a publish blocked behind the same call's earlier message is tried again at once
# (that message is usually being published by another worker right now), before the relay.
BLOCKED_RETRIES = 3

_table: Table = OutboxMessage.__table__  # type: ignore[assignment]
_call: Table = Call.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class _Staged:
    call_id: int | None
    type: str
    channels: tuple[str, ...]
    # A call message's data per channel (its `seq` is added when numbered), or ready bodies.
    datas: tuple[Mapping[str, object], ...] = ()
    bodies: tuple[str, ...] = ()


def stage(
    session: AsyncSession,
    resources: Resources,
    type_: str,
    call_id: int | None,
    deliveries: Sequence[tuple[str, Mapping[str, object]]],
) -> None:
    """Publish one message when `session` commits: `deliveries` are (channel, data) pairs,
    one frame each (the same message as each channel sees it). A call's message carries the
    call's next number as `data.seq`."""
    if not deliveries:
        return
    channels = tuple(channel for channel, _ in deliveries)
    datas = tuple(data for _, data in deliveries)
    _queue(session, resources, _Staged(call_id, type_, channels, datas=datas))


def stage_body(session: AsyncSession, resources: Resources, channel: str, body: str) -> None:
    """Publish a ready body (a control message, outside any call) when `session` commits."""
    _queue(session, resources, _Staged(None, "control", (channel,), bodies=(body,)))


def _queue(session: AsyncSession, resources: Resources, staged: _Staged) -> None:
    held: tuple[Resources, list[_Staged]] | None = session.info.get(_STAGED)
    if held is None:
        held = session.info[_STAGED] = (resources, [])
    held[1].append(staged)


# --- writing, in the committing transaction ---------------------------------------------


def _counts(staged: list[_Staged]) -> dict[int, int]:
    """How many numbered messages each call has among `staged`."""
    counts: dict[int, int] = {}
    for item in staged:
        if item.call_id is not None and item.datas:
            counts[item.call_id] = counts.get(item.call_id, 0) + 1
    return counts


def _numbered(sync: Session, counts: dict[int, int]) -> dict[int, int]:
    """Take the next numbers of each call for its staged messages (one UPDATE, which also
    locks the call rows: a later transaction's messages of the call get larger numbers and
    larger row ids); the number before the first, per call."""
    if not counts:
        return {}
    direct = driver_sync(sync)
    if direct is not None:
        rows = wait(direct.fetch(_NUMBER_PG, list(counts), list(counts.values())))
    else:
        bump = case(counts, value=_call.c.id, else_=0)
        rows = sync.execute(
            update(_call)
            .where(_call.c.id.in_(list(counts)))
            .values(frame_seq=_call.c.frame_seq + bump)
            .returning(_call.c.id, _call.c.frame_seq)
        ).all()
    return {call_id: last - counts[call_id] for call_id, last in rows}


# `_numbered` on PostgreSQL: one text whatever the number of calls (a plan prepared once).
_NUMBER_PG = (
    "UPDATE call SET frame_seq = call.frame_seq + x.n"
    " FROM unnest($1::bigint[], $2::int[]) AS x(id, n)"
    " WHERE call.id = x.id RETURNING call.id, call.frame_seq"
)

# When the transaction already holds every call's row lock and knows its number (the ingest
# locked them: `locked_frame_seqs`), the numbers are taken in the statement that writes the
# rows: one round trip instead of two. The rows' ids sort back into their order.
_BUMP_PG = (
    "bump AS (UPDATE call SET frame_seq = call.frame_seq + x.n"
    " FROM unnest($1::bigint[], $2::int[]) AS x(id, n) WHERE call.id = x.id)"
)
_INSERT_PG = unnest_insert_sql(
    "outbox_message",
    [
        ("call_id", "bigint"),
        ("seq", "int"),
        ("type", "text"),
        ("channels", "jsonb"),
        ("bodies", "text"),
        ("created_at", "timestamptz"),
    ],
    first=3,
    returning="id",
)
_NUMBER_AND_INSERT_PG = f"WITH {_BUMP_PG} {_INSERT_PG}"
_FIRST_RIDER = 9  # the parameters after the statement's own eight


def _marks_cte(first: int) -> str:
    """This process's published rows marked sent by a commit's outbox statement ($first: the
    time, $first+1: the ids). Rows a relay holds (taking them again after the grace) are
    skipped, not waited for: that relay marks them itself, and an event's transaction must
    not queue behind a relay's publish."""
    return (
        f"marked AS (UPDATE outbox_message SET sent_at = ${first} WHERE id IN ("
        f"SELECT id FROM outbox_message WHERE id = ANY(${first + 1}::bigint[])"
        " FOR UPDATE SKIP LOCKED))"
    )


# With the audit chain's append riding too (app.audit.chain.ride): recursive, and each row
# returned says how many audit rows it wrote.
_INSERT_AUDITED_PG = _INSERT_PG + f", {audit_chain.AUDITED}"


def _number_and_insert_pg(riders: list[str], audited: bool = False) -> str:
    """`_NUMBER_AND_INSERT_PG`, with the transaction's riders (app.db_riders) as CTEs too."""
    if not riders:
        return _NUMBER_AND_INSERT_PG
    if audited:
        return f"WITH RECURSIVE {', '.join(riders)}, {_BUMP_PG} {_INSERT_AUDITED_PG}"
    return f"WITH {', '.join(riders)}, {_BUMP_PG} {_INSERT_PG}"


def _write_staged(sync: Session) -> None:
    held = sync.info.pop(_STAGED, None)
    if not held:
        return
    resources, staged = held
    if not staged:
        return
    counts = _counts(staged)
    direct = driver_sync(sync)
    known = locked_frame_seqs(sync) if direct is not None else {}
    together = direct is not None and all(call_id in known for call_id in counts)
    before = {c: known[c] for c in counts} if together else _numbered(sync, counts)
    now = utcnow()
    rows: list[dict[str, object]] = []
    messages: list[Message] = []
    for item in staged:
        seq: int | None = None
        if item.datas and item.call_id in before:
            seq = before[item.call_id] = before[item.call_id] + 1
        row, message = _encoded(item, seq, now)
        rows.append(row)
        messages.append(message)
    relay: Relay | None = resources.outbox
    marking: list[int] = []
    if direct is not None and together:
        riders, riding = db_riders.take(sync, sync.get_bind().dialect, _FIRST_RIDER)
        marking = relay.marks_to_ride() if relay is not None else []
        if marking:
            riders = [*riders, _marks_cte(_FIRST_RIDER + len(riding))]
            riding = [*riding, now, marking]
        # The audit rows too: the chain's head is then locked by the transaction's last
        # statement, the shortest hold there is, and costs no round trip of its own.
        audit, audit_args = audit_chain.ride(sync, _FIRST_RIDER + len(riding))
        found = wait(direct.fetch(
            _number_and_insert_pg([*riders, *audit], bool(audit)), list(counts),
            list(counts.values()), [r["call_id"] for r in rows], [r["seq"] for r in rows],
            [r["type"] for r in rows], [json_codec.dumps(r["channels"]) for r in rows],
            [r["bodies"] for r in rows], [now] * len(rows), *riding, *audit_args,
        ))  # fmt: skip
        if audit:
            audit_chain.rode(sync, int(found[0][1]))
        ids = sorted(r[0] for r in found)
    elif direct is not None:
        dialect = sync.get_bind().dialect
        ids = [r[0] for r in wait(insert_many(direct, _table, rows, dialect, ("id",)))]
    else:
        ids = list(
            sync.execute(insert(_table).returning(_table.c.id, sort_by_parameter_order=True), rows)
            .scalars()
            .all()
        )
    if relay is None:
        return  # a process without a relay only stores: another worker's relay sends them
    pending = list(zip(ids, messages, strict=True))

    async def publish() -> None:
        relay.marks_written(marking)  # committed with this statement
        await relay.publish_committed(pending)

    after_commit(sync, publish)


def _encoded(item: _Staged, seq: int | None, now: datetime) -> tuple[dict[str, object], Message]:
    """A staged message's outbox row and what is published: a call message's bodies carry
    its number `seq`."""
    if item.datas:
        bodies = tuple(
            encode_body(item.type, item.call_id, {**data, "seq": seq}) for data in item.datas
        )
    else:
        bodies = item.bodies
    call_id = item.call_id if seq is not None else None
    row: dict[str, object] = {
        "call_id": item.call_id,
        "seq": seq,
        "type": item.type,
        "channels": list(item.channels),
        "bodies": "\n".join(bodies),
        "created_at": now,
    }
    return row, Message(item.channels, bodies, call_id, seq)


def stage_express(
    ctx: ExpressContext,
    type_: str,
    call_id: int,
    deliveries: Sequence[tuple[str, Mapping[str, object]]],
) -> None:
    """`stage` for an event going the express way (app.calls.express): the message takes
    the call's next number, its row is inserted by the statement that stores the event, and
    it is published once that statement has run, as after a commit."""
    if not deliveries:
        return
    channels = tuple(channel for channel, _ in deliveries)
    datas = tuple(data for _, data in deliveries)
    row, message = _encoded(
        _Staged(call_id, type_, channels, datas=datas), ctx.next_frame(), utcnow()
    )
    rider = ctx.insert(_table, [row])
    relay: Relay | None = ctx.resources.outbox
    if relay is None:
        return  # a process without a relay only stores: another worker's relay sends it
    # Rows published before are marked sent by this statement, as by a commit's.
    marking = relay.marks_to_ride()
    if marking:
        ctx.also(_marks_cte, [row["created_at"], marking])

    async def publish() -> None:
        relay.marks_written(marking)  # written with the event
        await relay.publish_committed(list(zip(rider.ids, [message], strict=True)))

    ctx.after_write(publish)


def _drop_staged(sync: Session, previous: SessionTransaction) -> None:
    # Rolled back: what the transaction staged announces nothing that was stored.
    if not previous.nested:
        sync.info.pop(_STAGED, None)


# Before app.db_riders' own hook, whichever was imported first: this statement takes the riders.
event.listen(Session, "before_commit", _write_staged, insert=True)
event.listen(Session, "after_soft_rollback", _drop_staged)


# --- the queries the relay, the housekeeping and metrics use ----------------------------


def _message_of(row: Row[Any, Any, Any, Any, Any], lenient: bool = False) -> Message:
    seq = row.seq
    return Message(
        tuple(row.channels),
        tuple(row.bodies.split("\n")),
        row.call_id if seq is not None else None,
        seq,
        lenient and seq is not None,
    )


async def mark_sent(session: AsyncSession, ids: Sequence[int]) -> None:
    now = utcnow()
    direct = await driver(session)
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        if direct is not None:
            await direct.execute(_MARK_PG, now, chunk)
        else:
            await session.execute(update(_table).where(_table.c.id.in_(chunk)).values(sent_at=now))


_MARK_PG = "UPDATE outbox_message SET sent_at = $1 WHERE id = ANY($2::bigint[])"


async def outbox_backlog(session: AsyncSession) -> tuple[int, float | None]:
    """How many messages are not sent yet, and the age in seconds of the oldest (None when
    there is none): for metrics and alerting."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(_table.c.created_at)).where(_table.c.sent_at.is_(None))
        )
    ).one()
    if not count or oldest is None:
        return 0, None
    if oldest.tzinfo is None:  # SQLite through an aggregate: no type decorator applied
        oldest = oldest.replace(tzinfo=utcnow().tzinfo)
    return int(count), max(0.0, (utcnow() - oldest).total_seconds())


async def purge_sent(session: AsyncSession, older_than_seconds: float) -> int:
    """Delete rows sent more than `older_than_seconds` ago; how many."""
    cut = utcnow() - timedelta(seconds=older_than_seconds)
    result = await session.execute(
        delete(_table).where(_table.c.sent_at.is_not(None), _table.c.sent_at < cut)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _lowest_unsent(session: AsyncSession, call_ids: set[int]) -> dict[int, int]:
    rows = await session.execute(
        select(_table.c.call_id, func.min(_table.c.seq))
        .where(_table.c.sent_at.is_(None), _table.c.call_id.in_(call_ids))
        .group_by(_table.c.call_id)
    )
    return {call_id: seq for call_id, seq in rows}


# --- the relay ---------------------------------------------------------------------------


class Relay:
    """This process's publisher of outbox rows: its own after each commit (fast path), and
    anybody's left unsent (the loop). Start and stop it in the lifespan."""

    def __init__(self, resources: Resources) -> None:
        settings = resources.settings
        self.resources = resources
        self.poll_seconds = settings.host_period(settings.outbox_poll_seconds)
        self.grace_seconds = settings.outbox_grace_seconds
        self.mark_seconds = min(settings.outbox_mark_seconds, settings.outbox_grace_seconds / 2)
        # Published rows not yet marked sent: row id -> when (time.monotonic()), oldest first.
        self._to_mark: dict[int, float] = {}
        self._marks_waiting = asyncio.Event()
        self._wake = asyncio.Event()
        self._urgent = False  # the next pass takes rows of any age (something was blocked)
        self._tasks: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.Task[None]] = set()
        self._broker_down = False
        kill_after = os.environ.get(FAULT_KILL_AFTER_COMMIT)
        self._kill_after = int(kill_after) if kill_after else 0
        self._commits = 0
        # Figures for tests and metrics.
        self.published = 0
        self.relayed = 0

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._relay_forever(), name="outbox-relay"),
            asyncio.create_task(self._mark_forever(), name="outbox-marks"),
        ]

    async def stop(self) -> None:
        """Stop the loops; the marks still waiting are written (best effort: a mark lost only
        means a relay publishes the row again, which the broker's gate drops)."""
        for task in [*self._retries, *self._tasks]:
            await cancel_and_wait(task)
        self._tasks = []
        if self._to_mark:
            try:
                await asyncio.wait_for(self._write_marks(), 2.0)
            except Exception as exc:
                log.warning(
                    "outbox marks not written at shutdown", extra={"error": type(exc).__name__}
                )

    # the fast path ---------------------------------------------------------------------
    async def publish_committed(self, pending: list[tuple[int, Message]]) -> None:
        """After the commit that wrote `pending` (row id, message): publish them now."""
        if self._kill_after:
            self._commits += 1
            if self._commits >= self._kill_after:
                log.warning("fault injection: exiting after a commit, before its publish")
                os._exit(137)
        with tracing.span("realtime.publish", frames=len(pending)):
            await self._publish(pending, retries=BLOCKED_RETRIES)

    async def _publish(self, pending: list[tuple[int, Message]], retries: int) -> None:
        try:
            outcomes = await self.resources.broker.publish_messages([m for _, m in pending])
        except BrokerUnavailable as exc:
            if not self._broker_down:
                log.warning("realtime publish deferred to the outbox relay: broker unavailable",
                            extra={"error": str(exc)})  # fmt: skip
            self._broker_down = True
            return
        self._broker_down = False
        done = [row_id for (row_id, _), outcome in zip(pending, outcomes, strict=True)
                if outcome != BLOCKED]  # fmt: skip
        self.published += len(done)
        self._mark(done)
        blocked = [p for p, outcome in zip(pending, outcomes, strict=True) if outcome == BLOCKED]
        if not blocked:
            return
        if retries > 0:
            # Behind an earlier message of the same call that another worker (or an earlier
            # commit here) is publishing at this moment: try again shortly, in the background.
            task = asyncio.get_running_loop().create_task(self._retry(blocked, retries - 1))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        else:
            self._urgent = True
            self._wake.set()

    async def _retry(self, pending: list[tuple[int, Message]], retries: int) -> None:
        await asyncio.sleep(0.01 * 4 ** (BLOCKED_RETRIES - retries - 1))
        await self._publish(pending, retries)

    # marking sent, batched -------------------------------------------------------------
    def _mark(self, ids: list[int]) -> None:
        if ids:
            now = time.monotonic()
            for row_id in ids:
                self._to_mark.setdefault(row_id, now)
            self._marks_waiting.set()

    def marks_to_ride(self) -> list[int]:
        """Rows to mark sent in the outbox statement of a commit now being made (they stay
        waiting here until it has committed: `marks_written`)."""
        return list(self._to_mark)[:BATCH]

    def marks_written(self, ids: list[int]) -> None:
        for row_id in ids:
            self._to_mark.pop(row_id, None)

    async def _write_marks(self) -> None:
        marks, self._to_mark = self._to_mark, {}
        try:
            async with self.resources.sessions() as session, session.begin():
                await mark_sent(session, list(marks))
        except BaseException:
            self._to_mark = {**marks, **self._to_mark}  # the next round tries again
            raise

    async def _mark_forever(self) -> None:
        delay = 0.1
        while True:
            await self._marks_waiting.wait()
            if self.mark_seconds and self._to_mark:
                # Written once the oldest has waited OUTBOX_MARK_SECONDS, with every mark
                # gathered meanwhile; while events keep coming, their commits take the marks
                # first (`marks_to_ride`) and nothing is left to write here.
                left = next(iter(self._to_mark.values())) + self.mark_seconds - time.monotonic()
                if left > 0:
                    await asyncio.sleep(left)
                    continue
            self._marks_waiting.clear()
            if not self._to_mark:
                continue
            try:
                await self._write_marks()
                delay = 0.1
            except Exception as exc:  # the database away: the rows stay marked unsent
                log.warning("outbox marks not written", extra={"error": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._marks_waiting.set()

    # the relay loop --------------------------------------------------------------------
    async def relay_once(self, min_age: float | None = None) -> int:
        """Publish unsent rows at least `min_age` seconds old (the grace by default), oldest
        first; how many were sent (or found already sent)."""
        age = self.grace_seconds if min_age is None else min_age
        query = (
            select(_table.c.id, _table.c.call_id, _table.c.seq, _table.c.channels,
                   _table.c.bodies)
            .where(_table.c.sent_at.is_(None),
                   _table.c.created_at <= utcnow() - timedelta(seconds=age))
            .order_by(_table.c.id)
            .limit(BATCH)
        )  # fmt: skip
        async with self.resources.sessions() as session, session.begin():
            if not is_postgres(session):
                # SQLite (one process): read, then publish and mark in a write transaction of
                # its own (a read upgraded to a write fails if another commit came between).
                rows = (await session.execute(query)).all()
                done = await self._send(session, rows) if rows else []
            else:
                # Rows another worker's relay holds are skipped, never waited for; they stay
                # locked here until marked, so no two relays publish the same rows.
                rows = (await session.execute(query.with_for_update(skip_locked=True))).all()
                done = await self._send(session, rows) if rows else []
                await mark_sent(session, done)
        if rows and not is_postgres(session):
            async with self.resources.sessions() as writer, writer.begin():
                await mark_sent(writer, done)
        self.relayed += len(done)
        return len(done)

    async def _send(
        self, session: AsyncSession, rows: Sequence[Row[Any, Any, Any, Any, Any]]
    ) -> list[int]:
        """Publish `rows` in order, in one broker call; the ids of those the broker took (or
        had taken before). A row that is its call's lowest unsent in the store goes leniently:
        every earlier message of the call is sent, so if the gate does not know the previous
        one it lost it (Redis restarted empty, or the call was quiet past the retention)."""
        calls = {row.call_id for row in rows if row.seq is not None}
        lowest = await _lowest_unsent(session, calls) if calls else {}
        messages = [_message_of(row, lowest.get(row.call_id) == row.seq) for row in rows]
        outcomes = await self.resources.broker.publish_messages(messages)
        return [row.id for row, o in zip(rows, outcomes, strict=True) if o != BLOCKED]

    async def _relay_forever(self) -> None:
        delay = self.poll_seconds
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
            self._wake.clear()
            urgent, self._urgent = self._urgent, False
            try:
                while await self.relay_once(0.0 if urgent else None) >= BATCH:
                    pass  # more are waiting
                delay = self.poll_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database away: the rows wait for the next pass
                log.warning("outbox relay pass failed", extra={"error": type(exc).__name__})
                delay = min(delay * 2, max(self.poll_seconds, 5.0))


__all__ = [
    "FAULT_KILL_AFTER_COMMIT",
    "Relay",
    "mark_sent",
    "outbox_backlog",
    "purge_sent",
    "stage",
    "stage_body",
    "stage_express",
]
