"""The realtime step of the call pipeline: after history, publish what the event changed.

- supervisors: every event as `call.<type>` (the call's state; with its alerts on arrival);
- the handler: from `ringing` on. `call.ringing` carries the full context and alerts (alerts
  raised on `offered`, while the caller was queued, reach the handler the moment the call rings
  at their desk); so do `answered` when it comes without a ringing before it, and
  `transferred` for the handler it is transferred to. The handler it leaves gets
  `call.transferred` without them.

Everything is published after the processing transaction commits (`ctx.after_commit`): the
messages of every event processed in that transaction (a batch) go out together, in the order
queued, in one round trip to the broker.
"""

from __future__ import annotations

from app import tracing
from app.calls.step import StepContext
from app.history.stored_context import stored_context
from app.realtime.envelope import SUPERVISORS, handler_channel
from app.realtime.publish import broker_of, call_view, encode_message
from app.resources import Resources

# Events on which a handler's screen needs the whole picture.
_ARRIVAL_AT_DESK = frozenset({"ringing", "transferred"})


_OUTGOING = "realtime_outgoing"


class _Outgoing:
    """The messages a transaction publishes once it has committed, in order."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.messages: list[tuple[str, str]] = []

    async def send(self) -> None:
        with tracing.span("realtime.publish", frames=len(self.messages)):
            await broker_of(self.resources).publish_many(self.messages)


def _outgoing(ctx: StepContext) -> _Outgoing:
    """This transaction's outgoing messages, queued after its commit on first use. A new
    transaction (or one rolled back, which dropped its queue) starts a new list."""
    queued = ctx.session.info.get("after_commit", [])  # app.db.after_commit's queue
    out: _Outgoing | None = ctx.session.info.get(_OUTGOING)
    if out is None or not any(action == out.send for action in queued):
        out = ctx.session.info[_OUTGOING] = _Outgoing(ctx.resources)
        ctx.after_commit(out.send)
    return out


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

    out = _outgoing(ctx)
    for channel, data in plan:
        out.messages.append((channel, encode_message(type_, call.id, data)))
