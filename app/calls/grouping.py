"""Group commit: single webhook events that arrive together share one transaction.

A platform that posts one event per request pays, per event, for a transaction of its own:
BEGIN, the ingest's statements, the steps' statements, COMMIT, and a Redis call for what
they publish. Under load, while one transaction is in flight, more requests arrive; they
wait for it (they would have waited for a connection or the CPU anyway) and then go in
together, through the batch path (`Pipeline.accept_many`): the same outcomes, in a few
statements for the whole group.

Nothing changes for the platform: each request still gets its own answer (202, or 200 with
the original outcome for a replay), and only once its event is committed. A request that
finds nothing in flight goes at once, alone (`Pipeline.accept`), so a quiet line pays no
extra latency. Events of different sources never share a transaction (`accept_many` takes
one source).

A step that raises rolls the group back, and each of its events is then taken again in a
transaction of its own: the others are processed as if alone, and only the event the step
fails on is stored unprocessed for the sweeper (accepted still means durable). If storing
itself fails (the database is down), each request gets that error and nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app import tracing
from app.calls import service as calls
from app.calls.pipeline import GroupFailed, Pipeline
from app.db import unit_of_work
from app.errors import Unavailable
from app.metrics.catalogue import GROUP_SIZE
from app.telephony.events import CallEvent

if TYPE_CHECKING:
    from opentelemetry.context import Context

log = logging.getLogger(__name__)


@dataclass
class _Waiting:
    source: str
    event: CallEvent
    raw: bytes
    outcome: asyncio.Future[calls.IngestOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # The request's trace (None when tracing is off): its group's store span continues it.
    trace: Context | None = field(default_factory=tracing.capture)


def _collect(outcome: asyncio.Future[calls.IngestOutcome]) -> None:
    """Read a result nobody awaits, so that a failure is not reported as never retrieved."""
    if not outcome.cancelled():
        outcome.exception()


class GroupCommit:
    """Accepts single events through `pipeline`, grouping those that arrive while a
    transaction is in flight (at most `max_events` per transaction, `flushers` transactions
    in flight per process). Fewer than `min_events` waiting go one after another, each in a
    transaction of its own: the batch path's statements (IN lists, multi-row inserts, a
    sort by call) cost more for two or three events than the single path's do (issue 19:
    at 20 calls/s a ringing and another call's offered arrive together and went as a pair).
    """

    def __init__(
        self, pipeline: Pipeline, *, max_events: int = 100, min_events: int = 4, flushers: int = 1
    ) -> None:
        self.pipeline = pipeline
        self.max_events = max(1, max_events)
        self.min_events = max(2, min_events)
        self.flushers = max(1, flushers)
        self._waiting: list[_Waiting] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._singles: set[asyncio.Task[calls.IngestOutcome]] = set()  # events on their own way
        # Figures for tests and metrics: transactions run, events through them, largest group.
        self.groups = 0
        self.events = 0
        self.largest = 0
        self.retried_alone = 0  # events of failed groups, taken again one at a time
        # Calls with an event waiting here or in a transaction: a later event of such a call
        # does not go express (it would overtake the earlier one), it waits its turn.
        self._queued: dict[tuple[str, str], int] = {}

    async def accept(self, source: str, event: CallEvent, raw: bytes) -> calls.IngestOutcome:
        """Store and process `event`; returns once it is committed (as `Pipeline.accept`).
        An event that qualifies goes the express way first (`Pipeline.express`)."""
        if (source, event.call_id) in self._queued:
            return await self._join(source, event, raw)
        # Shielded as a group is (below): a request cancelled mid-way still has its event
        # stored, express or, if that declines, through a group.
        task = asyncio.get_running_loop().create_task(self._express_or_join(source, event, raw))
        self._singles.add(task)  # (for `drain`)
        task.add_done_callback(self._singles.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_collect)
            raise

    async def _express_or_join(
        self, source: str, event: CallEvent, raw: bytes
    ) -> calls.IngestOutcome:
        # A call's first event goes express only while no group is forming: under load, new
        # calls share a transaction (one commit for many: cheaper per event than a commit
        # each), while later events of stored calls still go express.
        create = self._quiet()
        outcome = await self.pipeline.express(
            source=source, event=event, raw=raw, create=create, quiet=self._quiet
        )
        if outcome is not None:
            return outcome
        return await self._join(source, event, raw)

    def _quiet(self) -> bool:
        """No group is forming or in flight."""
        return not self._tasks and not self._waiting

    async def _join(self, source: str, event: CallEvent, raw: bytes) -> calls.IngestOutcome:
        """Wait in the group for the next transaction."""
        key = (source, event.call_id)
        waiting = _Waiting(source, event, raw)
        self._queued[key] = self._queued.get(key, 0) + 1
        waiting.outcome.add_done_callback(lambda _: self._unqueue(key))
        self._waiting.append(waiting)
        if len(self._tasks) < self.flushers:
            task = asyncio.get_running_loop().create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a client that hangs up does not cancel a transaction holding others'
        # events; its event is committed anyway and a retry gets the original outcome.
        try:
            return await asyncio.shield(waiting.outcome)
        except asyncio.CancelledError:
            waiting.outcome.add_done_callback(_collect)  # nobody will read it now
            raise

    def _unqueue(self, key: tuple[str, str]) -> None:
        left = self._queued.pop(key) - 1
        if left:
            self._queued[key] = left

    async def drain(self) -> None:
        """Wait for every group in flight (shutdown)."""
        while self._tasks or self._singles:
            await asyncio.gather(*self._tasks, *self._singles, return_exceptions=True)
        if self.groups:
            log.info(
                "group commit",
                extra={"groups": self.groups, "events": self.events, "largest": self.largest,
                       "mean": round(self.events / self.groups, 1)},
            )  # fmt: skip

    async def _flush(self) -> None:
        while self._waiting:
            group = self._take()
            try:
                with tracing.span("call_event.store", group[0].trace, events=len(group)):
                    await self._commit(group)
            except BaseException as exc:
                # The store failed (it is down) or the process is stopping: whoever is not
                # answered yet gets the error; their events were not committed.
                failure = exc if isinstance(exc, Exception) else Unavailable("shutting down")
                for waiting in group:
                    if not waiting.outcome.done():
                        waiting.outcome.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise

    def _take(self) -> list[_Waiting]:
        """The longest-waiting events of one source, up to `max_events`, in arrival order."""
        source = self._waiting[0].source
        group: list[_Waiting] = []
        rest: list[_Waiting] = []
        for waiting in self._waiting:
            if waiting.source == source and len(group) < self.max_events:
                group.append(waiting)
            else:
                rest.append(waiting)
        self._waiting = rest
        return group

    async def _commit(self, group: list[_Waiting]) -> None:
        # Each request is answered once its event is committed and the after-commit actions
        # (the publishes) have run, as a request with its own transaction is: the alert is on
        # the screen before the platform hears back.
        if len(group) < self.min_events:
            for waiting in group:  # in arrival order: one call's events stay in order
                self._count(1)
                self._done(waiting, await self._alone(waiting))
            return
        self._count(len(group))
        try:
            async with unit_of_work(self.pipeline.resources.sessions) as session:
                outcomes = await self.pipeline.accept_many(
                    session,
                    source=group[0].source,
                    events=[(w.event, w.raw) for w in group],
                    separable=True,
                )
        except GroupFailed:
            # Rolled back, nothing of it stored: each event again in its own transaction,
            # where a failing step holds back (for the sweeper) only the event it failed on.
            self.retried_alone += len(group)
            for waiting in group:
                self._done(waiting, await self._alone(waiting))
            return
        for waiting, outcome in zip(group, outcomes, strict=True):
            self._done(waiting, outcome)

    def _done(self, waiting: _Waiting, outcome: calls.IngestOutcome) -> None:
        """Answer a committed event's request (the pipeline reads ahead what its call's next
        event will need)."""
        if not outcome.duplicate:
            self.pipeline.stored(waiting.source, waiting.event)
        _answer(waiting, outcome)

    def _count(self, events: int) -> None:
        """One transaction of `events` (the figures and the histogram are per transaction)."""
        self.groups += 1
        self.events += events
        self.largest = max(self.largest, events)
        GROUP_SIZE.observe(events)

    async def _alone(self, waiting: _Waiting) -> calls.IngestOutcome:
        async with unit_of_work(self.pipeline.resources.sessions) as session:
            return await self.pipeline.accept(
                session, source=waiting.source, event=waiting.event, raw=waiting.raw
            )


def _answer(waiting: _Waiting, outcome: calls.IngestOutcome) -> None:
    if not waiting.outcome.done():
        waiting.outcome.set_result(outcome)
