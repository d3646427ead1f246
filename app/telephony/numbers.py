"""Caller numbers: whatever a platform sends becomes E.164 or a presentation, never an error.

Platforms send national formats, international prefixes, SIP URIs, words for withheld numbers
("anonymous", "Restricted", "<unknown>") and provider sentinels. A number we cannot read is not a
reason to drop the call: it becomes `unavailable` and the call goes on.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

import phonenumbers

from app.telephony.events import Presentation

WITHHELD_WORDS = frozenset(
    {
        "anonymous",
        "withheld",
        "restricted",
        "private",
        "blocked",
        "hidden",
        "number withheld",
        "anonymous caller",
    }
)
UNAVAILABLE_WORDS = frozenset(
    {"", "unknown", "<unknown>", "unavailable", "not available", "none", "null", "n/a", "-"}
)
# Twilio's sentinels for withheld or unavailable caller ids (the digits spell words on a
# keypad: ANONYMOUS, RESTRICTED, BLOCKED, UNKNOWN). Compared on digits only.
SENTINEL_DIGITS = {
    "266696687": Presentation.withheld,  # ANONYMOUS
    "7378742833": Presentation.withheld,  # RESTRICTED
    "2562533": Presentation.withheld,  # BLOCKED
    "8656696": Presentation.unavailable,  # UNKNOWN
}
_SIP_URI = re.compile(r"^\s*<?\s*(?:sips?|tel):([^@;>]*)", re.IGNORECASE)
_DIALABLE = re.compile(r"^[+0-9().\-\s/]*$")


@dataclass(frozen=True)
class CallerNumber:
    e164: str | None  # None unless presentation is allowed and the number is valid
    presentation: Presentation
    # Why the number was not usable ("short_code", "invalid", "not_a_number"), or "unassigned":
    # a possible number outside the allocated plan (kept: a repeat caller is still one).
    note: str | None = None


# Pure, and parsing is the costly part of storing an `offered`: callers who ring again, and
# the same number in several events of a batch, are parsed once (the result is immutable).
@functools.lru_cache(maxsize=16384)
def normalise(
    raw: str | None,
    presentation: Presentation | str | None = None,
    region: str = "GB",
) -> CallerNumber:
    """Turn a raw caller id into E.164 + presentation. Never raises.

    A platform's own withheld/unavailable presentation wins over the number it sent.
    """
    declared = _presentation(presentation)
    if declared is not Presentation.allowed:
        return CallerNumber(None, declared)
    value = (raw or "").strip()
    match = _SIP_URI.match(value)
    if match:
        value = unquote(match.group(1)).strip()
    word = value.lower().strip('"').strip()
    if word in WITHHELD_WORDS:
        return CallerNumber(None, Presentation.withheld)
    if word in UNAVAILABLE_WORDS:
        return CallerNumber(None, Presentation.unavailable)
    if not _DIALABLE.match(value):
        return CallerNumber(None, Presentation.unavailable, "not_a_number")
    digits = re.sub(r"\D", "", value)
    if not digits:
        return CallerNumber(None, Presentation.unavailable, "not_a_number")
    sentinel = SENTINEL_DIGITS.get(digits)
    if sentinel is not None:
        return CallerNumber(None, sentinel)
    if len(digits) <= 6 and not value.startswith("+"):
        # 999, 101, 112, 111, 116 123: services, not subscribers; no caller id to look up.
        return CallerNumber(None, Presentation.unavailable, "short_code")
    try:
        parsed = phonenumbers.parse(value, region.upper())
    except phonenumbers.NumberParseException:
        return CallerNumber(None, Presentation.unavailable, "invalid")
    if not phonenumbers.is_possible_number(parsed):
        return CallerNumber(None, Presentation.unavailable, "invalid")
    if not phonenumbers.is_valid_number(parsed):
        # Possible but not assigned in the plan (e.g. a drama range typo): keep it readable,
        # a repeat caller is still a repeat caller.
        return CallerNumber(
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
            Presentation.allowed,
            "unassigned",
        )
    return CallerNumber(
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        Presentation.allowed,
    )


def _presentation(value: Presentation | str | None) -> Presentation:
    if value is None:
        return Presentation.allowed
    try:
        return Presentation(str(value).strip().lower())
    except ValueError:
        return Presentation.allowed
