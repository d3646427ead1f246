"""Erasing a person from the calls that involve them: the calls from their own numbers, the
calls they were linked to (a subject, the assessed victim, a contact filed under them), and
the calls whose screen showed them (a household member in another caller's context).

Each call keeps its record (the force still needs to know a call happened and how it was
graded); the person's name, id and numbers are taken out of what it holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Text, cast, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call, CallEventRow
from app.history.models import Alert, CallContext, CallSubject, Contact
from app.idempotency.models import IdempotentRequest
from app.qa.models import QaAnswer, QaReview
from app.realtime.models import OutboxMessage
from app.retention.purge import without_number
from app.retention.scrub import Subject
from app.thrive.models import Assessment, AssessmentDraft, CallCue, CallThrive

# Call ids per statement (SQLite allows a limited number of bound parameters).
CHUNK = 500


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


async def linked_calls(session: AsyncSession, subject: Subject) -> list[int]:
    """Every call that holds something of the person."""
    pid = subject.person_id
    queries: list[Any] = [
        select(CallSubject.call_id).where(
            (CallSubject.subject_type == "person") & (CallSubject.subject_id == pid)
        ),
        select(Assessment.call_id).where(Assessment.victim_person_id == pid),
        select(Contact.call_id).where(
            ((Contact.person_id == pid) | (Contact.caller_person_id == pid))
            & Contact.call_id.is_not(None)
        ),
        # The snapshot names the person by id wherever it shows them ("id": "P1").
        select(CallContext.call_id).where(
            cast(CallContext.context, Text).contains(f'"{pid}"', autoescape=True)
        ),
    ]
    if subject.numbers:
        queries.append(select(Call.id).where(Call.caller_e164.in_(sorted(subject.numbers))))
    found: set[int] = set()
    for query in queries:
        found.update(i for i in (await session.scalars(query)).all() if i is not None)
    return sorted(found)


async def scrub_calls(session: AsyncSession, subject: Subject, call_ids: list[int]) -> int:
    """Take the person out of each call in `call_ids`; the number of rows changed."""
    changed = 0
    for chunk in _chunks(call_ids):
        changed += await _scrub_chunk(session, subject, chunk)
    changed += await _forget_idempotent_answers(session, subject, set(call_ids))
    return changed


async def _scrub_chunk(session: AsyncSession, subject: Subject, ids: list[int]) -> int:
    changed = 0
    numbers = sorted(subject.numbers)
    own: set[int] = set()
    if numbers:
        query = select(Call.id).where(Call.id.in_(ids) & Call.caller_e164.in_(numbers))
        own = set((await session.scalars(query)).all())
        result = await session.execute(
            update(Call)
            .where(Call.id.in_(sorted(own)))
            .values(caller_e164=None)
            .execution_options(synchronize_session=False)
        )
        changed += int(getattr(result, "rowcount", 0) or 0)
    for event in await session.scalars(select(CallEventRow).where(CallEventRow.call_id.in_(ids))):
        canonical = subject.document(event.canonical)
        if event.call_id in own:
            # The number as received (in any format): the raw body goes, the canonical copy
            # keeps the presentation without the number.
            canonical = without_number(canonical)
            changed += _set(event, "raw", b"")
        changed += _set(event, "canonical", canonical)
    for context in await session.scalars(select(CallContext).where(CallContext.call_id.in_(ids))):
        changed += _set(context, "context", subject.document(context.context))
    for alert in await session.scalars(select(Alert).where(Alert.call_id.in_(ids))):
        changed += _set(alert, "title", subject.label(alert.title))
        for name in ("reasons", "evidence", "evidence_lines", "tags"):
            changed += _set(alert, name, subject.document(getattr(alert, name)))
    for thrive in await session.scalars(select(CallThrive).where(CallThrive.call_id.in_(ids))):
        changed += _set(thrive, "narrative", subject.free_text(thrive.narrative))
    for cue in await session.scalars(select(CallCue).where(CallCue.call_id.in_(ids))):
        changed += _set(cue, "matched", subject.document(cue.matched, words=True))
    for assessment in await session.scalars(select(Assessment).where(Assessment.call_id.in_(ids))):
        changed += _scrub_assessment(subject, assessment)
    for draft in await session.scalars(
        select(AssessmentDraft).where(AssessmentDraft.call_id.in_(ids))
    ):
        changed += _set(draft, "form", subject.document(draft.form, words=True))
    changed += await _scrub_outbox(session, subject, ids)
    reviews = select(QaReview.id).where(QaReview.call_id.in_(ids))
    for answer in await session.scalars(select(QaAnswer).where(QaAnswer.review_id.in_(reviews))):
        changed += _set(answer, "feedback", subject.free_text(answer.feedback))
    await session.flush()
    return changed


async def _scrub_outbox(session: AsyncSession, subject: Subject, ids: list[int]) -> int:
    """The calls' frames in the outbox (app.realtime.outbox): those sent are only kept for a
    while as a record of delivery, and go; those not sent yet still go out (a screen waits
    for them, in order) but without the person."""
    changed = 0
    for row in await session.scalars(select(OutboxMessage).where(OutboxMessage.call_id.in_(ids))):
        if row.sent_at is not None:
            await session.delete(row)
            changed += 1
            continue
        bodies = [
            json.dumps(subject.document(json.loads(body)), separators=(",", ":"))
            for body in row.bodies.split("\n")
        ]
        changed += _set(row, "bodies", "\n".join(bodies))
    return changed


def _scrub_assessment(subject: Subject, assessment: Assessment) -> int:
    changed = _set(assessment, "grade_reason", subject.free_text(assessment.grade_reason))
    changed += _set(assessment, "elements", subject.document(assessment.elements, words=True))
    if assessment.victim_person_id == subject.person_id:
        changed += _set(assessment, "victim_person_id", None)
    return changed


async def _forget_idempotent_answers(
    session: AsyncSession, subject: Subject, call_ids: set[int]
) -> int:
    """Stored answers kept for retries (48 h at most): those of a linked call's writes or
    naming the person are deleted; a retry then runs again instead of replaying."""
    doomed: list[int] = []
    rows = await session.execute(
        select(IdempotentRequest.id, IdempotentRequest.path, IdempotentRequest.response)
    )
    for id_, path, response in rows:
        if _call_of(path) in call_ids or subject.document(response, words=True) != response:
            doomed.append(id_)
    for start in range(0, len(doomed), CHUNK):
        await session.execute(
            delete(IdempotentRequest).where(IdempotentRequest.id.in_(doomed[start : start + CHUNK]))
        )
    return len(doomed)


def _call_of(path: str) -> int | None:
    # "/api/v1/calls/17/narrative" -> 17
    parts = path.strip("/").split("/")
    if len(parts) >= 4 and parts[2] == "calls" and parts[3].isdigit():
        return int(parts[3])
    return None


def _set(row: object, attribute: str, value: object) -> int:
    if getattr(row, attribute) == value:
        return 0
    setattr(row, attribute, value)
    return 1
