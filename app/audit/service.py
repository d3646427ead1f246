"""Writing and reading the consultation log. Records go in the caller's transaction: they are
queued on its session and appended to the hash chain when it commits (`app.audit.chain`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Required, TypedDict, Unpack

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import chain
from app.audit.models import AuditLog
from app.db import utcnow


def row(
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | None = None,
    call_id: str | None = None,
    justification: str | None = None,
    records: dict[str, object] | None = None,
) -> dict[str, object]:
    """An audit record's columns, for writers that insert many at once (`AUDIT`)."""
    return {
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "call_id": call_id,
        "justification": justification,
        "records": records or {},
    }


class AuditFields(TypedDict, total=False):
    """The arguments of `row`."""

    actor: Required[str]
    action: Required[str]
    subject_type: Required[str]
    subject_id: str | None
    call_id: str | None
    justification: str | None
    records: dict[str, object] | None


def record(session: AsyncSession, **fields: Unpack[AuditFields]) -> None:
    """Add one audit record (the fields of `row`) to the session's unit of work."""
    add_rows(session, [row(**fields)])


def add_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Add audit records (`row`), appended to the chain when the session commits."""
    chain.queue(session.sync_session, rows)


def consulted_call(
    session: AsyncSession,
    *,
    actor: str,
    call_id: int,
    justification: str | None = None,
    records: dict[str, object] | None = None,
) -> None:
    """A call's record (it shows the caller's number) was read by `actor`: who looked, when,
    and why when the reason is not the call itself (a QA review)."""
    record(
        session,
        actor=actor,
        action="consultation",
        subject_type="call",
        subject_id=str(call_id),
        call_id=str(call_id),
        justification=justification,
        records=records,
    )


async def search(
    session: AsyncSession,
    *,
    actor: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    call_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> Sequence[AuditLog]:
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if actor is not None:
        query = query.where(AuditLog.actor == actor)
    if subject_type is not None:
        query = query.where(AuditLog.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(AuditLog.subject_id == subject_id)
    if call_id is not None:
        query = query.where(AuditLog.call_id == call_id)
    if since is not None:
        query = query.where(AuditLog.at >= since)
    if until is not None:
        query = query.where(AuditLog.at < until)
    if before_id is not None:
        query = query.where(AuditLog.id < before_id)
    return (await session.scalars(query)).all()
