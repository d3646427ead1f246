"""Twilio Voice status callbacks -> canonical events.

Twilio posts form-encoded parameters and signs them with `X-Twilio-Signature`: HMAC-SHA1 with
the account's auth token over the full URL it requested plus the sorted POST parameters. Behind
a proxy the URL we see is not the one Twilio called, so `PUBLIC_BASE_URL` rebuilds it. The
check itself is Twilio's own `RequestValidator`.

Ordering: Twilio's `Timestamp` has one-second resolution and callbacks may arrive out of order;
`SequenceNumber` orders the callbacks of one call and becomes the event's `seq`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from app.config import Settings
from app.errors import AppError, NotFound
from app.telephony.canonical import MalformedBody, decode_text, validate
from app.telephony.events import CallEvent, EventType
from app.telephony.signature import BadSignature

SOURCE = "twilio"

# CallStatus -> our event type. Every final status ends the call; the status is the cause.
STATUS = {
    "queued": EventType.offered,
    "initiated": EventType.offered,
    "ringing": EventType.ringing,
    "in-progress": EventType.answered,
    "answered": EventType.answered,
    "completed": EventType.ended,
    "busy": EventType.ended,
    "failed": EventType.ended,
    "no-answer": EventType.ended,
    "canceled": EventType.ended,
}


class TwilioNotConfigured(NotFound):
    status, code = 404, "twilio_not_configured"


class UnknownStatus(AppError):
    status, code = 422, "unknown_call_status"


def parse_form(raw: bytes) -> dict[str, str]:
    text = decode_text(raw)
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=200
        )
    except ValueError as exc:
        raise MalformedBody("request body is not form-encoded", {"reason": "bad_form"}) from exc
    # Twilio never repeats a parameter in status callbacks; the last one wins if it did.
    return dict(pairs)


def public_url(settings: Settings, path: str, query: str) -> str:
    """The URL Twilio signed, rebuilt from PUBLIC_BASE_URL only: the request's own URL comes
    from its Host header, which whoever sends it chooses (a callback signed for another host
    would then pass)."""
    if not settings.public_base_url:
        raise TwilioNotConfigured(
            "the Twilio adapter is not configured (PUBLIC_BASE_URL)",
            {"reason": "public_base_url_unset"},
        )
    url = settings.public_base_url.rstrip("/") + path
    return url + ("?" + query if query else "")


def verify(
    settings: Settings, *, url: str, params: dict[str, str], signature_header: str | None
) -> None:
    if settings.twilio_auth_token is None:
        raise TwilioNotConfigured("the Twilio adapter is not configured (TWILIO_AUTH_TOKEN)")
    if not signature_header:
        raise BadSignature("missing X-Twilio-Signature", {"reason": "missing_headers"})
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    if not validator.validate(url, params, signature_header):
        raise BadSignature("Twilio signature does not match", {"reason": "mismatch"})


def _occurred_at(params: dict[str, str]) -> datetime:
    stamp = params.get("Timestamp")
    if stamp:
        try:
            parsed = parsedate_to_datetime(stamp)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return datetime.now(UTC)


def to_event(params: dict[str, str]) -> CallEvent:
    status = params.get("CallStatus", "").strip().lower()
    kind = STATUS.get(status)
    if kind is None:
        raise UnknownStatus("unknown or missing CallStatus", {"reason": "call_status"})
    call_sid = params.get("CallSid", "")
    seq_text = params.get("SequenceNumber", "")
    seq = int(seq_text) if seq_text.isascii() and seq_text.isdigit() else None
    outbound = params.get("Direction", "inbound").startswith("outbound")
    # The member of the public is `From` on inbound calls and `To` on outbound ones.
    number = params.get("To" if outbound else "From")
    payload: dict[str, object] = {
        # One event per callback: the sequence number when present, else the status.
        "event_id": f"{call_sid}:{seq if seq is not None else status}",
        "call_id": call_sid,
        "type": kind,
        "occurred_at": _occurred_at(params),
        "caller": {"number": number},
        "called": params.get("From" if outbound else "To") or None,
        "seq": seq,
        "cause": status if kind is EventType.ended else None,
    }
    return validate(payload)
