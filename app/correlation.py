"""The request id and call id of the work in hand, for every log line (app.logs) and the
`X-Request-ID` answer header (app.api.request_context).

Context variables: set where the work starts (the request's middleware, a webhook once its
call is known, the sweeper per event) and read by the log formatter, so no logger call has to
pass them. A task inherits the values of the code that created it.

An incoming `X-Request-ID` (a load balancer's or the platform's) is kept when it is sane: a
short token of safe characters that the log's masking would leave alone, or a machine-made
hex id (a UUID, nginx's `$request_id`: 16-64 hex digits with at least one letter, which no
phone number is). Anything else is replaced with one of ours, so that a header can never
carry personal data into the logs or make a log line ambiguous.
"""

from __future__ import annotations

import re
import secrets

# The variables live beside the formatter that reads them (app.logs imports nothing of ours).
from app.logs import CALL_ID, REQUEST_ID, scrub

__all__ = ["CALL_ID", "REQUEST_ID", "new_request_id", "request_id_from", "sane_request_id"]

MAX_LENGTH = 128
_TOKEN = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HEX = re.compile(r"(?=.*[a-fA-F])(?:[0-9a-fA-F]-?){16,64}")


def new_request_id() -> str:
    """Ours: 32 hex digits (a UUID's worth of randomness)."""
    return secrets.token_hex(16)


def sane_request_id(value: str | None) -> str | None:
    """`value` if it may be used as the request id as it is (see the module's docstring)."""
    if not value or len(value) > MAX_LENGTH:
        return None
    if _HEX.fullmatch(value) and not value.endswith("-"):
        return value
    if _TOKEN.fullmatch(value) and scrub(value) == value:
        return value
    return None


def request_id_from(header: str | None) -> str:
    return sane_request_id(header) or new_request_id()
