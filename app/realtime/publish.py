"""Publishing call messages: who receives what.

- `supervisors` receives every call's state and every alert.
- `handler:<id>` receives a call once it rings at that handler's desk (`ringing` on), until it
  ends or is transferred away.

Publish only after the transaction that produced the message has committed: callers queue
these with `after_commit` (the pipeline step does, through `ctx.after_commit`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from app.calls.snapshot import CallSnapshot
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


def encode_message(type_: str, call_id: int | None, data: Mapping[str, object]) -> str:
    """The body of one message (an envelope without its id)."""
    if type_ not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {type_!r}")
    return encode_body(type_, call_id, data)


async def publish_to(
    resources: Resources,
    channels: list[str],
    type_: str,
    call_id: int | None,
    data: Mapping[str, object],
) -> None:
    """Publish one message on each of `channels` (each channel has its own cursors)."""
    body = encode_message(type_, call_id, data)
    broker = broker_of(resources)
    for channel in dict.fromkeys(channels):  # once per channel, in order
        await broker.publish(channel, body)


async def publish_call_message(
    resources: Resources, call: CallSnapshot, type_: str, data: Mapping[str, object]
) -> None:
    """Publish a call's message to supervisors and, if the call is at a handler's desk, to that
    handler: late alerts (`alert.raised`), `prompts.updated`, `advice.updated`, `cue.detected`.
    Call it after the commit that stored what it announces."""
    channels = [SUPERVISORS]
    if call.handler_id and call.state in AT_DESK:
        channels.append(handler_channel(call.handler_id))
    await publish_to(resources, channels, type_, call.id, data)
