"""The express path: a call event in two statements and no transaction (PostgreSQL, issue 19).

The locked path (`service.ingest`, then the steps in the same transaction: `Pipeline.accept`)
costs an event BEGIN, the call's row locked, the event with the call's new state, the steps'
own statements, the outbox, COMMIT, and an ORM session around them. Yet most events of a call
already stored (ringing, answered, transferred) change only the call's state and what the
screens are sent, and every step can tell that from one read. Such an event goes:

1. one statement, outside any transaction: the call's row and its version (`xmin`, which
   every write of the row changes) and what the steps registered with
   `repository.read_with_event` (for a ringing, taken ahead right after its offered was
   stored: `Ahead`);
2. the lifecycle, then each step's `express` (pure, no I/O: app.calls.step.ExpressContext),
   which plans its writes (rows inserted with the event, message numbers) or declines;
3. one statement, atomic on its own: the call's row locked if its version (and what the
   registered reads return) is still the one read, the event inserted if it is new, the
   call's new state and every planned row written only if the event was; then what the
   steps queued for after it (publishing).

The guard covers what the read returned of other tables too: the write also checks a digest
of the registered reads (the call's context and alerts), so a read taken ahead, or one that an
acknowledgement overtook, is never written from.

Everything else takes the locked path, which handles every case as before: a call not stored
yet, an event stored already, a step that declines, or a version that changed between the two
statements (another event of the call, the sweeper, a handler's write). The guard holds or
fails for the whole statement, so an event is stored and processed once either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Select, String, Text, bindparam, cast, func, literal_column, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError

from app import db_riders
from app.audit import chain
from app.calls import lifecycle
from app.calls import repository as repo
from app.calls.service import IngestOutcome, event_values, fact_of, snapshot_after
from app.calls.step import ExpressContext, Step
from app.db import run_after_commit, utcnow
from app.db_direct import (
    Direct,
    array_type,
    autocommit,
    bound,
    insert_sql,
    rows_on,
    unnest_arrays,
)
from app.db_direct import unnest_insert_sql as unnest_insert
from app.resources import Resources
from app.tasks import cancel_and_wait
from app.telephony.events import CallEvent

log = logging.getLogger(__name__)


def event_types(steps: list[Step]) -> frozenset[str]:
    """The event types every step may take express (`express_on`): no other type costs a
    read."""
    return _named_by_all(steps, "express_on")


def new_call_types(steps: list[Step]) -> frozenset[str]:
    """The event types that may create their call the express way (`express_new_on` of
    every step; app.calls.step)."""
    return _named_by_all(steps, "express_new_on")


def _named_by_all(steps: list[Step], attribute: str) -> frozenset[str]:
    types: frozenset[str] | None = None
    for step in steps:
        on = getattr(step, attribute, None)
        if on is None or getattr(step, "express", None) is None:
            return frozenset()
        types = frozenset(on) if types is None else types & frozenset(on)
    return types or frozenset()


# --- the read ------------------------------------------------------------------------------

_READ: dict[int, Select[Any]] = {}  # by the version of the registered reads


def _read_statement() -> Select[Any]:
    """The call's row, its version and the registered reads: one statement, whatever the
    event (so that it can be taken ahead: `Ahead`). Built again when a read is registered."""
    key, reads = repo.with_event_reads()
    found = _READ.get(key)
    if found is None:
        call = repo.CALL
        columns: list[Any] = [
            *call.c,
            cast(literal_column("call.xmin"), String).label("version"),
            _reads_hash(reads).label("reads_hash"),
            *(read.column(call.c.id).label(name) for name, read in reads.items()),
        ]
        found = select(*columns).where(
            call.c.source == bindparam("source", type_=call.c.source.type),
            call.c.external_id == bindparam("external_id"),
        )
        _READ.clear()
        _READ[key] = found
    return found


def _reads_hash(reads: dict[str, Any]) -> Any:
    """A digest of everything the registered reads return for the call: the write checks
    it, so that a read taken ahead is used only while all of it still holds."""
    values = [read.column(repo.CALL.c.id) for read in reads.values()]
    return func.md5(cast(func.json_build_array(*values), Text))


def _guard(dialect: Dialect) -> str:
    """`g AS (...)`: the call's row, locked, if its version and the digest of its reads are
    still those read ($1 the call's id, $2 its version, $3 the digest)."""
    key, reads = repo.with_event_reads()
    found = _GUARDS.get((key, id(dialect)))
    if found is None:
        call = repo.CALL
        stmt = (
            select(call.c.id)
            .where(
                call.c.id == bindparam("g_id", type_=call.c.id.type),
                cast(literal_column("call.xmin"), String) == bindparam("g_version", type_=String),
                _reads_hash(reads) == bindparam("g_hash", type_=String),
            )
            .with_for_update()
        )
        compiled = stmt.compile(dialect=dialect)
        if compiled.positiontup != ["g_id", "g_version", "g_hash"]:
            # A registered read with parameters of its own would shift the write's numbering.
            raise RuntimeError(f"the express guard's parameters: {compiled.positiontup}")
        found = _GUARDS[(key, id(dialect))] = f"g AS ({compiled.string})"
    return found


_GUARDS: dict[tuple[int, int], str] = {}


async def _read(direct: Direct, dialect: Dialect, source: str, external_id: str) -> Any | None:
    found = await rows_on(
        direct, dialect, _read_statement(), {"source": source, "external_id": external_id}
    )
    return found[0] if found else None


class Ahead:
    """Reads taken ahead: right after a call's `offered` is stored, the read its `ringing`
    will need (the ring -> screen path then goes in one statement, the write; on a quiet line
    a read costs a woken database backend, bench/wakeups.py). Kept for `seconds`, at most
    `size` calls, used once; a read is only ever a starting point, the write's guard checks
    it against the call as it is. At most `concurrent` reads at once: past that none is taken
    ahead (the event then reads for itself). A read holds the call's row, context and alerts
    (a few kB): `size` bounds what waits for ringings that never come."""

    def __init__(self, size: int = 2_000, seconds: float = 30.0, concurrent: int = 2) -> None:
        self.size = size
        self.seconds = seconds
        self.concurrent = concurrent
        self._reads: OrderedDict[tuple[str, str], tuple[float, asyncio.Task[Any]]] = OrderedDict()
        self._running = 0
        self.used = 0  # reads an event found taken ahead (for tests and benchmarks)

    def take_ahead(self, resources: Resources, source: str, external_id: str) -> None:
        if self._running >= self.concurrent:
            return
        key = (source, external_id)
        now = time.monotonic()
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._one(resources, key))
        # Counted down when it ends however it ends (cancelled before it started, too).
        task.add_done_callback(self._ended)
        self._reads[key] = (now, task)
        self._reads.move_to_end(key)
        # Oldest first: past the size, or the time (a call never rung holds nothing for long).
        while self._reads:
            at, oldest = next(iter(self._reads.values()))
            if len(self._reads) <= self.size and now - at <= self.seconds:
                break
            self._reads.popitem(last=False)
            oldest.cancel()

    async def _one(self, resources: Resources, key: tuple[str, str]) -> Any | None:
        try:
            async with autocommit(resources.engine) as direct:
                if direct is None:
                    return None
                return await _read(direct, resources.engine.dialect, *key)
        except Exception as exc:  # the event reads for itself, and meets the error there
            log.debug("read ahead failed", extra={"error": type(exc).__name__})
            return None

    def _ended(self, _task: asyncio.Task[Any]) -> None:
        self._running -= 1

    async def take(self, source: str, external_id: str) -> Any | None:
        """The read taken ahead for this call (waited for if still running), or None."""
        held = self._reads.pop((source, external_id), None)
        if held is None:
            return None
        at, task = held
        if time.monotonic() - at > self.seconds:
            task.cancel()
            return None
        try:
            row = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                return None
            raise
        if row is not None:
            self.used += 1
        return row

    async def close(self) -> None:
        for _, task in self._reads.values():
            await cancel_and_wait(task)
        self._reads.clear()


# --- the write -----------------------------------------------------------------------------

_EVENT_COLUMNS = repo.EVENT_COLUMNS
_FIRST_EVENT = 5  # $1-$3: the guard's; $4: how many message numbers the event takes
_FIRST_STATE = _FIRST_EVENT + len(_EVENT_COLUMNS)
_FIRST_RIDER = _FIRST_STATE + len(repo.STATE_COLUMNS)
_WRITES: dict[tuple[Any, ...], str] = {}


def _riding(ctx: ExpressContext, dialect: Dialect, first: int) -> tuple[list[str], list[Any]]:
    """The steps' rows (inserted only if the event is) and their own CTEs
    (`ExpressContext.also`), as CTEs with parameters from `$first`, and those parameters."""
    riders, args = db_riders.ctes(
        [(r.table, r.rows) for r in ctx.riders],
        dialect,
        first,
        where="EXISTS (SELECT 1 FROM ev)",
        returning=db_riders.KEY,
    )
    first += len(args)
    for cte, values in ctx.ctes:
        riders.append(cte(first))
        args += values
        first += len(values)
    return riders, args


def _took(ctx: ExpressContext, ids: list[Any]) -> None:
    """Each rider's ids, as the write returned them."""
    for rider, taken in zip(ctx.riders, ids, strict=True):
        rider.ids = list(taken)


def _ids_of(riding: int) -> str:
    """Each rider's ids, in row order, as the write's last columns."""
    return "".join(f", ARRAY(SELECT id FROM riding_{n} ORDER BY id)" for n in range(riding))


def _write_sql(dialect: Dialect, riders: list[str], riding: int) -> str:
    """The guarded write, with the riders' CTEs (`riders`, their parameters from
    `_FIRST_RIDER`; the first `riding` insert rows): the event's id (NULL when nothing was
    written) and each rider's ids."""
    key = (id(dialect), repo.with_event_reads()[0], riding, *riders)
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
        arrays = unnest_arrays(state, _FIRST_STATE)
        names = ", ".join(name for name, _ in state)
        merged = (
            f"st AS (UPDATE call SET {sets}, frame_seq = call.frame_seq + $4"
            f" FROM unnest({arrays}) AS s({names})"
            " WHERE call.id = $1 AND EXISTS (SELECT 1 FROM ev) RETURNING call.id)"
        )
        found = (
            f"WITH {_guard(dialect)}, ev AS ({inserted}), {merged}"
            + "".join(f", {rider}" for rider in riders)
            + f" SELECT (SELECT id FROM ev), (SELECT count(*) FROM st){_ids_of(riding)}"
        )
        _WRITES[key] = found
    return found


def _processors(table: Any, columns: tuple[str, ...], dialect: Dialect) -> list[Any]:
    return insert_sql(table, columns, dialect)[1]


# --- the flow ------------------------------------------------------------------------------


async def accept(
    resources: Resources,
    steps: list[Step],
    *,
    source: str,
    event: CallEvent,
    raw: bytes,
    ahead: Ahead | None = None,
) -> IngestOutcome | None:
    """Store and process `event` the express way; None when it must take the locked path
    (nothing of it was written then). `ahead`: where a read of the call may wait."""
    engine = resources.engine
    dialect = engine.dialect
    row = None if ahead is None else await ahead.take(source, event.call_id)
    async with autocommit(engine) as direct:
        if direct is None:
            return None
        if row is None:
            row = await _read(direct, dialect, source, event.call_id)
        if row is None:
            return None  # a new call: the locked path creates it
        before = repo.state_of(row)
        if before.state is None:
            return None  # no event merged yet
        planned = _plan(resources, steps, row, event, before)
        if planned is None:
            return None
        ctx, after = planned
        # A replay, or an event stored meanwhile, conflicts in the write: nothing of it is
        # kept, and the locked path answers it with the original outcome.
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
        call=snapshot_after(row, after),
        previous_state=before.state,
        resources=resources,
        reads={name: getattr(row, name) for name in repo.with_event_reads()[1]},
        frame_seq=int(row.frame_seq),
    )
    return (ctx, after) if _planned(steps, ctx) else None


def _planned(steps: list[Step], ctx: ExpressContext) -> bool:
    """Each step's `express`, in order; False as soon as one declines."""
    try:
        return all(step.express(ctx) for step in steps)  # type: ignore[attr-defined]
    except Exception as exc:
        # A step's planning is pure: an error there is a bug, and the locked path runs the
        # step for real (and stores the event for a retry if it fails there too). The class
        # name only: a message may quote a caller's number or a name.
        log.warning(
            "express planning failed; the locked path takes the event",
            extra={"error": type(exc).__name__},
        )
        return False


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
    values = event_values(source, event, raw, row.id, before, after, now, processed=True)
    state = repo.state_values(after)
    event_args = bound([values], _EVENT_COLUMNS, _processors(repo.EVENT, _EVENT_COLUMNS, dialect))
    state_args = bound(
        [state], repo.STATE_COLUMNS, _processors(repo.CALL, repo.STATE_COLUMNS, dialect)
    )
    riders, rider_args = _riding(ctx, dialect, _FIRST_RIDER)
    result = await direct.fetchrow(
        _write_sql(dialect, riders, len(ctx.riders)),
        row.id,
        row.version,
        row.reads_hash,
        ctx.frames,
        *([value] for value in event_args[0]),
        *([value] for value in state_args[0]),
        *rider_args,
    )
    assert result is not None
    if result[0] is None:
        return None  # the call moved on since the read, or the event came in meanwhile
    _took(ctx, list(result)[2:])
    return IngestOutcome(int(result[0]), row.id, after.state, False, ctx.call, before.state)


# --- a call's first event ------------------------------------------------------------------
# An `offered` goes in a few reads and one write, and no transaction: the steps' reads
# (`express_read`: the caller's lookup, whose first statement selects the call's id from its
# sequence along: frames carry it; a withheld number, not looked up, takes it on its own; a
# caller the history knows, the cache or the store and the near-repeat candidates; ids for
# the alerts planned), then one statement that creates the call (flagged if its alerts say
# so) if no event created it meanwhile, stores the event and the steps' rows (the context,
# the alerts, the outbox's message) and appends the consultation's audit rows to the chain.
# A call that exists by then (a replay, another event first, another worker) writes nothing
# there, and the locked path takes the event.

# The call table's own sequence (its BIGSERIAL id's): by name in the statement's text, so
# that the name is resolved once, when the statement is prepared on a connection
# (`pg_get_serial_sequence` per call cost the database half as much again as the nextval).
_CALL_ID_SQL = "nextval('call_id_seq')"


async def _next_call_id(direct: Direct, ctx: ExpressContext) -> int:
    """A new call's id (frames carry it, so it is taken before the write): the one a step's
    read selected along with its own, else on its own."""
    if ctx.taken_id is not None:
        return ctx.taken_id
    row = await direct.fetchrow(f"SELECT {_CALL_ID_SQL}")
    assert row is not None
    return int(row[0])


def _always() -> bool:
    return True


_NEW_CALL_COLUMNS = (
    "id", "source", "external_id", "flagged", "frame_seq", "created_at", *repo.STATE_COLUMNS,
)  # fmt: skip


@dataclass(frozen=True)
class _NewCall:
    """What `snapshot_after` reads of a call row, for a call not written yet."""

    id: int
    source: str
    external_id: str


async def accept_new(
    resources: Resources,
    steps: list[Step],
    *,
    source: str,
    event: CallEvent,
    raw: bytes,
    quiet: Callable[[], bool] | None = None,
) -> IngestOutcome | None:
    """Create the call of `event`, store and process it the express way; None when it must
    take the locked path (nothing of it was written then)."""
    engine = resources.engine
    dialect = engine.dialect
    async with autocommit(engine) as direct:
        if direct is None:
            return None
        before = lifecycle.CallState()
        after = lifecycle.apply(before, fact_of(event, resources.settings.default_region))
        ctx = ExpressContext(
            event=event,
            # Its id: selected with a read, else taken once every step has read.
            call=snapshot_after(_NewCall(0, source, event.call_id), after),
            previous_state=None,
            resources=resources,
            reads={},
            frame_seq=0,
            new_call=True,
            id_sql=_CALL_ID_SQL,
            quiet=quiet or _always,
        )
        for step in steps:
            read = getattr(step, "express_read", None)
            if read is not None and not await read(ctx, direct):
                return None
        ctx.call = replace(ctx.call, id=await _next_call_id(direct, ctx))
        if not _planned(steps, ctx):
            return None
        written = await _write_new(direct, dialect, ctx, source, event, raw, after)
    if written is None:
        return None
    await run_after_commit(ctx.actions)
    return written


def _write_new_sql(dialect: Dialect, riders: list[str], riding: int, audited: bool) -> str:
    """The call created unless it exists ($1...: `_NEW_CALL_COLUMNS`), the event inserted
    only if the call was (a unique violation if its id is stored on another call), the
    riders only if the event was: the event's id (NULL when nothing was written) and each
    rider's ids. `audited`: the last riders are the audit chain's append (`chain.riding_if`),
    the call created only if the chain's head row exists (else nothing is written, and the
    locked path creates it), and the rows appended last."""
    key = ("new", id(dialect), riding, audited, *riders)
    found = _WRITES.get(key)
    if found is None:
        call = [(name, array_type(repo.CALL, name, dialect)) for name in _NEW_CALL_COLUMNS]
        created = unnest_insert(
            "call", call, 1, "id", conflict="ON CONFLICT (source, external_id) DO NOTHING",
            where="EXISTS (SELECT 1 FROM audit_head)" if audited else "",
        )  # fmt: skip
        event = [(name, array_type(repo.EVENT, name, dialect)) for name in _EVENT_COLUMNS]
        inserted = unnest_insert(
            "call_event", event, 1 + len(call), "id", where="EXISTS (SELECT 1 FROM c)"
        )
        found = (
            f"WITH {'RECURSIVE ' if audited else ''}c AS ({created}), ev AS ({inserted})"
            + "".join(f", {rider}" for rider in riders)
            + f" SELECT (SELECT id FROM ev){_ids_of(riding)}"
            + (f", {chain.AUDITED}" if audited else "")
        )
        _WRITES[key] = found
    return found


async def _write_new(
    direct: Direct,
    dialect: Dialect,
    ctx: ExpressContext,
    source: str,
    event: CallEvent,
    raw: bytes,
    after: lifecycle.CallState,
) -> IngestOutcome | None:
    assert after.state is not None
    call_id = ctx.call.id
    now = utcnow()
    values = event_values(
        source, event, raw, call_id, lifecycle.CallState(), after, now, processed=True
    )
    call = {
        "id": call_id,
        "source": source,
        "external_id": event.call_id,
        "flagged": ctx.flag_call,
        "frame_seq": ctx.frames,
        "created_at": now,
        **repo.state_values(after),
    }
    call_args = bound([call], _NEW_CALL_COLUMNS, _processors(repo.CALL, _NEW_CALL_COLUMNS, dialect))
    event_args = bound([values], _EVENT_COLUMNS, _processors(repo.EVENT, _EVENT_COLUMNS, dialect))
    first = 1 + len(_NEW_CALL_COLUMNS) + len(_EVENT_COLUMNS)
    riders, rider_args = _riding(ctx, dialect, first)
    audited = bool(ctx.audit_rows)
    if audited:
        ctes, audit_args = chain.riding_if(
            first + len(rider_args), "EXISTS (SELECT 1 FROM ev)", ctx.audit_rows
        )
        riders, rider_args = riders + ctes, rider_args + audit_args
    try:
        result = await direct.fetchrow(
            _write_new_sql(dialect, riders, len(ctx.riders), audited),
            *([value] for value in call_args[0]),
            *([value] for value in event_args[0]),
            *rider_args,
        )
    except IntegrityError:
        # The event's id is stored already, on another call, or (ids taken ahead) an alert's
        # id is taken: nothing was written.
        return None
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != _DEADLOCK:
            raise
        # Its chain's head, locked, and a concurrent insert of the same call by a locked
        # path that waits for the head: the database chose this statement to undo.
        return None
    assert result is not None
    if result[0] is None:
        return None  # the call exists: the locked path merges the event into it
    _took(ctx, list(result)[1 : 1 + len(ctx.riders)])
    if audited:
        assert result[-1] == len(ctx.audit_rows)
        chain.counted(ctx.audit_rows)
    return IngestOutcome(int(result[0]), call_id, after.state, False, ctx.call, None)


_DEADLOCK = "40P01"
