"""The canonical call event: what every provider adapter produces and nothing past it sees.

Contract (`../shared/design.md`): event_id, call_id, type, occurred_at, caller {number,
presentation}, called, handler_id, queue, cause, seq.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class EventType(StrEnum):
    offered = "offered"
    ringing = "ringing"
    answered = "answered"
    transferred = "transferred"
    ended = "ended"


class Presentation(StrEnum):
    allowed = "allowed"
    withheld = "withheld"
    unavailable = "unavailable"


class Caller(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # As received from the platform; normalised separately (see app.telephony.numbers).
    number: str | None = Field(default=None, max_length=256)
    presentation: Presentation = Presentation.allowed


class CallEvent(BaseModel):
    """One event of one call, as the canonical webhook receives it."""

    # Providers add fields of their own; unknown ones are kept in the raw body, not refused.
    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(min_length=1, max_length=128)
    call_id: str = Field(min_length=1, max_length=128)
    type: EventType
    occurred_at: AwareDatetime
    caller: Caller = Field(default_factory=Caller)
    called: str | None = Field(default=None, max_length=64)
    handler_id: str | None = Field(default=None, max_length=32)
    queue: str | None = Field(default=None, max_length=64)
    cause: str | None = Field(default=None, max_length=64)
    seq: int | None = Field(default=None, ge=0)
