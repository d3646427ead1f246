"""The message envelope `{"id", "type", "ts", "call_id", "data"}` and its cursors.

A cursor is a channel's ordered message id, `"<milliseconds>-<sequence>"` (the shape of a
Redis stream entry id, which the in-process broker copies so that clients see one format).
A message is stored without its id (the broker assigns it); the frame a socket receives is
the stored body with the id spliced in front, built once per message and process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from app import json_codec

SUPERVISORS = "supervisors"

CALL_TYPES = frozenset(
    {"call.offered", "call.ringing", "call.answered", "call.transferred", "call.ended"}
)
# What publishers may send on a channel (issue 6 adds prompts/advice/cues through the same API).
MESSAGE_TYPES = CALL_TYPES | {
    "alert.raised",
    "alert.acknowledged",
    "prompts.updated",
    "advice.updated",
    "cue.detected",
}

_CURSOR = re.compile(r"^(\d{1,20})-(\d{1,20})$")

Cursor = tuple[int, int]


class BadCursor(ValueError):
    """Not a cursor this service hands out."""


def handler_channel(staff_id: str) -> str:
    return f"handler:{staff_id}"


def parse_cursor(value: str) -> Cursor:
    match = _CURSOR.match(value)
    if match is None:
        raise BadCursor("a cursor looks like 1732500000000-0")
    return int(match.group(1)), int(match.group(2))


def format_cursor(cursor: Cursor) -> str:
    return f"{cursor[0]}-{cursor[1]}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def encode_body(type_: str, call_id: int | None, data: Mapping[str, object]) -> str:
    """The stored form of a channel message: the envelope without its id."""
    return json_codec.dumps(
        {"type": type_, "ts": now_iso(), "call_id": call_id, "data": data}, _default
    )


def frame(cursor: str, body: str) -> str:
    """The text frame a socket receives: `body` with `"id"` first (no re-serialising)."""
    return '{"id":"' + cursor + '",' + body[1:]


def control(type_: str, data: Mapping[str, object], cursor: str | None = None) -> str:
    """A frame that is not a channel message (hello, resync, error, ping, pong)."""
    return json_codec.dumps(
        {"id": cursor, "type": type_, "ts": now_iso(), "call_id": None, "data": data}, _default
    )
