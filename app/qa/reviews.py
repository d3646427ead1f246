"""Reviews: a reviewer grades one call against the form, with feedback per standard (what the
reviewer reads beside the form is in record.py).

Every problem with a review is found at once and returned in one 422 (`review_invalid`,
`details` = `[{field, reason}]`), never the submitted values. A call may be reviewed by several
reviewers (calibration), once each: its first review counts in the monthly table. Opening a
call to review it is audited, and so is reading reviews; a handler reads only the reviews of
their own calls.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls import service as calls
from app.calls.models import Call
from app.db import utcnow
from app.errors import AppError, Conflict, Forbidden
from app.qa import months, tally
from app.qa.forms import NOT_APPLICABLE, QaForm
from app.qa.models import QaAnswer, QaReview, QaSampleCall
from app.qa.schemas import AnswerRead, ReviewCreate, ReviewRead
from app.thrive.models import Assessment

log = logging.getLogger(__name__)


class ReviewInvalid(AppError):
    status, code = 422, "review_invalid"


class AlreadyReviewed(Conflict):
    code = "already_reviewed"


class ReviewConflict(Conflict):
    code = "review_conflict"


class NotYourReviews(Forbidden):
    code = "forbidden"


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


def check_answers(
    form: QaForm, answers: Mapping[str, str], feedback: Mapping[str, str]
) -> list[Problem]:
    """Pure: what is wrong with these answers and feedback for `form` (every problem)."""
    problems: list[Problem] = []
    known = [s.id for s in form.standards]
    for standard_id in answers:
        if form.standard(standard_id) is None:
            problems.append(
                Problem(
                    f"answers.{standard_id}",
                    f"unknown standard {standard_id!r} (the form has: {', '.join(known)})",
                )
            )
    for standard in form.standards:
        field = f"answers.{standard.id}"
        if standard.id not in answers:
            problems.append(Problem(field, f"missing: every standard needs an answer ({field})"))
            continue
        answer = answers[standard.id]
        if answer == NOT_APPLICABLE and not standard.not_applicable_allowed:
            problems.append(
                Problem(field, f"{standard.id}: the form does not allow not_applicable here")
            )
        elif answer not in standard.answers:
            problems.append(
                Problem(
                    field,
                    f"{standard.id}: the answer is not on its scale "
                    f"({', '.join(standard.answers)})",
                )
            )
    for standard_id in feedback:
        if form.standard(standard_id) is None:
            problems.append(
                Problem(
                    f"feedback.{standard_id}",
                    f"feedback for an unknown standard {standard_id!r}",
                )
            )
    return problems


def check_victim_answers(
    form: QaForm, answers: Mapping[str, str], has_victim: bool
) -> list[Problem]:
    """Pure: `not_applicable` for a standard that applies to every call with a victim, on a
    call whose assessment records one."""
    if not has_victim:
        return []
    return [
        Problem(
            f"answers.{s.id}",
            f"{s.id}: the call's assessment records a victim, so this standard applies "
            "(answer it, not not_applicable)",
        )
        for s in form.standards
        if s.applies_with_victim and answers.get(s.id) == NOT_APPLICABLE
    ]


async def _has_victim(session: AsyncSession, call_id: int) -> bool:
    """Whether the call's latest assessment records a victim (no assessment: no)."""
    victim = await session.scalar(
        select(Assessment.victim)
        .where(Assessment.call_id == call_id)
        .order_by(Assessment.version.desc())
        .limit(1)
    )
    return bool(victim)


async def _call_problems(session: AsyncSession, call: Call, sample_id: int | None) -> list[Problem]:
    problems: list[Problem] = []
    if call.ended_at is None:
        problems.append(Problem("call_id", "the call has not ended: review it once it has"))
    if call.answered_at is None:
        problems.append(
            Problem("call_id", "the call was never answered: there is nothing to grade")
        )
    if sample_id is not None:
        in_sample = await session.scalar(
            select(func.count())
            .select_from(QaSampleCall)
            .where(QaSampleCall.sample_id == sample_id, QaSampleCall.call_id == call.id)
        )
        if not in_sample:
            problems.append(
                Problem("sample_id", f"the call is not in sample {sample_id} (or no such sample)")
            )
    return problems


async def create_review(
    session: AsyncSession, form: QaForm, body: ReviewCreate, principal: Principal
) -> ReviewRead:
    """Store one review (201) or raise: 404 unknown call, 422 every problem, 409 if this
    reviewer has reviewed the call already."""
    problems = check_answers(form, body.answers, body.feedback)
    call = await calls.get_call(session, body.call_id)
    problems += await _call_problems(session, call, body.sample_id)
    problems += check_victim_answers(form, body.answers, await _has_victim(session, call.id))
    if problems:
        raise ReviewInvalid(
            "the review cannot be stored: " + "; ".join(p.reason for p in problems),
            [p.as_dict() for p in problems],
        )
    earlier = (
        await session.execute(
            select(QaReview.ordinal, QaReview.reviewer_id).where(QaReview.call_id == call.id)
        )
    ).all()
    if any(reviewer == principal.id for _, reviewer in earlier):
        raise AlreadyReviewed(
            "you have reviewed this call already; another reviewer may review it for calibration"
        )
    offered_at = call.offered_at or call.created_at
    review = QaReview(
        call_id=call.id,
        ordinal=max((ordinal for ordinal, _ in earlier), default=0) + 1,
        reviewer_id=principal.id,
        reviewer_role=principal.role.value,
        reviewed_at=utcnow(),
        sample_id=body.sample_id,
        form=form.ref,
        handler_id=call.handler_id,
        queue=call.queue,
        call_month=months.of(offered_at),
        offered_at=offered_at,
    )
    session.add(review)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Another review of this call was stored at the same moment and took the number.
        raise ReviewConflict(
            "another review of this call was stored at the same time; retry"
        ) from exc
    rows = []
    for standard in form.standards:
        answer = body.answers[standard.id]
        rows.append(
            QaAnswer(
                review_id=review.id,
                standard=standard.id,
                answer=answer,
                met=answer in standard.met,
                applicable=answer != NOT_APPLICABLE,
                feedback=body.feedback.get(standard.id) or None,
            )
        )
    session.add_all(rows)
    await session.flush()
    if review.ordinal == 1:  # the review that counts in the table (later ones: calibration)
        await tally.add(session, review.call_month, rows)
    audit.record(
        session,
        actor=principal.actor,
        action="collection",
        subject_type="qa_review",
        subject_id=str(review.id),
        call_id=str(call.id),
        records={"review": review.id, "ordinal": review.ordinal, "sample": body.sample_id},
    )
    log.info("qa review stored", extra={"call": call.id, "review": review.id})
    return review_read(review, rows)


def review_read(review: QaReview, answers: Sequence[QaAnswer]) -> ReviewRead:
    return ReviewRead(
        id=review.id,
        call_id=review.call_id,
        reviewer_id=review.reviewer_id,
        reviewed_at=review.reviewed_at,
        sample_id=review.sample_id,
        targeted=review.sample_id is None,
        calibration=review.ordinal > 1,
        form=review.form,
        handler_id=review.handler_id,
        queue=review.queue,
        month=review.call_month,
        answers=[
            AnswerRead(
                standard=a.standard,
                answer=a.answer,
                met=a.met,
                applicable=a.applicable,
                feedback=a.feedback,
            )
            for a in answers
        ],
    )


async def list_reviews(
    session: AsyncSession,
    form: QaForm,
    principal: Principal,
    *,
    call_id: int | None = None,
    handler: str | None = None,
    month: str | None = None,
    limit: int = 100,
) -> list[ReviewRead]:
    """Reviews, newest first. A handler gets only the reviews of their own calls (asking for
    another handler's: 403)."""
    if not policy.sees_every_call(principal, Capability.qa_read_reviews):
        if handler is not None and handler != principal.id:
            raise NotYourReviews("handlers see their own reviews only")
        handler = principal.id
    query = select(QaReview).order_by(QaReview.id.desc()).limit(limit)
    if call_id is not None:
        query = query.where(QaReview.call_id == call_id)
    if handler is not None:
        query = query.where(QaReview.handler_id == handler)
    if month is not None:
        query = query.where(QaReview.call_month == months.label(*months.parse(month)))
    reviews = (await session.scalars(query)).all()
    answers: dict[int, list[QaAnswer]] = defaultdict(list)
    if reviews:
        for answer in await session.scalars(
            select(QaAnswer).where(QaAnswer.review_id.in_([r.id for r in reviews]))
        ):
            answers[answer.review_id].append(answer)
    audit.record(
        session,
        actor=principal.actor,
        action="consultation",
        subject_type="qa_review",
        call_id=str(call_id) if call_id is not None else None,
        records={"reviews": [r.id for r in reviews]},
    )
    return [review_read(r, in_form_order(form, answers[r.id])) for r in reviews]


def in_form_order(form: QaForm, answers: list[QaAnswer]) -> list[QaAnswer]:
    order = {s.id: i for i, s in enumerate(form.standards)}
    return sorted(answers, key=lambda a: (order.get(a.standard, len(order)), a.standard))
