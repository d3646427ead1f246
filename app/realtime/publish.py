"""Publishing call messages: who receives what.

- `supervisors` receives every call's state and every alert.
- `handler:<id>` receives a call once it rings at that handler's desk (`ringing` on), until it
  ends or is transferred away.

Messages are staged in the transaction that produces them and written to the outbox when it
commits (app.realtime.outbox): published once stored, never lost to a crash or an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.snapshot import CallSnapshot
from app.realtime import outbox
from app.realtime.broker import Broker
from app.realtime.envelope import MESSAGE_TYPES, SUPERVISORS, encode_body, handler_channel
from app.resources import Resources

log = logging.getLogger(__name__)

# States in which a call is on a handler's desk.
AT_DESK = frozenset({"ringing", "answered", "transferred"})


def broker_of(resources: Resources) -> Broker:
    broker = resources.broker
    return broker


def call_view(call: CallSnapshot) -> dict[str, object]:
    """A call as frames show it (the caller's number is for the handler's screen, not logs)."""
    return {
        "id": call.id,
        "state": call.state,
        "source": call.source,
        # The telephony platform's own id for the call: what the handler's phone shows
        # (issue 15); `id` stays the service's.
        "platform_call_id": call.external_id,
        "caller": {"number": call.caller_e164, "presentation": call.presentation},
        "called": call.called,
        "queue": call.queue,
        "handler_id": call.handler_id,
        "handlers": list(call.handlers),
        "offered_at": call.offered_at,
        "ringing_at": call.ringing_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
    }


def check_type(type_: str) -> None:
    if type_ not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {type_!r}")


def encode_message(type_: str, call_id: int | None, data: Mapping[str, object]) -> str:
    """The body of one message (an envelope without its id)."""
    check_type(type_)
    return encode_body(type_, call_id, data)


def stage_to(
    session: AsyncSession,
    resources: Resources,
    channels: list[str],
    type_: str,
    call_id: int | None,
    data: Mapping[str, object],
) -> None:
    """One message on each of `channels` once `session` commits (the same data on each)."""
    check_type(type_)  # fails here, in the transaction, not when it commits
    outbox.stage(session, resources, type_, call_id, [(c, data) for c in dict.fromkeys(channels)])


def stage_call_message(
    session: AsyncSession,
    resources: Resources,
    call: CallSnapshot,
    type_: str,
    data: Mapping[str, object],
) -> None:
    """A call's message to supervisors and, if the call is at a handler's desk, to that
    handler, once `session` commits: late alerts (`alert.raised`), `prompts.updated`,
    `advice.updated`, `cue.detected`."""
    channels = [SUPERVISORS]
    if call.handler_id and call.state in AT_DESK:
        channels.append(handler_channel(call.handler_id))
    stage_to(session, resources, channels, type_, call.id, data)
