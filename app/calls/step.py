"""Processing after an event is accepted (stored): the steps of ring -> screen.

The telephony issue owns the mechanism (run the steps for each stored event, in order per
call, retry a failure from the stored event, pick up the unprocessed after a restart). Later
domains contribute steps, registered in the lifespan in this order:

    history  (on offered/ringing: caller + household context and alerts, stored on the call;
              on ended: write-back of a contact)
    realtime (publish call state, alerts and context to handler and supervisor channels)

A step is `async def step(ctx: StepContext) -> None`. It works in `ctx.session` (the
processing transaction: the webhook request's own, which also stored the event, or the
sweeper's; committed once every step has run) and queues anything
that must only happen after that commit (publishing) with `ctx.after_commit(...)`. A step that
raises rolls the whole event back; the pipeline retries it later. Steps must therefore be
idempotent for a given stored event.

A transaction may hold many events (a batch webhook request). Each step then runs for all of
them, in order, before the next step starts; a step that has `prepare(ctxs)` / `finish(ctxs)`
gets them all before and after, to read ahead once for the whole batch and write once (the
history step's lookups and inserts), which is what makes a batch cheaper per event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.snapshot import CallSnapshot
from app.db import AfterCommit, after_commit
from app.resources import Resources
from app.telephony.events import CallEvent


@dataclass
class StepContext:
    event: CallEvent  # canonical; `event.type` is this event's type
    event_row_id: int  # the stored event's id
    call: CallSnapshot  # the call after this event was applied
    previous_state: str | None  # the call's state before this event (None: new call)
    session: AsyncSession
    resources: Resources
    # Steps may leave facts for later steps (e.g. history leaves "context" and "alerts").
    facts: dict[str, Any] = field(default_factory=dict)
    # True when this event's ingest, in this same transaction, merged the call's first event:
    # no earlier event of the call committed, so nothing was stored for it yet (steps may skip
    # reading back what they would store). False when unknown (the sweeper).
    first_event: bool = False

    def after_commit(self, action: AfterCommit) -> None:
        after_commit(self.session, action)


Step = Callable[[StepContext], Awaitable[None]]
# A step may also have async `prepare(ctxs)` and `finish(ctxs)` (a Sequence[StepContext]: every
# event of the transaction, in order), called before and after it runs for each of them.


# --- the express path (app.calls.express) ------------------------------------------------


@dataclass
class Rider:
    """Rows a step's `express` adds: inserted by the statement that stores the event, only if
    it does. `ids`: their ids, in row order, once that statement has run."""

    table: Table
    rows: list[dict[str, Any]]
    ids: list[int] = field(default_factory=list)


@dataclass
class ExpressContext:
    """What a step's `express(ctx) -> bool` sees: the event merged into the call as read by
    one statement outside any transaction, and nothing else (no session: `express` does no
    I/O). It returns False to decline (the event then takes the locked path, where `__call__`
    runs as usual), or True having planned its writes here: rows to insert with the event
    (`insert`), message numbers (`next_frame`) and what to do once it is stored
    (`after_write`). A step without `express` declines every event; `express_on` (a step
    attribute) names the event types it may take, so that others cost no read at all.

    A call's first event (`new_call`: the statement that stores it creates the call) goes
    express only if every step names its type in `express_new_on`. Such a call has nothing
    stored to read with it: a step that needs a read has `async express_read(ctx, direct) ->
    bool`, run before any `express` on the connection the event will be written on, outside
    any transaction (its answers go in `facts`; False declines). The call's id is taken
    from its sequence once every read is done, unless a read took it with its own statement
    (`id_sql`, selected along, its value put in `taken_id`: a round trip fewer). Its steps
    may also flag it (`flag_call`) and audit what it shows (`audit_rows`)."""

    event: CallEvent  # (its row id comes with the write: no step needs it before)
    call: CallSnapshot  # the call after this event
    previous_state: str | None
    resources: Resources
    reads: Mapping[str, object]  # what `calls.repository.read_with_event` reads, for this call
    frame_seq: int  # the call's last message number, as read
    new_call: bool = False  # the event creates the call (`call.id` taken from its sequence)
    facts: dict[str, Any] = field(default_factory=dict)  # as StepContext.facts
    riders: list[Rider] = field(default_factory=list)
    actions: list[AfterCommit] = field(default_factory=list)
    frames: int = 0  # message numbers taken
    ctes: list[tuple[Callable[[int], str], list[Any]]] = field(default_factory=list)
    id_sql: str | None = None  # a new call's: SQL of its id (the sequence's next value)
    taken_id: int | None = None  # that value, once a read has selected it
    flag_call: bool = False  # a new call: created flagged for supervisors (history's alerts)
    # A new call: whether nothing else is being stored right now (no group forming, no other
    # event on the express path). A step whose read finds more to do than it costs in a
    # group (a known caller's lookup) goes on only then: under load, calls share statements.
    quiet: Callable[[], bool] = field(default=lambda: True)
    # Audit rows (app.audit.service.row) appended to the chain by the statement that stores
    # the event, only if it does (a new call's: the caller's records it shows).
    audit_rows: list[dict[str, Any]] = field(default_factory=list)

    def next_frame(self) -> int:
        """The call's next message number (the statement moves the call's counter on)."""
        self.frames += 1
        return self.frame_seq + self.frames

    def insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> Rider:
        rider = Rider(table, list(rows))
        self.riders.append(rider)
        return rider

    def after_write(self, action: AfterCommit) -> None:
        self.actions.append(action)

    def also(self, cte: Callable[[int], str], args: Sequence[Any]) -> None:
        """A statement of the step's own in the one that stores the event, as a CTE
        (`cte(first)` -> `name AS (...)`, its parameters `args` numbered from `$first`). It
        runs whether or not the event is written: for writes that may happen more than once
        (marking published messages sent)."""
        self.ctes.append((cte, list(args)))
