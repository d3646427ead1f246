"""What erasing one person does to a value: pure functions over text and JSON documents.

Ids and numbers are matched whole (a person "P1" is not in "P10"); the person's full name is
replaced wherever it appears. In the free text of a call linked to the person (a narrative,
an assessment's words, QA feedback) each word of the name is replaced too, since handlers
write "Sam said..." and not the full name. In JSON documents (the screen's snapshot of the
caller's history, alerts), an object that *is* the person (its `id` is theirs and it carries
a name or a date of birth) is dropped whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

ERASED = "[erased]"
# Words of a name shorter than this (an initial) are redacted only within the full name.
MIN_PART = 2
# Any string of digits that parses as a number: a handler types numbers loosely.
_LENIENT = phonenumbers.Leniency.POSSIBLE
_PERSON_KEYS = ("name", "date_of_birth")


@dataclass(frozen=True)
class Subject:
    """The person being erased: their id, the pseudonym that replaces it in records kept for
    counting (contacts), their own numbers (E.164) and their name."""

    person_id: str
    pseudonym: str
    numbers: frozenset[str]
    name: str | None
    # Where numbers written without a country code are read (DEFAULT_REGION).
    region: str = "GB"
    _full: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _parts: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = (self.name or "").strip()
        words = sorted({w for w in re.split(r"\s+", name) if len(w) >= MIN_PART}, key=len)
        object.__setattr__(self, "_full", _words_pattern([name]) if name else None)
        object.__setattr__(self, "_parts", _words_pattern([name, *words]) if name else None)

    def needles(self) -> list[str]:
        """Every string that identifies the person (what a search for them would look for)."""
        return [self.person_id, *sorted(self.numbers), *([self.name] if self.name else [])]

    def free_text(self, value: str | None) -> str | None:
        """A handler's or reviewer's words on a linked call: name, its words and numbers out."""
        if value is None:
            return None
        if self._parts is not None:
            value = self._parts.sub(ERASED, value)
        return self._numbers_out(value)

    def label(self, value: str) -> str:
        """A generated line (an alert's title or evidence line): the full name out."""
        if value == self.person_id:
            return self.pseudonym
        if value in self.numbers:
            return ERASED
        if self._full is not None:
            value = self._full.sub(ERASED, value)
        return self._numbers_out(value)

    def document(self, value: Any, *, words: bool = False) -> Any:
        """A JSON document with the person dropped or replaced wherever it appears;
        `words`: strings are free text (the name's words go too)."""
        if isinstance(value, dict):
            if value.get("id") == self.person_id and any(k in value for k in _PERSON_KEYS):
                return _DROP
            return {
                k: v
                for k, v in ((k, self.document(v, words=words)) for k, v in value.items())
                if v is not _DROP
            }
        if isinstance(value, list):
            kept = [self.document(v, words=words) for v in value]
            return [v for v in kept if v is not _DROP]
        if isinstance(value, str):
            if value == self.person_id:
                return self.pseudonym
            if value in self.numbers:
                return None
            return self.free_text(value) if words else self.label(value)
        return value

    def _numbers_out(self, value: str) -> str:
        """The person's numbers out of text, in whatever form they were typed ("07700 900777",
        "+44 7700 900777"): each number the text holds is compared in E.164."""
        if not self.numbers or not any(c.isdigit() for c in value):
            return value
        for number in self.numbers:
            value = value.replace(number, ERASED)
        for match in phonenumbers.PhoneNumberMatcher(value, self.region, leniency=_LENIENT):
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            if e164 in self.numbers:
                value = value.replace(match.raw_string, ERASED)
        return value


class _Drop:
    """Marks a value removed from its container."""


_DROP = _Drop()


def _words_pattern(phrases: list[str]) -> re.Pattern[str]:
    # Longest first, so the full name is replaced before its words; whole words only.
    ordered = sorted({p for p in phrases if p}, key=len, reverse=True)
    alternatives = "|".join(re.escape(p) for p in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
