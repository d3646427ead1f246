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

from app.calls.step import StepContext
from app.history.stored_context import stored_context
from app.realtime import outbox
from app.realtime.envelope import SUPERVISORS, handler_channel
from app.realtime.publish import call_view, check_type

# Events on which a handler's screen needs the whole picture.
_ARRIVAL_AT_DESK = frozenset({"ringing", "transferred"})


async def _context_and_alerts(ctx: StepContext) -> tuple[object, list[object]]:
    if "context" in ctx.facts:
        return ctx.facts["context"], list(ctx.facts.get("alerts") or [])
    stored = await stored_context(ctx.session, ctx.call.id)
    if stored is None:
        return None, []
    context, alerts = stored
    return context, list(alerts)


async def realtime_step(ctx: StepContext) -> None:
    """Pipeline step: queue the publications of this event for after the commit."""
    event_type = str(ctx.event.type)
    type_ = "call." + event_type
    call = ctx.call
    base: dict[str, object] = {
        "call": call_view(call),
        "event": {"type": event_type, "occurred_at": ctx.event.occurred_at},
    }

    needs_context = event_type in _ARRIVAL_AT_DESK or (
        event_type == "answered" and ctx.previous_state in (None, "offered")
    )
    context: object = None
    alerts: list[object] = []
    if needs_context or event_type in ("offered", "ringing"):
        context, alerts = await _context_and_alerts(ctx)

    supervisor_data = dict(base)
    if event_type in ("offered", "ringing", "transferred"):
        supervisor_data["alerts"] = alerts
    # The handler's screen first: it is the one the caller is ringing at (ring -> screen);
    # each channel has its own cursors, so the order between channels is free.
    plan: list[tuple[str, dict[str, object]]] = []

    handler = call.handler_id
    if handler and event_type != "offered":
        data = dict(base)
        if needs_context:
            data.update(context=context, alerts=alerts)
        plan.append((handler_channel(handler), data))
    if event_type == "transferred" and len(call.handlers) >= 2 and call.handlers[-2] != handler:
        plan.append((handler_channel(call.handlers[-2]), dict(base)))
    plan.append((SUPERVISORS, supervisor_data))

    check_type(type_)
    outbox.stage(ctx.session, ctx.resources, type_, call.id, plan)
