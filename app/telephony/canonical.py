"""The canonical adapter: the signed JSON body is already a `CallEvent`; check and parse it.

Errors say where and what was wrong, never the submitted values (numbers, names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from app.errors import AppError, PayloadTooLarge
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


def clean_errors(exc: ValidationError) -> list[dict[str, object]]:
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "value_error")),
        }
        for err in exc.errors(include_input=False, include_url=False)
    ]


def validate(payload: object) -> CallEvent:
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


@dataclass(frozen=True)
class BatchItem:
    """One element of a batch: its event and its own bytes (stored as its raw body), or why
    it was refused (`errors`, without the submitted values)."""

    index: int
    event: CallEvent | None
    raw: bytes
    errors: list[dict[str, object]] | None = None


def parse_batch(raw: bytes, max_events: int) -> list[BatchItem]:
    """The elements of a JSON array of canonical events, each validated on its own.

    The body as a whole: 400 when it is not UTF-8 JSON or not an array, 422 when empty, 413
    over `max_events`. An element that is not a valid event is refused alone (`errors`).
    """
    text = decode_text(raw)
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MalformedBody("request body is not valid JSON", {"reason": "json_invalid"}) from exc
    if not isinstance(payload, list):
        raise MalformedBody("a batch is a JSON array of events", {"reason": "not_an_array"})
    if not payload:
        raise InvalidEvent("the batch is empty", {"reason": "empty_batch"})
    if len(payload) > max_events:
        raise PayloadTooLarge(
            f"a batch holds at most {max_events} events", {"max_events": max_events}
        )
    items = []
    for index, element in enumerate(payload):
        # ASCII escapes: lone surrogates (refused below) must not fail the encoding.
        own = json.dumps(element, separators=(",", ":")).encode()
        try:
            items.append(BatchItem(index, CallEvent.model_validate(element), own))
        except ValidationError as exc:
            items.append(BatchItem(index, None, own, clean_errors(exc)))
    return items
