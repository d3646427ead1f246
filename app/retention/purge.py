"""The purge: each class of personal data removed once it is older than its retention period.

Every class is a pair of statements over the same rows, one counting them and one removing
them, so that a dry run reports exactly what a real run would remove and changes nothing.
Classes run in a fixed order, the narrower first (a call's narrative before the call), and a
class's count is its own rows: removing a call also removes what hangs off it (events, alerts,
THRIVE+ state), which the narrower classes may already have cleared.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import chain
from app.audit.models import AuditLog
from app.calls.models import Call, CallEventRow
from app.config import Settings
from app.history import versions
from app.history.models import Alert, CallContext, Contact, Marker
from app.thrive.models import Assessment, AssessmentDraft, CallCue, CallThrive

# Raw bodies are cleared this many events at a time (each event's canonical copy is rewritten
# without the caller's number, in Python: JSON editing differs between the databases).
RAW_BATCH = 1000


@dataclass(frozen=True)
class Cutoffs:
    """For each class, the instant before which its rows are past retention."""

    raw_events: datetime
    call_contexts: datetime
    narratives: datetime
    assessments: datetime
    contacts: datetime
    markers: datetime
    calls: datetime
    audit: datetime

    @classmethod
    def from_settings(cls, settings: Settings, now: datetime) -> Cutoffs:
        def days(n: int) -> datetime:
            return now - timedelta(days=n)

        return cls(
            raw_events=days(settings.retention_raw_event_days),
            call_contexts=days(settings.retention_call_context_days),
            narratives=days(settings.retention_narrative_days),
            assessments=days(settings.retention_assessment_days),
            contacts=days(settings.retention_contact_days),
            markers=days(settings.retention_marker_grace_days),
            calls=days(settings.retention_call_days),
            audit=days(settings.retention_audit_days),
        )


Counter = Callable[[AsyncSession, datetime], Awaitable[int]]
Remover = Callable[[AsyncSession, datetime], Awaitable[None]]


async def _count(session: AsyncSession, entity: Any, where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(entity).where(where)) or 0)


def _raw_due(cutoff: datetime) -> ColumnElement[bool]:
    # Only processed events: an event still waiting for the pipeline is not yet done with.
    return (
        (CallEventRow.received_at < cutoff)
        & CallEventRow.processed_at.is_not(None)
        & (func.length(CallEventRow.raw) > 0)
    )


async def _count_raw(session: AsyncSession, cutoff: datetime) -> int:
    return await _count(session, CallEventRow, _raw_due(cutoff))


async def _clear_raw(session: AsyncSession, cutoff: datetime) -> None:
    while True:
        rows = (
            await session.execute(
                select(CallEventRow.id, CallEventRow.canonical)
                .where(_raw_due(cutoff))
                .limit(RAW_BATCH)
            )
        ).all()
        if not rows:
            return
        await session.execute(
            update(CallEventRow),
            [{"id": id_, "raw": b"", "canonical": without_number(doc)} for id_, doc in rows],
        )


def without_number(canonical: dict[str, Any]) -> dict[str, Any]:
    """The canonical event without the caller's number (its presentation stays)."""
    caller = canonical.get("caller")
    if not isinstance(caller, dict):
        return canonical
    return {**canonical, "caller": {**caller, "number": None}}


def _narrative_calls(cutoff: datetime) -> Any:
    return select(Call.id).where(Call.created_at < cutoff)


async def _count_narratives(session: AsyncSession, cutoff: datetime) -> int:
    calls = _narrative_calls(cutoff)
    narratives = await _count(
        session,
        CallThrive,
        CallThrive.call_id.in_(calls) & CallThrive.narrative.is_not(None),
    )
    cues = await _count(session, CallCue, CallCue.call_id.in_(calls))
    drafts = await _count(session, AssessmentDraft, AssessmentDraft.call_id.in_(calls))
    return narratives + cues + drafts


async def _clear_narratives(session: AsyncSession, cutoff: datetime) -> None:
    # The narrative, the words the cue detector matched in it, and the handler's unsent form:
    # all the handler's own words about the call.
    calls = _narrative_calls(cutoff)
    await session.execute(
        update(CallThrive)
        .where(CallThrive.call_id.in_(calls) & CallThrive.narrative.is_not(None))
        .values(narrative=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(CallCue).where(CallCue.call_id.in_(calls)))
    await session.execute(delete(AssessmentDraft).where(AssessmentDraft.call_id.in_(calls)))


def _context_due(cutoff: datetime) -> ColumnElement[bool]:
    return CallContext.looked_up_at < cutoff


def _alert_lines_due(cutoff: datetime) -> ColumnElement[bool]:
    # Alerts name people in plain words (evidence_lines); the ids in `evidence` stay.
    return (Alert.raised_at < cutoff) & (func.coalesce(func.length(_lines_text()), 0) > 2)


def _lines_text() -> Any:
    return cast(Alert.evidence_lines, Text)


async def _count_contexts(session: AsyncSession, cutoff: datetime) -> int:
    contexts = await _count(session, CallContext, _context_due(cutoff))
    return contexts + await _count(session, Alert, _alert_lines_due(cutoff))


async def _clear_contexts(session: AsyncSession, cutoff: datetime) -> None:
    await session.execute(delete(CallContext).where(_context_due(cutoff)))
    await session.execute(
        update(Alert)
        .where(_alert_lines_due(cutoff))
        .values(evidence_lines=[])
        .execution_options(synchronize_session=False)
    )


def _simple(
    entity: Any, due: Callable[[datetime], ColumnElement[bool]], *, history: bool = False
) -> tuple[Counter, Remover]:
    """A class whose rows are deleted outright; `history`: cached summaries read them."""

    async def count(session: AsyncSession, cutoff: datetime) -> int:
        return await _count(session, entity, due(cutoff))

    async def remove(session: AsyncSession, cutoff: datetime) -> None:
        result = await session.execute(delete(entity).where(due(cutoff)))
        if history and int(getattr(result, "rowcount", 0) or 0):
            # Summaries counted those rows: every cached one is now unreachable.
            await versions.bump(session, [versions.EVERYTHING])

    return count, remove


_ASSESSMENTS = _simple(Assessment, lambda c: Assessment.submitted_at < c)
_CONTACTS = _simple(Contact, lambda c: Contact.occurred_at < c, history=True)
_MARKERS = _simple(
    Marker, lambda c: Marker.expires_at.is_not(None) & (Marker.expires_at < c), history=True
)
_CALLS = _simple(Call, lambda c: Call.created_at < c)


async def _audit_through(session: AsyncSession, cutoff: datetime) -> int | None:
    """The last row of the chain's longest prefix written before `cutoff`. The chain is
    removed from its start only: a gap in the middle would read as a deleted row."""
    first_kept = await session.scalar(select(func.min(AuditLog.seq)).where(AuditLog.at >= cutoff))
    if first_kept is None:
        through = await session.scalar(select(func.max(AuditLog.seq)))
    else:
        through = int(first_kept) - 1
    return None if through is None else int(through)


async def _count_audit(session: AsyncSession, cutoff: datetime) -> int:
    through = await _audit_through(session, cutoff)
    return 0 if through is None else await _count(session, AuditLog, AuditLog.seq <= through)


async def _forget_audit(session: AsyncSession, cutoff: datetime) -> None:
    through = await _audit_through(session, cutoff)
    if through is not None:
        # Through the chain's own helper: it keeps the last deleted row's hash as the base,
        # so `firstcontact audit verify` still passes on what remains.
        await session.run_sync(lambda sync: chain.forget_through(sync.connection(), through))


_AUDIT = (_count_audit, _forget_audit)

# The classes in the order they run: name (the report's key), counter, remover, cutoff field.
CLASSES: tuple[tuple[str, Counter, Remover], ...] = (
    ("raw_events", _count_raw, _clear_raw),
    ("call_contexts", _count_contexts, _clear_contexts),
    ("narratives", _count_narratives, _clear_narratives),
    ("assessments", *_ASSESSMENTS),
    ("contacts", *_CONTACTS),
    ("markers", *_MARKERS),
    ("calls", *_CALLS),
    ("audit", *_AUDIT),
)


async def purge(session: AsyncSession, cutoffs: Cutoffs, *, dry_run: bool) -> dict[str, int]:
    """Rows past retention per class (removed unless `dry_run`), in the caller's transaction."""
    counts: dict[str, int] = {}
    for name, count, remove in CLASSES:
        cutoff: datetime = getattr(cutoffs, name)
        counts[name] = await count(session, cutoff)
        if counts[name] and not dry_run:
            await remove(session, cutoff)
    return counts
