"""SQL of the calls domain: ingest and processing (reading is in queries.py). Never commits:
the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    Executable,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.elements import ColumnElement

from app import db_direct as direct
from app.calls.lifecycle import CallState
from app.calls.models import Call, CallEventRow
from app.db import dialect_of, is_postgres, per_transaction, this_transactions, upsert, utcnow

# --- ingest: the hot path, in SQLAlchemy Core ---------------------------------------------
# Every event runs these. Built once per dialect with bind parameters (values come with each
# execution): no statement building, cache-key walk over the values or ORM unit of work per
# event.

CALL: Table = Call.__table__  # type: ignore[assignment]
EVENT: Table = CallEventRow.__table__  # type: ignore[assignment]

# Written on the call by every merged event (CallState's fields).
STATE_COLUMNS = (
    "state", "caller_e164", "presentation", "called", "queue", "handler_id", "handlers",
    "offered_at", "ringing_at", "answered_at", "ended_at", "end_cause", "marks", "updated_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "source", "event_id", "call_id", "type", "occurred_at", "seq", "raw", "canonical",
    "state_before", "state_after", "received_at", "processed_at", "attempts", "claimed_until",
    "last_error",
)  # fmt: skip


class CallKeys(Protocol):
    """What identifies a call (a row read, or a call about to be written)."""

    @property
    def id(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def external_id(self) -> str: ...


class CallRow(CallKeys, Protocol):
    """A call's columns read as attributes: the `Row` the ingest statements return (its
    attributes are the CALL columns) or an ORM `Call`."""

    @property
    def state(self) -> str: ...
    @property
    def caller_e164(self) -> str | None: ...
    @property
    def presentation(self) -> str: ...
    @property
    def called(self) -> str | None: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def handler_id(self) -> str | None: ...
    @property
    def handlers(self) -> list[str] | None: ...
    @property
    def offered_at(self) -> datetime | None: ...
    @property
    def ringing_at(self) -> datetime | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def end_cause(self) -> str | None: ...
    @property
    def marks(self) -> dict[str, object] | None: ...
    @property
    def frame_seq(self) -> int: ...


def _dialect(session: AsyncSession) -> str:
    return dialect_of(session)


def _lock_call_statement(dialect: str) -> Executable:
    # Each column its own parameter (created_at and updated_at too): a batch sends this as one
    # multi-row INSERT, which numbers every row's parameters anew.
    names = (
        "source", "external_id", "state", "presentation", "handlers", "marks", "flagged",
        "created_at", "updated_at",
    )  # fmt: skip
    stmt = upsert(CALL, dialect).values(
        {name: bindparam("c_" + name, type_=CALL.c[name].type) for name in names}
    )
    # A no-op update (the same value) that takes the row lock and returns the row.
    return stmt.on_conflict_do_update(
        index_elements=[CALL.c.source, CALL.c.external_id],
        set_={"external_id": stmt.excluded.external_id},
    ).returning(*CALL.c)


def _event_insert(dialect: str, with_id: bool) -> ReturningInsert[int]:
    names = (("id",) if with_id else ()) + EVENT_COLUMNS
    return (
        upsert(EVENT, dialect)
        .values({name: bindparam("e_" + name, type_=EVENT.c[name].type) for name in names})
        .on_conflict_do_nothing(index_elements=[EVENT.c.source, EVENT.c.event_id])
        .returning(EVENT.c.id)
    )


def _state_update() -> Update:
    return (
        update(CALL)
        .where(CALL.c.id == bindparam("c_id", type_=CALL.c.id.type))
        .values({name: bindparam("s_" + name, type_=CALL.c[name].type) for name in STATE_COLUMNS})
    )


def _insert_and_update_pg(with_id: bool, reading: bool = False) -> Select[Any]:
    """PostgreSQL: the event insert and the call's new state in one statement (one round
    trip); the call is updated only when the event was new. `reading`: with it, the reads
    later steps registered (`read_with_event`)."""
    inserted = _event_insert("postgresql", with_id).cte("inserted")
    merged = _state_update().where(exists(select(inserted.c.id))).returning(CALL.c.id).cte("merged")
    call_id = bindparam("c_id", type_=CALL.c.id.type)
    reads = _WITH_EVENT.items() if reading else ()
    return select(
        inserted.c.id,
        select(func.count()).select_from(merged).scalar_subquery(),
        *(read.column(call_id).label(name) for name, read in reads),
    )


# Reads of a call's other rows that a later step of the pipeline would otherwise send on
# their own, answered by the event's own statement instead (one round trip fewer per event,
# issue 19). That statement runs once the call's row is locked, so its snapshot shows what
# every earlier event of the call committed. The calls domain does not know what they read:
# the domain that needs one registers it (`read_with_event`) and finds the answer with
# `read_with_event_answer`.
@dataclass(frozen=True)
class _Read:
    column: Callable[[ColumnElement[int]], ColumnElement[Any]]
    on: frozenset[str]  # the event types whose statement carries it


_WITH_EVENT: dict[str, _Read] = {}
_READS_VERSION = 0
_ANSWERS = "calls_read_with_event"


def with_event_reads() -> tuple[int, dict[str, _Read]]:
    """The registered reads (app.calls.express reads them all), and a number that changes
    whenever one is registered."""
    return _READS_VERSION, _WITH_EVENT


def read_with_event(
    name: str, column: Callable[[ColumnElement[int]], ColumnElement[Any]], *, on: Iterable[str]
) -> None:
    """Register a read (`column`: the call's id -> a scalar expression) for the statement that
    stores an event of a type in `on` (PostgreSQL, single events): the other events' statements
    do not pay for it."""
    global _READS_VERSION
    _WITH_EVENT[name] = _Read(column, frozenset(on))
    _READS_VERSION += 1
    for key in [k for k in _STATEMENTS if k[0] == "insert_and_update_reading"]:
        del _STATEMENTS[key]  # built again with it


def read_with_event_answer(sync: Session, call_id: int, name: str) -> object | None:
    """What `name` read for `call_id` in this transaction's event statement, once: taken (the
    caller's own writes may change it next), None when it was not read."""
    answers = this_transactions(sync, _ANSWERS)
    if not isinstance(answers, dict):
        return None
    held: dict[str, object] | None = answers.get(call_id)
    return None if held is None else held.pop(name, None)


_STATEMENTS: dict[tuple[str, str, bool], Executable] = {}


def _statement(kind: str, dialect: str, with_id: bool = False) -> Executable:
    key = (kind, dialect, with_id)
    stmt: Executable | None = _STATEMENTS.get(key)
    if stmt is None:
        if kind == "lock_call":
            stmt = _lock_call_statement(dialect)
        elif kind == "insert_event":
            stmt = _event_insert(dialect, with_id)
        elif kind == "insert_events":  # many at once: each new row says which event it is
            stmt = _event_insert(dialect, with_id).returning(EVENT.c.event_id)
        elif kind == "update_state":
            stmt = _state_update()
        elif kind == "create_with_event":
            stmt = _create_with_event_statement()
        else:
            stmt = _insert_and_update_pg(with_id, reading=kind == "insert_and_update_reading")
        _STATEMENTS[key] = stmt
    return stmt


async def lock_or_create_call(
    session: AsyncSession, source: str, external_id: str, first_state: str
) -> CallRow:
    """The call row for (source, external_id), created if new, locked for this transaction.

    One statement either way: concurrent first events of a call (several workers) cannot
    create it twice, and the row lock serialises their merges (PostgreSQL; SQLite has one
    writer at a time anyway).
    """
    return (await lock_or_create_calls(session, source, [(external_id, first_state)]))[external_id]


def state_of(call: CallRow) -> CallState:
    if call.offered_at is None:  # every merged event sets offered_at: nothing merged yet
        return CallState()
    return CallState(
        state=call.state,
        caller_e164=call.caller_e164,
        presentation=call.presentation,
        called=call.called,
        queue=call.queue,
        handler_id=call.handler_id,
        handlers=tuple(call.handlers or ()),
        offered_at=call.offered_at,
        ringing_at=call.ringing_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        end_cause=call.end_cause,
        marks=dict(call.marks or {}),
    )


def state_values(state: CallState) -> dict[str, object]:
    """The call columns `state` sets (STATE_COLUMNS), for `store_event`."""
    assert state.state is not None
    return {
        "state": state.state,
        "caller_e164": state.caller_e164,
        "presentation": state.presentation,
        "called": state.called,
        "queue": state.queue,
        "handler_id": state.handler_id,
        "handlers": list(state.handlers),
        "offered_at": state.offered_at,
        "ringing_at": state.ringing_at,
        "answered_at": state.answered_at,
        "ended_at": state.ended_at,
        "end_cause": state.end_cause,
        "marks": state.marks,
        "updated_at": utcnow(),
    }


async def store_event(
    session: AsyncSession, event: dict[str, object], call_id: int, state: dict[str, object]
) -> int | None:
    """Insert an event (columns EVENT_COLUMNS, and `id` if given) and, if it is new, write the
    call's new state (STATE_COLUMNS). None when (source, event_id) is already stored (the call
    is left as it was)."""
    dialect = _dialect(session)
    with_id = "id" in event
    params = {"e_" + name: value for name, value in event.items()}
    params["c_id"] = call_id
    params.update(("s_" + name, value) for name, value in state.items())
    if dialect == "postgresql":
        reading = any(event["type"] in read.on for read in _WITH_EVENT.values())
        kind = "insert_and_update_reading" if reading else "insert_and_update"
        found = await direct.rows(session, _statement(kind, dialect, with_id), params)
        if not found:
            return None
        if reading:
            answers: dict[int, dict[str, object]] = per_transaction(
                session.sync_session, _ANSWERS, dict
            )
            answers[call_id] = {name: getattr(found[0], name) for name in _WITH_EVENT}
        return int(found[0][0])
    new_id = (
        await session.execute(_statement("insert_event", dialect, with_id), params)
    ).scalar_one_or_none()
    if new_id is not None:
        await session.execute(_statement("update_state", dialect), params)
    return None if new_id is None else int(new_id)


# --- a call's first event, in one statement (PostgreSQL) ----------------------------------
# An `offered` most often creates its call. On the locked path that took two statements
# (`lock_or_create_call`, then `store_event`): the call is created with its state after the
# event and the event stored with it in one (the new row is this transaction's, locked until
# it ends). Nothing is written when the call exists or the event's id is stored already:
# `lock_or_create_call` and `store_event` then take the event as any other.

_NEW_CALL = ("source", "external_id", "flagged", "frame_seq", "created_at", *STATE_COLUMNS)
_NEW_EVENT = tuple(name for name in EVENT_COLUMNS if name != "call_id")


def _create_with_event_statement() -> Select[Any]:
    source = bindparam("e_source", type_=EVENT.c.source.type)
    event_id = bindparam("e_event_id", type_=EVENT.c.event_id.type)
    stored = select(EVENT.c.id).where(EVENT.c.source == source, EVENT.c.event_id == event_id)
    values = [bindparam("c_" + name, type_=CALL.c[name].type) for name in _NEW_CALL]
    created = (
        upsert(CALL, "postgresql")
        .from_select(list(_NEW_CALL), select(*values).where(~exists(stored)))
        .on_conflict_do_nothing(index_elements=[CALL.c.source, CALL.c.external_id])
        .returning(*CALL.c)
        .cte("created")
    )
    event = [
        source if name == "source" else event_id if name == "event_id"
        else bindparam("e_" + name, type_=EVENT.c[name].type)
        for name in _NEW_EVENT
    ]  # fmt: skip
    inserted = (
        upsert(EVENT, "postgresql")
        .from_select(["call_id", *_NEW_EVENT], select(created.c.id, *event))
        .on_conflict_do_nothing(index_elements=[EVENT.c.source, EVENT.c.event_id])
        .returning(EVENT.c.id)
        .cte("inserted")
    )
    return select(*created.c, select(inserted.c.id).scalar_subquery().label("event_row_id"))


async def create_with_event(
    session: AsyncSession, call: dict[str, object], event: dict[str, object]
) -> tuple[CallRow, int] | None:
    """Create the call (columns `_NEW_CALL`) with its first event (EVENT_COLUMNS but
    `call_id`) in one statement, the row locked for this transaction: the call and the stored
    event's id. None, nothing written, when the call exists or the event is stored already,
    on SQLite, or when the event's statement must carry registered reads (`store_event`)."""
    if not is_postgres(session) or any(event["type"] in r.on for r in _WITH_EVENT.values()):
        return None
    params = {"c_" + name: value for name, value in call.items()}
    params.update(("e_" + name, value) for name, value in event.items())
    found = await direct.rows(session, _statement("create_with_event", "postgresql"), params)
    if not found:
        return None
    row = found[0]
    if row.event_row_id is None:
        # The event's id was stored on another call by a transaction that committed after
        # this statement began (a platform reusing ids): the call was created, the event
        # not. Undone (the row is this transaction's own), so that the usual statements
        # answer the event as they would have.
        await session.execute(delete(CALL).where(CALL.c.id == row.id))
        return None
    _remember_frame_seqs(session.sync_session, [row])
    return row, int(row.event_row_id)


# --- ingest of a batch: a few statements for the whole batch -------------------------------


async def lock_or_create_calls(
    session: AsyncSession, source: str, calls: list[tuple[str, str]]
) -> dict[str, CallRow]:
    """`lock_or_create_call` for many calls in one statement: (external id, first state) each,
    ids distinct and in the order the rows are to be locked (concurrent batches that lock in
    the same order cannot deadlock). The locked rows by external id."""
    if not calls:
        return {}
    now = utcnow()
    params = [
        {
            "c_source": source,
            "c_external_id": external_id,
            "c_state": first_state,
            "c_presentation": "unavailable",
            "c_handlers": [],
            "c_marks": {},
            "c_flagged": False,
            "c_created_at": now,
            "c_updated_at": now,
        }
        for external_id, first_state in calls
    ]
    # An executemany with RETURNING: multi-row INSERTs (SQLAlchemy) or pipelined executions
    # (asyncpg), in this order either way.
    found = await direct.rows(session, _statement("lock_call", _dialect(session)), params)
    _remember_frame_seqs(session.sync_session, found)
    return {row.external_id: row for row in found}


# The calls this transaction holds locked, with their message number (`frame_seq`) as the
# lock returned it: nothing else changes it before the commit, which numbers the outbox's
# messages from it (app.realtime.outbox) instead of reading it again.
_LOCKED = "calls_locked_frame_seq"


def _remember_frame_seqs(sync: Session, rows: list[CallRow]) -> None:
    if sync.in_nested_transaction():
        return  # a savepoint's rollback would release the lock: not worth the bookkeeping
    locked: dict[int, int] = per_transaction(sync, _LOCKED, dict)
    locked.update((row.id, row.frame_seq) for row in rows)


def locked_frame_seqs(sync: Session) -> dict[int, int]:
    """The calls `sync`'s transaction locked through `lock_or_create_calls`, and each one's
    `frame_seq` under that lock (held to the end of the transaction)."""
    locked = this_transactions(sync, _LOCKED)
    return locked if isinstance(locked, dict) else {}


@dataclass(frozen=True)
class StoredEvent:
    id: int
    call_id: int
    state_after: str


_EXISTING_EVENTS = select(EVENT.c.event_id, EVENT.c.id, EVENT.c.call_id, EVENT.c.state_after).where(
    EVENT.c.source == bindparam("source"),
    EVENT.c.event_id.in_(bindparam("event_ids", expanding=True)),
)


async def existing_events(
    session: AsyncSession, source: str, event_ids: list[str]
) -> dict[str, StoredEvent]:
    """The events of `event_ids` already stored, by event id (one query)."""
    if not event_ids:
        return {}
    found = await direct.rows(session, _EXISTING_EVENTS, {"source": source, "event_ids": event_ids})
    return {r.event_id: StoredEvent(r.id, r.call_id, r.state_after) for r in found}


async def insert_events(session: AsyncSession, events: list[dict[str, object]]) -> dict[str, int]:
    """Insert events (columns EVENT_COLUMNS; none stored yet, as far as the caller could see
    under its call locks) in one executemany; the new ids by event id. An event that conflicts
    all the same (its id reused on another call, in a concurrent transaction) is absent."""
    if not events:
        return {}
    params = [{"e_" + name: value for name, value in event.items()} for event in events]
    found = await direct.rows(session, _statement("insert_events", _dialect(session)), params)
    return {r.event_id: int(r.id) for r in found}


async def update_states(session: AsyncSession, states: dict[int, dict[str, object]]) -> None:
    """Write the calls' new states (STATE_COLUMNS by call id) in one executemany."""
    if not states:
        return
    params = [
        {"c_id": call_id} | {"s_" + name: value for name, value in state.items()}
        for call_id, state in states.items()
    ]
    await direct.rows(session, _statement("update_state", _dialect(session)), params)


# --- processing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    call_id: int


async def mark_processed(session: AsyncSession, event_row_id: int) -> CallEventRow | None:
    """Take the event for processing in this transaction: the row stays locked until commit,
    so a concurrent processor (another worker's sweeper) waits, then finds it done."""
    result = await session.execute(
        update(CallEventRow)
        .where(CallEventRow.id == event_row_id, CallEventRow.processed_at.is_(None))
        .values(processed_at=utcnow(), claimed_until=None, last_error=None)
        .returning(CallEventRow),
        execution_options={"populate_existing": True},
    )
    row: CallEventRow | None = result.scalar_one_or_none()
    return row


async def record_failure(
    session: AsyncSession, event_row_id: int, error: str, retry_in: float
) -> None:
    await session.execute(
        update(CallEventRow)
        .where(CallEventRow.id == event_row_id, CallEventRow.processed_at.is_(None))
        .values(last_error=error[:200], claimed_until=utcnow() + timedelta(seconds=retry_in))
    )


async def claim_due(session: AsyncSession, lease: float, limit: int) -> list[Claimed]:
    """Claim up to `limit` accepted, unprocessed events whose lease or retry delay is over.

    One UPDATE: on PostgreSQL the inner SELECT skips rows another worker is claiming right
    now (SKIP LOCKED), and the outer WHERE re-checks the condition after any wait; on SQLite
    the statement runs under the single writer lock. Either way an event is claimed once.
    """
    now = utcnow()
    due = and_(
        CallEventRow.processed_at.is_(None),
        or_(CallEventRow.claimed_until.is_(None), CallEventRow.claimed_until < now),
    )
    inner = select(CallEventRow.id).where(due).order_by(CallEventRow.id).limit(limit)
    if is_postgres(session):
        inner = inner.with_for_update(skip_locked=True)
    result = await session.execute(
        update(CallEventRow)
        .where(CallEventRow.id.in_(inner.scalar_subquery()), due)
        .values(
            claimed_until=now + timedelta(seconds=lease),
            attempts=CallEventRow.attempts + 1,
        )
        .returning(CallEventRow.id, CallEventRow.call_id)
    )
    return sorted((Claimed(r.id, r.call_id) for r in result), key=lambda c: c.id)
