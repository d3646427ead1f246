"""A call as the pipeline's steps and the screens see it, whichever provider sent it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.calls.models import Call


@dataclass(frozen=True)
class CallSnapshot:
    """What later steps know of a call, whichever provider sent it."""

    id: int  # the service's own call id: the `call_id` of WebSocket frames and REST paths
    source: str  # which adapter: canonical | twilio | cti | sip
    external_id: str  # the provider's call id
    state: str  # offered | ringing | answered | transferred | ended
    caller_e164: str | None  # None when withheld, unavailable or not a dialable number
    presentation: str  # allowed | withheld | unavailable
    called: str | None
    queue: str | None
    handler_id: str | None  # the current handler (ringing at, answered by, transferred to)
    handlers: tuple[str, ...]  # every handler the call has been with, in order
    offered_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    ringing_at: datetime | None = None  # when it first rang at a desk


def snapshot_of(call: Call) -> CallSnapshot:
    return CallSnapshot(
        id=call.id,
        source=call.source,
        external_id=call.external_id,
        state=call.state,
        caller_e164=call.caller_e164,
        presentation=call.presentation,
        called=call.called,
        queue=call.queue,
        handler_id=call.handler_id,
        handlers=tuple(call.handlers or ()),
        offered_at=call.offered_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        ringing_at=call.ringing_at,
    )
