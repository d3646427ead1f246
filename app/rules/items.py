"""What a condition returns when it holds: the items that justify it, one per subject (a
person, a household, the number), which become the alert's reasons and evidence. Shared by
the engine and the modules it evaluates with (near_repeat, escalation, planning)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Item:
    """One reason a condition holds, with the placeholders its templates may use."""

    kind: str  # the condition kind that produced it
    values: dict[str, Any]
    evidence: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    default_reason: str = ""
    # What the handler reads as evidence (plain words, no ids), and the item's category.
    evidence_lines: list[str] = field(default_factory=list)
    category: str | None = None
