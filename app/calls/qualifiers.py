"""What the other domains read of a call's qualifiers (set by `app.thrive.qualifiers`, kept in
`call.qualifiers`): the history write-back counts a call carrying the domestic-abuse
qualifier as a DA contact, whatever its incident type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The qualifier DA escalation counts (the id the advice pack gives it).
DOMESTIC_ABUSE = "domestic_abuse"

Qualifiers = Mapping[str, Sequence[str]]


def ids_of(stored: Qualifiers | None) -> list[str]:
    """The qualifier ids a call carries, in the order stored (the catalogue's)."""
    return list(stored or {})


def is_domestic_abuse(stored: Qualifiers | None) -> bool:
    return DOMESTIC_ABUSE in (stored or {})
