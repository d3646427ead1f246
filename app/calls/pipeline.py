"""Processing after an event is accepted (stored): runs the steps of ring -> screen
(`app.calls.step` says what a step is and the order they are registered in).

The telephony issue owns the mechanism (run the steps for each stored event, in order per
call, retry a failure from the stored event, pick up the unprocessed after a restart).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import tracing
from app.calls import express
from app.calls import repository as repo
from app.calls import service as calls
from app.calls.keyed_locks import KeyedLocks
from app.calls.models import Call, CallEventRow
from app.calls.snapshot import snapshot_of
from app.calls.step import Step, StepContext
from app.correlation import CALL_ID
from app.db import pop_after_commit
from app.resources import Resources
from app.tasks import cancel_and_wait
from app.telephony.events import CallEvent

log = logging.getLogger(__name__)


class GroupFailed(Exception):
    """A group's transaction failed and was rolled back: nothing of it is stored."""


class Pipeline:
    """Runs the steps for every stored event: in the ingest's own transaction (`accept`, the
    webhooks' path), and from a supervised sweeper that claims what is accepted but not
    processed (failed, or left by a process that stopped) with a retry delay that doubles per
    attempt. (`submit` processes an already-committed event in the background, as the sweeper
    does, for producers that store events themselves.)

    The sweeper processes each event in one transaction: `processed_at` is set first (so the
    row is locked and a concurrent processor waits, then finds it done), then every step runs,
    then the commit, then the after-commit actions the steps queued. A step that raises rolls
    all of it back; the failure is recorded and the event retried from what was stored.
    """

    def __init__(
        self,
        resources: Resources,
        steps: list[Step],
        *,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 300.0,
        batch: int = 100,
        express_events: bool = True,
    ) -> None:
        self.resources = resources
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.batch = batch
        self._locks = KeyedLocks()
        # Processing shares the connection pool with ingest: bounded, so that a burst of
        # accepted events waits here (holding no connection) rather than starving new ingests.
        self._slots = asyncio.Semaphore(max(1, resources.settings.db_pool_size // 2))
        # The express path (app.calls.express): the event types every step may take that
        # way, PostgreSQL through asyncpg only; at most half the pool's connections at once
        # (a burst past that is grouped, in transactions, instead of waiting for one).
        postgres = not resources.settings.is_sqlite
        self._express = express_events and postgres
        self.steps = steps  # (sets express_types and express_new_types)
        self._express_slots = self._express_max = max(1, resources.settings.db_pool_size // 2)
        # The read a ringing needs, taken right after its offered is stored (express.Ahead).
        self.ahead = express.Ahead() if "ringing" in self.express_types else None
        # Events stored the express way, and those that tried and took the locked path.
        self.expressed = 0
        self.express_fallbacks = 0
        self._sweeper: asyncio.Task[None] | None = None
        self.processed = 0  # events this process completed (for tests and metrics)
        self.failed = 0

    @property
    def steps(self) -> list[Step]:
        return self._steps

    @steps.setter
    def steps(self, steps: list[Step]) -> None:
        """The steps, and the event types they may all take express (`express_types`) and
        create their call with that way (`express_new_types`: an offered)."""
        self._steps = steps
        on = self._express
        self.express_types = express.event_types(steps) if on else frozenset()
        self.express_new_types = express.new_call_types(steps) if on else frozenset()

    @classmethod
    def from_settings(cls, resources: Resources, steps: list[Step]) -> Pipeline:
        s = resources.settings
        return cls(
            resources,
            steps,
            lease_seconds=s.pipeline_lease_seconds,
            poll_seconds=s.host_period(s.pipeline_poll_seconds),
            retry_base_seconds=s.pipeline_retry_base_seconds,
            retry_max_seconds=s.pipeline_retry_max_seconds,
            express_events=s.telephony_express,
        )

    # --- express: two statements, no transaction ----------------------------------------

    async def express(
        self,
        *,
        source: str,
        event: CallEvent,
        raw: bytes,
        create: bool = True,
        quiet: Callable[[], bool] | None = None,
    ) -> calls.IngestOutcome | None:
        """Store and process `event` the express way (app.calls.express) when it qualifies
        and a connection slot is free; None when it must take the locked path (`accept`),
        nothing of it having been written. `create`: an event may create its call that way
        (a commit of its own: the caller says no when events are being grouped). `quiet`:
        whether the caller groups nothing right now (asked again once the new call's first
        read is in: `ExpressContext.quiet`)."""
        kind = event.type.value
        new_call = create and kind in self.express_new_types
        if not (new_call or kind in self.express_types) or self._express_slots <= 0:
            return None
        self._express_slots -= 1
        try:
            with tracing.span("call_event.express"):
                if new_call:
                    outcome = await express.accept_new(
                        self.resources, self.steps, source=source, event=event, raw=raw,
                        quiet=lambda: self._alone() and (quiet is None or quiet()),
                    )  # fmt: skip
                else:
                    outcome = await express.accept(
                        self.resources, self.steps, source=source, event=event, raw=raw,
                        ahead=self.ahead,
                    )  # fmt: skip
        finally:
            self._express_slots += 1
        if outcome is None:
            self.express_fallbacks += 1
            return None
        self.processed += 1
        self.expressed += 1
        self.stored(source, event)
        return outcome

    def _alone(self) -> bool:
        """No other event is on the express path (the one asking holds a slot)."""
        return self._express_slots >= self._express_max - 1

    def stored(self, source: str, event: CallEvent) -> None:
        """`event` is stored (committed) by the locked path: an offered's call is read ahead
        for its ringing (`express.Ahead`)."""
        if self.ahead is not None and event.type.value == "offered":
            self.ahead.take_ahead(self.resources, source, event.call_id)

    # --- inline: in the ingest's own transaction --------------------------------------

    async def accept(
        self, session: AsyncSession, *, source: str, event: CallEvent, raw: bytes
    ) -> calls.IngestOutcome:
        """Store `event` and run the steps for it in the request's transaction (`session`).

        One transaction per event instead of two: the event is stored already processed, and
        what the steps wrote commits with it, atomically, before the 2xx; the steps' publishing
        runs after that commit, before the response (the alert is on the screen before the
        platform hears back). The call row is locked from the ingest's first statement to the
        commit, so the events of one call are processed one at a time, in the order they were
        stored, whichever worker receives them.

        A step that raises rolls the whole transaction back; the event is then stored again on
        its own in a fresh transaction, unprocessed, with the failure and a retry delay, for
        the sweeper to retry from what was stored (accepted means durable either way).
        """
        outcome = await self._store(session, source=source, event=event, raw=raw)
        if outcome.duplicate or outcome.call is None:
            return outcome
        try:
            await self._run([self._inline_context(session, event, outcome)])
        except Exception as exc:
            error, postgres = await self._abandon(session, exc, "event", 1)
            return await self._store_for_retry(
                session,
                source=source,
                event=event,
                raw=raw,
                error=error,
                # The id the failed attempt saw (steps key their idempotency on it). A sequence
                # value is never handed out twice; SQLite reuses a rolled-back id by itself.
                row_id=outcome.event_row_id if postgres else None,
            )
        self.processed += 1
        return outcome

    async def accept_many(
        self,
        session: AsyncSession,
        *,
        source: str,
        events: list[tuple[CallEvent, bytes]],
        separable: bool = False,
    ) -> list[calls.IngestOutcome]:
        """`accept` for a batch, in one transaction: outcomes in the order of `events`.

        Events are taken grouped by call, calls in a fixed order (their external id) and each
        call's events in the order given: concurrent batches then lock call rows in the same
        order and cannot deadlock on them, and each call's events are processed in order.

        A step that raises rolls the whole batch back; every event is then stored again in a
        fresh transaction, unprocessed, for the sweeper to process (in the order stored) after
        the retry delay: accepted still means durable, for every event of the batch. With
        `separable` (events that only share a transaction to save work: app.calls.grouping)
        it raises `GroupFailed` after the rollback instead, for the caller to take each event
        on its own, so that one bad event does not hold back the others.
        """
        order = sorted(range(len(events)), key=lambda i: events[i][0].call_id)
        outcomes: dict[int, calls.IngestOutcome] = {}
        try:
            try:
                stored = await calls.ingest_many(
                    session,
                    source=source,
                    events=[events[i] for i in order],
                    region=self.resources.settings.default_region,
                )
            except calls.BatchConflict:
                # Rare (an event id reused across calls): one event at a time sorts it out.
                await session.rollback()
                pop_after_commit(session)
                stored = None
            todo: list[StepContext] = []
            for n, i in enumerate(order):
                event, raw = events[i]
                if stored is None:
                    outcome = await self._store(session, source=source, event=event, raw=raw)
                else:
                    outcome = stored[n]
                outcomes[i] = outcome
                if not (outcome.duplicate or outcome.call is None):
                    todo.append(self._inline_context(session, event, outcome))
            await self._run(todo)
        except Exception as exc:
            if separable:
                await self._abandon(session, exc, "group", len(events), "each event on its own")
                raise GroupFailed from exc
            error, postgres = await self._abandon(session, exc, "batch", len(events))
            retried: list[calls.IngestOutcome] = []
            for i in order:
                event, raw = events[i]
                seen = outcomes.get(i)
                retried.append(
                    await self._store_for_retry(
                        session,
                        source=source,
                        event=event,
                        raw=raw,
                        error=error,
                        # As in `accept`: keep the id the failed attempt saw (PostgreSQL).
                        row_id=seen.event_row_id
                        if postgres and seen is not None and not seen.duplicate
                        else None,
                    )
                )
            outcomes = dict(zip(order, retried, strict=True))
            return [outcomes[i] for i in range(len(events))]
        self.processed += sum(1 for o in outcomes.values() if not o.duplicate)
        return [outcomes[i] for i in range(len(events))]

    async def _store(
        self, session: AsyncSession, *, source: str, event: CallEvent, raw: bytes
    ) -> calls.IngestOutcome:
        """Store an event already marked processed: its steps run in this same transaction."""
        return await calls.ingest(
            session,
            source=source,
            event=event,
            raw=raw,
            region=self.resources.settings.default_region,
            lease_seconds=self.lease_seconds,
            processed=True,
        )

    def _inline_context(
        self, session: AsyncSession, event: CallEvent, outcome: calls.IngestOutcome
    ) -> StepContext:
        assert outcome.call is not None
        return StepContext(
            event=event,
            event_row_id=outcome.event_row_id,
            call=outcome.call,
            previous_state=outcome.previous_state,
            session=session,
            resources=self.resources,
            first_event=outcome.previous_state is None,
        )

    async def _run(self, ctxs: list[StepContext]) -> None:
        """Every step for the events of one transaction, in order (see `Step`)."""
        if not ctxs:
            return
        for step in self.steps:
            prepare = getattr(step, "prepare", None)
            if prepare is not None:
                await prepare(ctxs)
            for ctx in ctxs:
                await step(ctx)
            finish = getattr(step, "finish", None)
            if finish is not None:
                await finish(ctxs)

    async def _abandon(
        self,
        session: AsyncSession,
        exc: Exception,
        what: str,
        count: int,
        then: str = "stored for a retry",
    ) -> tuple[str, bool]:
        """Roll back a failed processing transaction; the error's class name (only: messages
        may quote a caller's number or a name) and whether the store is PostgreSQL."""
        error = type(exc).__name__
        self.failed += 1
        postgres = self.resources.engine.dialect.name == "postgresql"
        await session.rollback()
        pop_after_commit(session)
        log.warning(
            f"{what} processing failed; {then}",
            extra={"events": count, "error": error}
            | ({} if what == "group" else {"retry_in": self.retry_base_seconds}),
        )
        return error, postgres

    async def _store_for_retry(
        self,
        session: AsyncSession,
        *,
        source: str,
        event: CallEvent,
        raw: bytes,
        error: str,
        row_id: int | None,
    ) -> calls.IngestOutcome:
        """Store the event again on its own, unprocessed, for the sweeper after the delay."""
        return await calls.ingest(
            session,
            source=source,
            event=event,
            raw=raw,
            region=self.resources.settings.default_region,
            lease_seconds=self.retry_base_seconds,
            last_error=error,
            row_id=row_id,
        )

    # --- one event --------------------------------------------------------------------

    async def process(self, event_row_id: int, call_id: int) -> bool:
        """Run the steps for one stored event. True when done here, False when it was
        already processed or failed (then it is scheduled for a retry)."""
        named = CALL_ID.set(call_id)  # this event's log lines name its call
        try:
            async with self._locks.hold(call_id), self._slots:
                try:
                    return await self._run_steps(event_row_id, call_id)
                except Exception as exc:
                    self.failed += 1
                    await self._record_failure(event_row_id, exc)
                    return False
        finally:
            CALL_ID.reset(named)

    async def _run_steps(self, event_row_id: int, call_id: int) -> bool:
        async with self.resources.sessions() as session:
            try:
                async with session.begin():
                    call: Call | None = None
                    if self.resources.engine.dialect.name == "postgresql":
                        # Lock order as in ingest: the call row, then the event row. (Taking
                        # the event first deadlocks with an ingest of a duplicate of it.)
                        call = await session.get(Call, call_id, with_for_update=True)
                    # On SQLite, write first: the transaction takes the single writer lock
                    # at once rather than failing to upgrade a read later.
                    row = await repo.mark_processed(session, event_row_id)
                    if row is None:
                        return False
                    if call is None:
                        call = await session.get(Call, row.call_id)
                    assert call is not None  # FK
                    ctx = StepContext(
                        event=CallEvent.model_validate(row.canonical),
                        event_row_id=row.id,
                        call=snapshot_of(call),
                        previous_state=row.state_before,
                        session=session,
                        resources=self.resources,
                    )
                    await self._run([ctx])
            except BaseException:
                pop_after_commit(session)
                raise
            actions = pop_after_commit(session)
        self.processed += 1
        for action in actions:
            # Stored and processed is what counts: a failing side effect (a publish) is
            # logged, not retried as if the event were unprocessed.
            try:
                await action()
            except Exception:
                log.exception("after-commit action failed", extra={"event_row": event_row_id})
        return True

    async def _record_failure(self, event_row_id: int, exc: Exception) -> None:
        # The class name only: exception messages may quote a caller's number or a name.
        error = type(exc).__name__
        try:
            async with self.resources.sessions() as session, session.begin():
                attempts = await session.scalar(
                    select(CallEventRow.attempts).where(CallEventRow.id == event_row_id)
                )
                delay = min(
                    self.retry_max_seconds,
                    self.retry_base_seconds * 2 ** max(0, int(attempts or 1) - 1),
                )
                await repo.record_failure(session, event_row_id, error, delay)
            log.warning(
                "event processing failed; will retry",
                extra={"event_row": event_row_id, "error": error, "retry_in": delay},
            )
        except Exception:
            # Not even the failure could be recorded (database down): the lease runs out and
            # the sweeper retries it anyway.
            log.exception(
                "could not record a processing failure", extra={"event_row": event_row_id}
            )

    # --- sweeper ----------------------------------------------------------------------

    async def sweep_once(self) -> int:
        """Claim due events and process them in order; returns how many were claimed."""
        async with self.resources.sessions() as session, session.begin():
            claimed = await repo.claim_due(session, self.lease_seconds, self.batch)
        for item in claimed:
            await self.process(item.id, item.call_id)
        return len(claimed)

    async def _sweep_forever(self) -> None:
        backoff = self.poll_seconds
        while True:
            try:
                claimed = await self.sweep_once()
                backoff = self.poll_seconds
                if claimed >= self.batch:
                    continue  # more are waiting
            except asyncio.CancelledError:
                raise
            except Exception:
                # Supervised: a database outage must not end the sweeper.
                log.exception("sweeper pass failed")
                backoff = min(backoff * 2, 30.0)
            await asyncio.sleep(backoff)

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="pipeline-sweeper")

    async def stop(self) -> None:
        """Stop the sweeper. Events still unprocessed are stored: a restart (or another
        worker) claims them when their lease runs out."""
        await cancel_and_wait(self._sweeper)
        self._sweeper = None
        if self.ahead is not None:
            await self.ahead.close()


__all__ = ["GroupFailed", "Pipeline"]
