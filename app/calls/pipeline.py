"""Processing after an event is accepted (stored): the steps of ring -> screen.

The telephony issue owns the mechanism (run the steps for each stored event, in order per
call, retry a failure from the stored event, pick up the unprocessed after a restart). Later
domains contribute steps, registered in the lifespan in this order:

    history  (on offered/ringing: caller + household context and alerts, stored on the call;
              on ended: write-back of a contact)
    realtime (publish call state, alerts and context to handler and supervisor channels)

A step is `async def step(ctx: StepContext) -> None`. It works in `ctx.session` (the
processing transaction, committed by the pipeline once every step has run) and queues anything
that must only happen after that commit (publishing) with `ctx.after_commit(...)`. A step that
raises rolls the whole event back; the pipeline retries it later. Steps must therefore be
idempotent for a given stored event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import AfterCommit, after_commit
from app.resources import Resources
from app.telephony.events import CallEvent


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

    def after_commit(self, action: AfterCommit) -> None:
        after_commit(self.session, action)


Step = Callable[[StepContext], Awaitable[None]]
