"""The canonical adapter: the signed JSON body is already a `CallEvent`; check and parse it.

Errors say where and what was wrong, never the submitted values (numbers, names).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.errors import AppError
from app.telephony.events import CallEvent

SOURCE = "canonical"


class MalformedBody(AppError):
    status, code = 400, "malformed_body"


class InvalidEvent(AppError):
    status, code = 422, "invalid_event"


def decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(
            "request body is not UTF-8", {"reason": "not_utf8", "offset": exc.start}
        ) from exc


def clean_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "value_error")),
        }
        for err in exc.errors(include_input=False, include_url=False)
    ]


def validate(payload: Any) -> CallEvent:
    """A canonical event from already-parsed data (adapters), or 422 with the reasons."""
    try:
        return CallEvent.model_validate(payload)
    except ValidationError as exc:
        raise InvalidEvent("the event did not validate", clean_errors(exc)) from exc


def parse(raw: bytes) -> CallEvent:
    """The canonical event in `raw` (400 for bytes that are not UTF-8 JSON, 422 otherwise)."""
    text = decode_text(raw)
    try:
        return CallEvent.model_validate_json(text)
    except ValidationError as exc:
        details = clean_errors(exc)
        if any(d["type"] == "json_invalid" for d in details):
            raise MalformedBody("request body is not valid JSON", details) from exc
        raise InvalidEvent("the event did not validate", details) from exc
