"""The realtime step of the call pipeline: after history, publish what the event changed.

- supervisors: every event as `call.<type>` (the call's state; with its alerts on arrival);
- the handler: from `ringing` on. `call.ringing` carries the full context and alerts (alerts
  raised on `offered`, while the caller was queued, reach the handler the moment the call rings
  at their desk); so do `answered` when it comes without a ringing before it, and
  `transferred` for the handler it is transferred to. The handler it leaves gets
  `call.transferred` without them.

Each event's message is staged in the processing transaction and written to the outbox when it
commits (app.realtime.outbox): the messages of every event processed in that transaction (a
batch) go out together after the commit, in the order staged, in one round trip to the broker.
The handler's frame and the supervisors' of one event are one message with one `seq`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.calls.snapshot import CallSnapshot
from app.calls.step import ExpressContext, StepContext
from app.history.stored_context import from_reads, stored_context
from app.realtime import outbox
from app.realtime.envelope import SUPERVISORS, handler_channel
from app.realtime.publish import call_view, check_type

# Events on which a handler's screen needs the whole picture.
_ARRIVAL_AT_DESK = frozenset({"ringing", "transferred"})

Plan = list[tuple[str, Mapping[str, object]]]


def _needs_context(event_type: str, previous_state: str | None) -> bool:
    """Whether the handler's frame carries the context and alerts."""
    return event_type in _ARRIVAL_AT_DESK or (
        event_type == "answered" and previous_state in (None, "offered")
    )


def _reads_context(event_type: str, previous_state: str | None) -> bool:
    return _needs_context(event_type, previous_state) or event_type in ("offered", "ringing")


def _handed_over(facts: Mapping[str, Any]) -> tuple[object, list[object]] | None:
    """The context and alerts an earlier step (history) left, if it did."""
    if "context" not in facts:
        return None
    return facts["context"], list(facts.get("alerts") or [])


async def _context_and_alerts(ctx: StepContext) -> tuple[object, list[object]]:
    handed = _handed_over(ctx.facts)
    if handed is not None:
        return handed
    stored = await stored_context(ctx.session, ctx.call.id)
    if stored is None:
        return None, []
    context, alerts = stored
    return context, list(alerts)


def _plan(
    event_type: str,
    occurred_at: object,
    call: CallSnapshot,
    previous_state: str | None,
    context: object,
    alerts: list[object],
) -> Plan:
    """Who is sent what for this event: (channel, data) pairs, the handler's screen first."""
    base: dict[str, object] = {
        "call": call_view(call),
        "event": {"type": event_type, "occurred_at": occurred_at},
    }
    needs_context = _needs_context(event_type, previous_state)
    supervisor_data = dict(base)
    if event_type in ("offered", "ringing", "transferred"):
        supervisor_data["alerts"] = alerts
    # The handler's screen first: it is the one the caller is ringing at (ring -> screen);
    # each channel has its own cursors, so the order between channels is free.
    plan: Plan = []

    handler = call.handler_id
    if handler and event_type != "offered":
        data = dict(base)
        if needs_context:
            data.update(context=context, alerts=alerts)
        plan.append((handler_channel(handler), data))
    if event_type == "transferred" and len(call.handlers) >= 2 and call.handlers[-2] != handler:
        plan.append((handler_channel(call.handlers[-2]), dict(base)))
    plan.append((SUPERVISORS, supervisor_data))
    return plan


class RealtimeStep:
    """Pipeline step: queue the publications of this event for after the commit."""

    # Any event can go express as far as this step is concerned (app.calls.express).
    express_on = frozenset({"offered", "ringing", "answered", "transferred", "ended"})
    express_new_on = express_on  # a call's first event, too

    async def __call__(self, ctx: StepContext) -> None:
        event_type = str(ctx.event.type)
        context: object = None
        alerts: list[object] = []
        if _reads_context(event_type, ctx.previous_state):
            context, alerts = await _context_and_alerts(ctx)
        plan = _plan(
            event_type, ctx.event.occurred_at, ctx.call, ctx.previous_state, context, alerts
        )
        type_ = "call." + event_type
        check_type(type_)
        outbox.stage(ctx.session, ctx.resources, type_, ctx.call.id, plan)

    def express(self, ctx: ExpressContext) -> bool:
        """The same publications, planned from the express read; declines when the call has
        alerts that an earlier step did not hand over (they are read in full on the locked
        path)."""
        event_type = str(ctx.event.type)
        context: object = None
        alerts: list[object] = []
        if _reads_context(event_type, ctx.previous_state):
            handed = _handed_over(ctx.facts)
            if handed is not None:
                context, alerts = handed
            else:
                known, stored = from_reads(ctx.reads)
                if not known:
                    return False
                if stored is not None:
                    context, alerts = stored[0], list(stored[1])
        plan = _plan(
            event_type, ctx.event.occurred_at, ctx.call, ctx.previous_state, context, alerts
        )
        type_ = "call." + event_type
        check_type(type_)
        outbox.stage_express(ctx, type_, ctx.call.id, plan)
        return True


realtime_step = RealtimeStep()
