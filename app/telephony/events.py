"""The canonical call event: what every provider adapter produces and nothing past it sees.

Contract (`../shared/design.md`): event_id, call_id, type, occurred_at, caller {number,
presentation}, called, handler_id, queue, cause, seq.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# Timestamps outside this window are a platform's clock fault or an attack, not a call.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)


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


_CONTROL = re.compile("[\x00-\x1f]")


def _storable(value: object) -> object:
    """Refuse text no database column can hold: NUL, other C0 controls, lone surrogates
    (all valid JSON escapes, so the parser lets them through)."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not valid Unicode text") from None
    return value


class Caller(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        return _storable(value)

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
    seq: int | None = Field(default=None, ge=0, le=2**53)

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        return _storable(value)

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        if value < EARLIEST:
            raise ValueError("occurred_at is before 2000")
        if value > datetime.now(UTC) + MAX_AHEAD:
            raise ValueError("occurred_at is more than a day in the future")
        return value
