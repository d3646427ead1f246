"""Generic CTI events -> canonical events.

The widely used shape: `{"event": "newCall" | "answer" | "hangup", "callId", "from", "to",
"direction", "user", "queue", "answeringNumber", "cause"}` plus optional `eventId` and
`timestamp` (RFC 3339 or unix seconds). Authenticated by an integration bearer token.

Handler mapping: CTI agents log in with their staff id, so `user` is taken as the staff id of
the handler (ringing at / answered by); when `user` is absent, `answeringNumber` is used the
same way (desk phones provisioned with the staff id as their extension). A deployment whose
CTI uses other agent ids provisions matching staff ids (`firstcontact staff create --id ...`).

newCall is `ringing` when it names a user (the call is offered to that agent), else `offered`;
answer is `answered`; hangup is `ended` with `cause`. On outbound calls the member of the
public is `to`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.telephony.canonical import InvalidEvent, MalformedBody, clean_errors, decode_text, validate
from app.telephony.events import CallEvent, EventType

SOURCE = "cti"


class CtiEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event: Literal["newCall", "answer", "hangup"] = Field(alias="event")
    call_id: str = Field(alias="callId", min_length=1, max_length=128)
    event_id: str | None = Field(default=None, alias="eventId", min_length=1, max_length=128)
    from_: str | None = Field(default=None, alias="from", max_length=256)
    to: str | None = Field(default=None, max_length=64)
    direction: str = Field(default="inbound", max_length=16)
    user: str | None = Field(default=None, max_length=32)
    queue: str | None = Field(default=None, max_length=64)
    answering_number: str | None = Field(default=None, alias="answeringNumber", max_length=32)
    cause: str | None = Field(default=None, max_length=64)
    timestamp: datetime | None = None


def parse(raw: bytes) -> CtiEvent:
    text = decode_text(raw)
    try:
        return CtiEvent.model_validate_json(text)
    except ValidationError as exc:
        details = clean_errors(exc)
        if any(d["type"] == "json_invalid" for d in details):
            raise MalformedBody("request body is not valid JSON", details) from exc
        raise InvalidEvent("the CTI event did not validate", details) from exc


def to_event(cti: CtiEvent) -> CallEvent:
    handler = cti.user or cti.answering_number
    if cti.event == "newCall":
        kind = EventType.ringing if handler else EventType.offered
    elif cti.event == "answer":
        kind = EventType.answered
    else:
        kind = EventType.ended
    outbound = cti.direction.lower().startswith("out")
    when = cti.timestamp or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # CTI servers that omit the offset run on UTC
    payload: dict[str, object] = {
        "event_id": cti.event_id or f"{cti.call_id}:{cti.event}",
        "call_id": cti.call_id,
        "type": kind,
        "occurred_at": when,
        "called": (cti.from_ if outbound else cti.to) or None,
        "handler_id": handler if kind is not EventType.ended else None,
        "queue": cti.queue,
        "cause": cti.cause if kind is EventType.ended else None,
    }
    number = cti.to if outbound else cti.from_
    if cti.event == "newCall" or number is not None:
        payload["caller"] = {"number": number}
    return validate(payload)
