"""The training register: who completed which module when, and until when it holds.

Modules are data (the QA form pack's `training_modules`). A staff member's status in a module
on a day: `trained` when their latest completion on or before that day has not expired,
`expired` when it has, `untrained` with no completion by then. Records are kept by
(staff, module, completion date): recording the same completion again updates its expiry.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.models import Role, Staff
from app.auth.service import Principal
from app.db import Upsert, upsert_for, utcnow
from app.errors import AppError
from app.history.csv_fields import RowError
from app.qa import months
from app.qa.forms import QaForm
from app.qa.models import TrainingRecord
from app.qa.schemas import ModuleSummary, TrainingRecordCreate, TrainingSummary

COLUMNS = ("staff_id", "module", "completed_on", "expires_on")
MAX_REPORTED = 100


class TrainingRecordInvalid(AppError):
    status, code = 422, "training_record_invalid"


class TrainingImportRejected(AppError):
    status, code = 422, "import_rejected"


@dataclass(frozen=True)
class Completion:
    completed_on: date
    expires_on: date | None


def status_on(completions: Iterable[Completion], on: date) -> str:
    """trained | expired | untrained on day `on` (see the module's docstring)."""
    done = [c for c in completions if c.completed_on <= on]
    if not done:
        return "untrained"
    latest = max(done, key=lambda c: (c.completed_on, c.expires_on or date.max))
    return "trained" if latest.expires_on is None or latest.expires_on > on else "expired"


def today() -> date:
    return months.local_date(utcnow())


def check(
    form: QaForm, staff_ids: set[str], body: TrainingRecordCreate, *, on: date
) -> list[tuple[str, str]]:
    """Pure: (field, reason) for each problem with a record."""
    problems: list[tuple[str, str]] = []
    if body.staff_id not in staff_ids:
        problems.append(("staff_id", "no such staff member"))
    if body.module not in form.module_ids:
        problems.append(
            ("module", f"unknown training module (known: {', '.join(form.module_ids)})")
        )
    if body.completed_on > on:
        problems.append(("completed_on", "is in the future"))
    if body.expires_on is not None and body.expires_on <= body.completed_on:
        problems.append(("expires_on", "must be after completed_on"))
    return problems


def _insert(session: AsyncSession) -> Upsert:
    return upsert_for(session, TrainingRecord)


async def _upsert(session: AsyncSession, rows: Sequence[TrainingRecordCreate], actor: str) -> int:
    """Insert or update each (staff, module, completed_on); returns how many were new."""
    keys = {(r.staff_id, r.module, r.completed_on) for r in rows}
    existing: set[tuple[str, str, date]] = set()
    staff = sorted({k[0] for k in keys})
    for start in range(0, len(staff), 5000):
        found = await session.execute(
            select(
                TrainingRecord.staff_id, TrainingRecord.module, TrainingRecord.completed_on
            ).where(TrainingRecord.staff_id.in_(staff[start : start + 5000]))
        )
        existing.update((a, b, c) for a, b, c in found.all())
    now = utcnow()
    for start in range(0, len(rows), 1000):
        statement = _insert(session).values(
            [
                {
                    "staff_id": r.staff_id,
                    "module": r.module,
                    "completed_on": r.completed_on,
                    "expires_on": r.expires_on,
                    "recorded_by": actor,
                    "recorded_at": now,
                }
                for r in rows[start : start + 1000]
            ]
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["staff_id", "module", "completed_on"],
                set_={
                    "expires_on": statement.excluded.expires_on,
                    "recorded_by": statement.excluded.recorded_by,
                    "recorded_at": statement.excluded.recorded_at,
                },
            )
        )
    return len(keys - existing)


async def _staff_ids(session: AsyncSession, wanted: Iterable[str] | None = None) -> set[str]:
    query = select(Staff.id)
    if wanted is not None:
        query = query.where(Staff.id.in_(list(wanted)))
    return set((await session.scalars(query)).all())


async def record(
    session: AsyncSession, form: QaForm, body: TrainingRecordCreate, principal: Principal
) -> tuple[TrainingRecord, bool]:
    """Store one completion; returns it and whether it is new. 422 lists every problem."""
    problems = check(form, await _staff_ids(session, [body.staff_id]), body, on=today())
    if problems:
        raise TrainingRecordInvalid(
            "the training record cannot be stored: " + "; ".join(f"{f}: {r}" for f, r in problems),
            [{"field": f, "reason": r} for f, r in problems],
        )
    new = await _upsert(session, [body], principal.actor)
    stored = await session.scalar(
        select(TrainingRecord)
        .where(
            TrainingRecord.staff_id == body.staff_id,
            TrainingRecord.module == body.module,
            TrainingRecord.completed_on == body.completed_on,
        )
        .execution_options(populate_existing=True)
    )
    assert stored is not None  # just written
    audit.record(
        session,
        actor=principal.actor,
        action="collection" if new else "alteration",
        subject_type="training_record",
        subject_id=str(stored.id),
        records={"staff": body.staff_id, "module": body.module},
    )
    return stored, bool(new)


async def list_records(
    session: AsyncSession,
    principal: Principal,
    *,
    staff_id: str | None = None,
    module: str | None = None,
    limit: int = 500,
) -> list[TrainingRecord]:
    query = select(TrainingRecord).order_by(TrainingRecord.id.desc()).limit(limit)
    if staff_id is not None:
        query = query.where(TrainingRecord.staff_id == staff_id)
    if module is not None:
        query = query.where(TrainingRecord.module == module)
    found = list((await session.scalars(query)).all())
    audit.record(
        session,
        actor=principal.actor,
        action="consultation",
        subject_type="training_record",
        records={"training_records": [r.id for r in found]},
    )
    return found


async def records_by_staff(
    session: AsyncSession, staff_ids: Iterable[str]
) -> dict[str, dict[str, list[Completion]]]:
    """{staff: {module: [completions]}} for these staff members."""
    wanted = sorted(set(staff_ids))
    found: dict[str, dict[str, list[Completion]]] = defaultdict(lambda: defaultdict(list))
    for start in range(0, len(wanted), 5000):
        rows = await session.execute(
            select(
                TrainingRecord.staff_id,
                TrainingRecord.module,
                TrainingRecord.completed_on,
                TrainingRecord.expires_on,
            ).where(TrainingRecord.staff_id.in_(wanted[start : start + 5000]))
        )
        for staff_id, module, completed_on, expires_on in rows.all():
            found[staff_id][module].append(Completion(completed_on, expires_on))
    return found


async def summary(
    session: AsyncSession, form: QaForm, on: date | None, principal: Principal
) -> TrainingSummary:
    """Active handlers trained / expired / untrained in each module on day `on` (today)."""
    on = on or today()
    handlers = list(
        (
            await session.scalars(
                select(Staff.id).where(Staff.role == Role.handler.value, Staff.active.is_(True))
            )
        ).all()
    )
    register = await records_by_staff(session, handlers)
    modules = []
    for module in form.modules:
        counts = {"trained": 0, "expired": 0, "untrained": 0}
        for staff_id in handlers:
            counts[status_on(register.get(staff_id, {}).get(module.id, []), on)] += 1
        modules.append(ModuleSummary(module=module.id, title=module.title, **counts))
    audit.record(
        session,
        actor=principal.actor,
        action="consultation",
        subject_type="training_record",
        justification="training summary",
        records={"on": on.isoformat(), "staff": len(handlers)},
    )
    return TrainingSummary(on=on, staff=len(handlers), modules=modules)


# ---- CSV import --------------------------------------------------------------------------


def _date(value: str, column: str, required: bool) -> tuple[date | None, str | None]:
    if not value:
        return None, ("required" if required else None)
    try:
        return date.fromisoformat(value), None
    except ValueError:
        return None, "not a date (YYYY-MM-DD)"


def parse_csv(
    form: QaForm, name: str, text: str, staff_ids: set[str], on: date
) -> tuple[list[TrainingRecordCreate], list[RowError]]:
    """Pure: the rows of a register CSV and every problem as `file:line: column: reason`
    (never the cell's content)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS[:3] if c not in (reader.fieldnames or [])]
    if missing:
        return [], [RowError(name, 1, None, "missing column(s): " + ", ".join(missing))]
    rows: list[TrainingRecordCreate] = []
    errors: list[RowError] = []
    first_seen: dict[tuple[str, str, date], int] = {}
    for record_ in reader:
        line = reader.line_num
        values = {c: (record_.get(c) or "").strip() for c in COLUMNS}
        problems: list[tuple[str, str]] = []
        completed, bad = _date(values["completed_on"], "completed_on", True)
        if bad:
            problems.append(("completed_on", bad))
        expires, bad = _date(values["expires_on"], "expires_on", False)
        if bad:
            problems.append(("expires_on", bad))
        if not values["staff_id"]:
            problems.append(("staff_id", "required"))
        if not values["module"]:
            problems.append(("module", "required"))
        if not problems and completed is not None:
            body = TrainingRecordCreate.model_construct(
                staff_id=values["staff_id"],
                module=values["module"],
                completed_on=completed,
                expires_on=expires,
            )
            problems = check(form, staff_ids, body, on=on)
            key = (body.staff_id, body.module, completed)
            if key in first_seen:
                problems.append(("completed_on", f"repeats line {first_seen[key]}"))
            first_seen.setdefault(key, line)
            if not problems:
                rows.append(body)
        errors.extend(RowError(name, line, column, reason) for column, reason in problems)
    return rows, errors


async def import_csv(
    session: AsyncSession, form: QaForm, name: str, text: str, actor: str
) -> tuple[int, int]:
    """Load a register CSV (its text, read by the caller), all or nothing; returns (rows,
    new). Raises TrainingImportRejected with every bad row (up to a cap) as
    `file:line: column: reason`."""
    rows, errors = parse_csv(form, name, text, await _staff_ids(session), today())
    if errors:
        raise TrainingImportRejected(
            f"{len(errors)} problem(s); nothing was imported",
            {"errors": [str(e) for e in errors[:MAX_REPORTED]]},
        )
    new = await _upsert(session, rows, actor)
    audit.record(
        session,
        actor=actor,
        action="collection",
        subject_type="training_record",
        justification="training register import",
        records={"file": name, "rows": len(rows), "new": new},
    )
    return len(rows), new
