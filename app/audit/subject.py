"""Subject access: who saw or changed a person's data, and when, from the audit log."""

from __future__ import annotations

import io
from collections.abc import Sequence

from sqlalchemy import String, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.chain import FIELDS
from app.audit.models import AuditLog
from app.cells import csv_writer

COLUMNS = (*FIELDS, "audit_seq")


def _about(row: AuditLog, person_id: str) -> bool:
    if row.subject_type == "person" and row.subject_id == person_id:
        return True
    persons = (row.records or {}).get("persons")
    return isinstance(persons, list) and person_id in persons


async def rows_about_person(session: AsyncSession, person_id: str) -> list[AuditLog]:
    """Every audit row that shows or changes the person: their own rows and the searches
    whose results listed them, oldest first."""
    quoted = '"' + person_id.replace("\\", "\\\\").replace('"', '\\"') + '"'
    candidates: Sequence[AuditLog] = (
        await session.scalars(
            select(AuditLog)
            .where(
                or_(
                    AuditLog.subject_id == person_id,
                    cast(AuditLog.records, String).contains(quoted, autoescape=True),
                )
            )
            .order_by(AuditLog.seq)
        )
    ).all()
    return [row for row in candidates if _about(row, person_id)]


def as_csv(rows: Sequence[AuditLog]) -> str:
    out = io.StringIO()
    writer = csv_writer(out)  # formula-like cells neutralised (app.cells)
    writer.writerow(COLUMNS)
    for row in rows:
        cells = [row.at.isoformat(timespec="seconds")]
        cells += [getattr(row, name) for name in FIELDS[1:]]
        writer.writerow((*cells, row.seq))
    return out.getvalue()
