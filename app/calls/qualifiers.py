"""What the other domains read of a call's qualifiers (set by `app.thrive.qualifiers`, kept in
`call.qualifiers`): the history write-back counts a call carrying the domestic-abuse
qualifier as a DA contact, whatever its incident type.

Stored as a list, `[{"id": "hate_crime", "strands": ["race"]}, ...]`, in the catalogue's
order: a list keeps its order in PostgreSQL's JSONB, an object's keys would not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The qualifier DA escalation counts (the id the advice pack gives it).
DOMESTIC_ABUSE = "domestic_abuse"

Stored = Sequence[Mapping[str, Any]]


def stored_form(chosen: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """The column's value for qualifier id -> strands, in the mapping's order."""
    return [{"id": q, "strands": list(strands)} for q, strands in chosen.items()]


def ids_of(stored: Stored | None) -> list[str]:
    """The qualifier ids a call carries, in the order stored (the catalogue's)."""
    return [str(q["id"]) for q in stored or ()]


def strands_of(stored: Stored | None) -> dict[str, list[str]]:
    """Qualifier id -> its strands, for the qualifiers that have some."""
    return {str(q["id"]): list(q["strands"]) for q in stored or () if q.get("strands")}


def is_domestic_abuse(stored: Stored | None) -> bool:
    return DOMESTIC_ABUSE in ids_of(stored)
