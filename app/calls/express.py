"""The express path: a call event in two statements and no transaction (PostgreSQL, issue 19).

The locked path (`service.ingest`, then the steps in the same transaction: `Pipeline.accept`)
costs an event BEGIN, the call's row locked, the event with the call's new state, the steps'
own statements, the outbox, COMMIT, and an ORM session around them. Yet most events of a call
already stored (ringing, answered, transferred) change only the call's state and what the
screens are sent, and every step can tell that from one read. Such an event goes:

1. one statement, outside any transaction: the call's row and its version (`xmin`, which
   every write of the row changes), whether the event is stored already, what the steps
   registered with `repository.read_with_event`, and an id for the event from its sequence;
2. the lifecycle, then each step's `express` (pure, no I/O: app.calls.step.ExpressContext),
   which plans its writes (rows inserted with the event, message numbers) or declines;
3. one statement, atomic on its own: the call's row locked if its version is still the one
   read, the event inserted if it is new, the call's new state and every planned row written
   only if the event was; then what the steps queued for after it (publishing).

The version guards what the read returned of other tables as well: whatever changes a call's
alerts or context for its screens (an alert raised or acknowledged) publishes a message of the
call in the same transaction, which takes the call's next number (`call.frame_seq`), so the
call's row changes with it.

Everything else takes the locked path, which handles every case as before: a call not stored
yet, an event stored already, a step that declines, or a version that changed between the two
statements (another event of the call, the sweeper, a handler's write). The guard holds or
fails for the whole statement, so an event is stored and processed once either way.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Select, String, bindparam, cast, func, literal_column, select
from sqlalchemy.engine import Dialect

from app import db_riders
from app.calls import lifecycle
from app.calls import repository as repo
from app.calls.service import IngestOutcome, event_values, fact_of, snapshot_after
from app.calls.step import ExpressContext, Step
from app.db import run_after_commit, utcnow
from app.db_direct import Direct, array_type, autocommit, bound, insert_sql, rows_on
from app.db_direct import unnest_insert_sql as unnest_insert
from app.resources import Resources
from app.telephony.events import CallEvent

log = logging.getLogger(__name__)


def event_types(steps: list[Step]) -> frozenset[str]:
    """The event types every step may take express (`express_on`): no other type costs a
    read."""
    types: frozenset[str] | None = None
    for step in steps:
        on = getattr(step, "express_on", None)
        if on is None or getattr(step, "express", None) is None:
            return frozenset()
        types = frozenset(on) if types is None else types & frozenset(on)
    return types or frozenset()


# --- the read ------------------------------------------------------------------------------

_READ: dict[int, Select[Any]] = {}  # by the version of the registered reads


def _read_statement() -> Select[Any]:
    """The call's row, its version, the event's stored id if any, the registered reads and
    an id for the event: one statement. Built again when a read is registered."""
    key, reads = repo.with_event_reads()
    found = _READ.get(key)
    if found is None:
        call = repo.CALL
        event = repo.EVENT
        source = bindparam("source", type_=call.c.source.type)
        stored = (
            select(event.c.id)
            .where(event.c.source == source, event.c.event_id == bindparam("event_id"))
            .scalar_subquery()
        )
        columns: list[Any] = [
            *call.c,
            cast(literal_column("call.xmin"), String).label("version"),
            stored.label("stored_event"),
            func.nextval(func.pg_get_serial_sequence("call_event", "id")).label("next_id"),
            *(read.column(call.c.id).label(name) for name, read in reads.items()),
        ]
        found = select(*columns).where(
            call.c.source == source, call.c.external_id == bindparam("external_id")
        )
        _READ.clear()
        _READ[key] = found
    return found


# --- the write -----------------------------------------------------------------------------

_GUARD = "g AS (SELECT id FROM call WHERE id = $1 AND xmin::text = $2 FOR UPDATE)"
_EVENT_COLUMNS = ("id", *repo.EVENT_COLUMNS)
_FIRST_EVENT = 4  # $3: how many message numbers the event takes
_FIRST_STATE = _FIRST_EVENT + len(_EVENT_COLUMNS)
_FIRST_RIDER = _FIRST_STATE + len(repo.STATE_COLUMNS)
_WRITES: dict[tuple[Any, ...], str] = {}


def _write_sql(dialect: Dialect, riders: list[str]) -> str:
    """The guarded write, with the riders' CTEs (`riders`, their parameters from
    `_FIRST_RIDER`): the event's id (NULL when nothing was written) and each rider's ids."""
    key = (id(dialect), *riders)
    found = _WRITES.get(key)
    if found is None:
        event = [(name, array_type(repo.EVENT, name, dialect)) for name in _EVENT_COLUMNS]
        inserted = unnest_insert(
            "call_event", event, _FIRST_EVENT, "id",
            where="EXISTS (SELECT 1 FROM g)", conflict="ON CONFLICT (source, event_id) DO NOTHING",
        )  # fmt: skip
        state = [(name, array_type(repo.CALL, name, dialect)) for name in repo.STATE_COLUMNS]
        sets = ", ".join(
            f"{name} = s.{name}::jsonb" if kind == "jsonb" else f"{name} = s.{name}"
            for name, kind in state
        )
        arrays = ", ".join(
            f"${_FIRST_STATE + i}::{'text' if kind == 'jsonb' else kind}[]"
            for i, (_, kind) in enumerate(state)
        )
        names = ", ".join(name for name, _ in state)
        merged = (
            f"st AS (UPDATE call SET {sets}, frame_seq = call.frame_seq + $3"
            f" FROM unnest({arrays}) AS s({names})"
            " WHERE call.id = $1 AND EXISTS (SELECT 1 FROM ev) RETURNING call.id)"
        )
        ids = "".join(f", ARRAY(SELECT id FROM riding_{n} ORDER BY id)" for n in range(len(riders)))
        found = (
            f"WITH {_GUARD}, ev AS ({inserted}), {merged}"
            + "".join(f", {rider}" for rider in riders)
            + f" SELECT (SELECT id FROM ev), (SELECT count(*) FROM st){ids}"
        )
        _WRITES[key] = found
    return found


def _processors(table: Any, columns: tuple[str, ...], dialect: Dialect) -> list[Any]:
    return insert_sql(table, columns, dialect)[1]


# --- the flow ------------------------------------------------------------------------------


async def accept(
    resources: Resources, steps: list[Step], *, source: str, event: CallEvent, raw: bytes
) -> IngestOutcome | None:
    """Store and process `event` the express way; None when it must take the locked path
    (nothing of it was written then)."""
    engine = resources.engine
    async with autocommit(engine) as direct:
        if direct is None:
            return None
        dialect = engine.dialect
        found = await rows_on(
            direct,
            dialect,
            _read_statement(),
            {"source": source, "external_id": event.call_id, "event_id": event.event_id},
        )
        if not found:
            return None  # a new call: the locked path creates it
        row = found[0]
        before = repo.state_of(row)
        if row.stored_event is not None or before.state is None:
            return None  # a replay (the locked path answers it), or no event merged yet
        planned = _plan(resources, steps, row, event, before)
        if planned is None:
            return None
        ctx, after = planned
        written = await _write(direct, dialect, ctx, source, event, raw, row, before, after)
    if written is None:
        return None
    await run_after_commit(ctx.actions)
    return written


def _plan(
    resources: Resources,
    steps: list[Step],
    row: Any,
    event: CallEvent,
    before: lifecycle.CallState,
) -> tuple[ExpressContext, lifecycle.CallState] | None:
    after = lifecycle.apply(before, fact_of(event, resources.settings.default_region))
    ctx = ExpressContext(
        event=event,
        event_row_id=int(row.next_id),
        call=snapshot_after(row, after),
        previous_state=before.state,
        resources=resources,
        reads={name: getattr(row, name) for name in repo.with_event_reads()[1]},
        frame_seq=int(row.frame_seq),
    )
    try:
        for step in steps:
            if not step.express(ctx):  # type: ignore[attr-defined]
                return None
    except Exception as exc:
        # A step's planning is pure: an error there is a bug, and the locked path runs the
        # step for real (and stores the event for a retry if it fails there too). The class
        # name only: a message may quote a caller's number or a name.
        log.warning(
            "express planning failed; the locked path takes the event",
            extra={"error": type(exc).__name__},
        )
        return None
    return ctx, after


async def _write(
    direct: Direct,
    dialect: Dialect,
    ctx: ExpressContext,
    source: str,
    event: CallEvent,
    raw: bytes,
    row: Any,
    before: lifecycle.CallState,
    after: lifecycle.CallState,
) -> IngestOutcome | None:
    assert after.state is not None
    now = utcnow()
    values = {"id": ctx.event_row_id} | event_values(
        source, event, raw, row.id, before, after, now, processed=True
    )
    state = repo.state_values(after)
    event_args = bound([values], _EVENT_COLUMNS, _processors(repo.EVENT, _EVENT_COLUMNS, dialect))
    state_args = bound(
        [state], repo.STATE_COLUMNS, _processors(repo.CALL, repo.STATE_COLUMNS, dialect)
    )
    riders, rider_args = db_riders.ctes(
        [(r.table, r.rows) for r in ctx.riders],
        dialect,
        _FIRST_RIDER,
        where="EXISTS (SELECT 1 FROM ev)",
        returning="id",
    )
    result = await direct.fetchrow(
        _write_sql(dialect, riders),
        row.id,
        row.version,
        ctx.frames,
        *([value] for value in event_args[0]),
        *([value] for value in state_args[0]),
        *rider_args,
    )
    assert result is not None
    if result[0] is None:
        return None  # the call moved on since the read, or the event came in meanwhile
    for rider, ids in zip(ctx.riders, list(result)[2:], strict=True):
        rider.ids = list(ids)
    return IngestOutcome(int(result[0]), row.id, after.state, False, ctx.call, before.state)
