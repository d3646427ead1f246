"""The assessment form as typed: one draft per call and handler, saved as the handler goes.

Reads: the handler's own draft of a call they handled; supervisors and admins any handler's
(`handler`, default the call's current handler). Writes: the call's current handler only, each
naming the `revision` it was based on (0: no draft yet); a stale revision is 409
`draft_conflict` with the current draft in `details`, so a second tab never silently
overwrites the first. Reading a draft is a consultation of the call's record (audit-logged,
as the screen's reads are); its first save is a collection.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls import service as calls
from app.db import Upsert, upsert_for, utcnow
from app.errors import Conflict, Forbidden
from app.thrive.models import AssessmentDraft
from app.thrive.schemas import Element, Grade, RepeatVictimCheck, RiskLevel
from app.thrive.service import call_for_writer

# Who may read any handler's draft of a call (a handler reads only their own).
MAX_REVISION = 2_000_000_000


class DraftConflict(Conflict):
    status, code = 409, "draft_conflict"


class NotYourDraft(Forbidden):
    status, code = 403, "not_your_draft"


# ---- bodies ------------------------------------------------------------------------------

_FORM = ConfigDict(extra="forbid")  # text kept as typed (no stripping): it is a draft
# NUL and lone surrogates cannot be stored (PostgreSQL refuses them in text and JSON): a 422
# naming the field, never a 500.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("contains NUL or an unpaired surrogate, which cannot be stored")
    return value


ElementText = Annotated[str, Field(max_length=4000), AfterValidator(_storable)]
ReasonText = Annotated[str, Field(max_length=2000), AfterValidator(_storable)]


class DraftElement(BaseModel):
    model_config = _FORM
    risk: RiskLevel | None = None
    text: ElementText = ""


class DraftForm(BaseModel):
    """What the form holds; every field may still be empty."""

    model_config = _FORM
    grade: Grade | None = None
    grade_reason: ReasonText = ""
    elements: dict[Element, DraftElement] = Field(default_factory=dict)
    repeat_victim_check: RepeatVictimCheck | None = None
    victim: bool = False


class DraftIn(DraftForm):
    # The revision this edit was based on: 0 for the first save, else the last one read.
    revision: int = Field(ge=0, le=MAX_REVISION)
    # The handler chose "Defer assessment": the call leaves their wrap-up list.
    deferred: bool = False


class DraftRead(DraftForm):
    call_id: int
    staff_id: str
    revision: int  # 0: nothing saved yet
    deferred: bool = False
    deferred_at: datetime | None = None
    updated_at: datetime | None = None


def _read(call_id: int, staff_id: str, row: AssessmentDraft | None) -> DraftRead:
    if row is None:
        return DraftRead(call_id=call_id, staff_id=staff_id, revision=0)
    return DraftRead(
        call_id=row.call_id,
        staff_id=row.staff_id,
        revision=row.revision,
        deferred=row.deferred,
        deferred_at=row.deferred_at,
        updated_at=row.updated_at,
        **DraftForm.model_validate(row.form).model_dump(),
    )


def _form(body: DraftIn) -> dict[str, object]:
    return DraftForm.model_validate(
        body.model_dump(include=set(DraftForm.model_fields))
    ).model_dump(mode="json")


def _insert(session: AsyncSession) -> Upsert:
    return upsert_for(session, AssessmentDraft)


async def _row(
    session: AsyncSession, call_id: int, staff_id: str, *, lock: bool = False
) -> AssessmentDraft | None:
    query = select(AssessmentDraft).where(
        AssessmentDraft.call_id == call_id, AssessmentDraft.staff_id == staff_id
    )
    if lock:
        query = query.with_for_update()
    row: AssessmentDraft | None = await session.scalar(
        query.execution_options(populate_existing=True)
    )
    return row


def _audit_read(session: AsyncSession, principal: Principal, row: AssessmentDraft) -> None:
    audit.record(
        session,
        actor=principal.actor,
        action="consultation",
        subject_type="assessment_draft",
        subject_id=f"{row.call_id}:{row.staff_id}",
        call_id=str(row.call_id),
        records={"draft": {"call": row.call_id, "staff": row.staff_id}},
    )


# ---- reads -------------------------------------------------------------------------------


async def get_draft(
    session: AsyncSession, call_id: int, principal: Principal, handler: str | None = None
) -> DraftRead:
    """A handler's draft of the call (revision 0 and empty when none was saved)."""
    call = await calls.get_call(session, call_id)
    if policy.sees_every_call(principal, Capability.read_draft):
        staff_id = handler or call.handler_id or ""
    elif policy.allows_on(principal, Capability.read_draft, call):
        if handler not in (None, principal.id):
            raise NotYourDraft("a handler may read only their own draft")
        staff_id = principal.id
    else:
        raise NotYourDraft("only the call's handlers, supervisors and admins may read its draft")
    row = await _row(session, call.id, staff_id)
    if row is not None:
        _audit_read(session, principal, row)
    return _read(call.id, staff_id, row)


async def for_screen(
    session: AsyncSession, call_id: int, principal: Principal
) -> dict[str, object] | None:
    """The viewer's own draft of a call for the handler's screen (audited when there is one)."""
    row = await _row(session, call_id, principal.id)
    if row is None:
        return None
    _audit_read(session, principal, row)
    return _read(call_id, principal.id, row).model_dump(mode="json")


# ---- writes ------------------------------------------------------------------------------


async def put_draft(
    session: AsyncSession, call_id: int, body: DraftIn, principal: Principal
) -> DraftRead:
    """Save the form over the revision it was based on (409 with the current one if stale)."""
    call = await call_for_writer(session, call_id, principal)
    row = await _row(session, call.id, principal.id, lock=True)
    current = row.revision if row is not None else 0
    if body.revision != current:
        raise DraftConflict(
            f"this draft was saved elsewhere since revision {body.revision} (now {current}):"
            " reload it, or save again over it",
            _read(call.id, principal.id, row).model_dump(mode="json"),
        )
    now = utcnow()
    form = _form(body)
    if row is None:
        created = await session.scalar(
            _insert(session)
            .values(
                call_id=call.id,
                staff_id=principal.id,
                revision=1,
                form=form,
                deferred=body.deferred,
                deferred_at=now if body.deferred else None,
                updated_at=now,
            )
            .on_conflict_do_nothing(
                index_elements=[AssessmentDraft.call_id, AssessmentDraft.staff_id]
            )
            .returning(AssessmentDraft.revision)
        )
        if created is None:  # another first save won the race
            raced = await _row(session, call.id, principal.id)
            raise DraftConflict(
                "this draft was first saved elsewhere at the same time: reload it",
                _read(call.id, principal.id, raced).model_dump(mode="json"),
            )
        # The handler's own words about the call start being kept: once per call, as the
        # narrative's collection is.
        audit.record(
            session,
            actor=principal.actor,
            action="collection",
            subject_type="assessment_draft",
            subject_id=f"{call.id}:{principal.id}",
            call_id=str(call.id),
            records={"draft": {"call": call.id, "staff": principal.id}},
        )
        row = await _row(session, call.id, principal.id)
        assert row is not None
    else:
        if row.revision >= MAX_REVISION:
            raise DraftConflict("this draft has been saved too many times", None)
        row.revision += 1
        row.form = form
        row.deferred_at = (row.deferred_at or now) if body.deferred else None
        row.deferred = body.deferred
        row.updated_at = now
        await session.flush()
    return _read(call.id, principal.id, row)
