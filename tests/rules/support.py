"""Builders for rule tests: caller facts at a fixed time, pack files in a temporary folder."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.rules.facts import CallerFacts, ContactRef, HouseholdFacts, MarkerRef, PersonFacts
from app.rules.loader import SHIPPED_DIR, load_paths
from app.rules.ruleset import RuleSet

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SHIPPED = load_paths([])
VERSION = "2026.12.1"  # the prompts and advice packs: issue 14 (ranked, sourced)
ALERTS_VERSION = "2026.11.2"  # the alerts pack: issue 13 defaults (repeats counted as forces count)
CUES_VERSION = "2026.12.2"  # the cues pack: clause-scoped negation, effects, issue 14 strands


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def contact(cid: str, days: float, **kw: Any) -> ContactRef:
    return ContactRef(id=cid, occurred_at=ago(days), **kw)


def marker(
    mid: str, kind: str, subject: str, *, set_days: float = 30, expires_in: float | None = None,
    subject_type: str = "person",
) -> MarkerRef:  # fmt: skip
    return MarkerRef(
        id=mid,
        kind=kind,
        subject_type=subject_type,  # type: ignore[arg-type]
        subject_id=subject,
        set_at=ago(set_days),
        expires_at=None if expires_in is None else NOW + timedelta(days=expires_in),
    )


def caller(
    *,
    number_contacts: list[ContactRef] | None = None,
    persons: list[PersonFacts] | None = None,
    households: list[HouseholdFacts] | None = None,
    presentation: str = "allowed",
) -> CallerFacts:
    return CallerFacts(
        now=NOW,
        presentation=presentation,  # type: ignore[arg-type]
        number=None if presentation != "allowed" else "+447700900123",
        number_contacts=number_contacts or [],
        persons=persons or [],
        households=households or [],
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def shipped_text(name: str) -> str:
    return (SHIPPED_DIR / name).read_text(encoding="utf-8")


def with_override(folder: Path, name: str, text: str) -> RuleSet:
    """The shipped packs plus one force pack file (replacing the shipped pack of its id)."""
    write(folder, name, text)
    return load_paths([folder])
