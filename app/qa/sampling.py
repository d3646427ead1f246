"""Drawing QA samples: `per_handler` calls at random from each handler's eligible calls.

Eligible: offered in the UK-local month, answered and ended, at a handler, not yet reviewed,
and within the optional filters (queue, minimum talk time, flagged only). A call belongs to the
handler who had it when it ended (after a transfer, the last one): the one who records its
THRIVE+ assessment.

Reproducible: each handler's eligible calls are put in a fixed order (the provider's identity
of the call, `source` then `external_id`, which does not depend on our row ids) and drawn with
`random.Random(f"{seed}:{handler_id}")`. A generator per handler, rather than one shared across
handlers, keeps a handler's sample the same when another handler's calls change. The same seed
over the same calls gives the same sample; every eligible call of a handler has the same chance.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.service import Principal
from app.calls.models import Call
from app.db import utcnow
from app.errors import NotFound, Unprocessable
from app.qa import months
from app.qa.models import QaReview, QaSample, QaSampleCall
from app.qa.schemas import SampleCall, SampleCreate, SampleRead, Shortfall

# The time a call counts in: when it was offered (its row's creation if the offer was missed).
CALL_TIME = func.coalesce(Call.offered_at, Call.created_at)


class NoEligibleCalls(Unprocessable):
    code = "no_eligible_calls"


class SampleNotFound(NotFound):
    code = "sample_not_found"


@dataclass(frozen=True)
class Candidate:
    call_id: int
    handler_id: str
    order: tuple[str, str]  # (source, external_id): the deterministic order
    flagged: bool = False


@dataclass
class Drawn:
    picked: dict[str, list[Candidate]] = field(default_factory=dict)
    eligible: dict[str, int] = field(default_factory=dict)


def draw(
    candidates: Iterable[Candidate],
    per_handler: int,
    seed: int,
    *,
    at_least_one_flagged: bool = False,
) -> Drawn:
    """Pure: the sample of `candidates` for this seed (see the module's docstring)."""
    pools: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        pools[candidate.handler_id].append(candidate)
    drawn = Drawn()
    for handler_id in sorted(pools):
        pool = sorted(pools[handler_id], key=lambda c: c.order)
        drawn.eligible[handler_id] = len(pool)
        rng = random.Random(f"{seed}:{handler_id}")
        if len(pool) <= per_handler:
            picked = pool
        elif at_least_one_flagged and any(c.flagged for c in pool):
            first = rng.choice([c for c in pool if c.flagged])
            rest = [c for c in pool if c is not first]
            picked = [first, *rng.sample(rest, per_handler - 1)]
        else:
            picked = rng.sample(pool, per_handler)
        drawn.picked[handler_id] = sorted(picked, key=lambda c: c.order)
    return drawn


def _criteria(body: SampleCreate) -> dict[str, object]:
    return {
        "queue": body.queue,
        "min_talk_seconds": body.min_talk_seconds,
        "flagged_only": body.flagged_only,
        "at_least_one_flagged": body.at_least_one_flagged,
    }


async def eligible(
    session: AsyncSession, month: str, body: SampleCreate
) -> tuple[list[Candidate], set[str]]:
    """The month's eligible calls, and every handler who had an answered, ended call in it
    (on the queue asked for): those with fewer eligible calls are reported as shortfalls."""
    start, end = months.bounds(*months.parse(month))
    answered = [
        CALL_TIME >= start,
        CALL_TIME < end,
        Call.answered_at.is_not(None),
        Call.ended_at.is_not(None),
        Call.handler_id.is_not(None),
    ]
    if body.queue is not None:
        answered.append(Call.queue == body.queue)
    handlers = set(
        (await session.scalars(select(Call.handler_id).where(*answered).distinct())).all()
    )
    query = select(
        Call.id,
        Call.handler_id,
        Call.source,
        Call.external_id,
        Call.flagged,
        Call.answered_at,
        Call.ended_at,
    ).where(*answered, ~exists().where(QaReview.call_id == Call.id))
    if body.flagged_only:
        query = query.where(Call.flagged.is_(True))
    found: list[Candidate] = []
    for row in (await session.execute(query)).all():
        if body.min_talk_seconds is not None:
            talk = (row.ended_at - row.answered_at).total_seconds()
            if talk < body.min_talk_seconds:
                continue
        found.append(Candidate(row.id, row.handler_id, (row.source, row.external_id), row.flagged))
    return found, {h for h in handlers if h is not None}


async def create_sample(
    session: AsyncSession, body: SampleCreate, principal: Principal
) -> SampleRead:
    """Draw, store and audit a sample; 422 `no_eligible_calls` (nothing stored) if none."""
    month = months.label(*months.parse(body.month))
    candidates, handlers = await eligible(session, month, body)
    if not candidates:
        raise NoEligibleCalls(
            f"no eligible calls in {month}: none offered that month was answered, ended and "
            "not yet reviewed within these criteria",
            {"month": month, "criteria": _criteria(body)},
        )
    drawn = draw(
        candidates, body.per_handler, body.seed, at_least_one_flagged=body.at_least_one_flagged
    )
    shortfalls: list[dict[str, str | int]] = [
        {
            "handler_id": h,
            "eligible": drawn.eligible.get(h, 0),
            "drawn": len(drawn.picked.get(h, [])),
        }
        for h in sorted(handlers | set(drawn.eligible))
        if drawn.eligible.get(h, 0) < body.per_handler
    ]
    sample = QaSample(
        month=month,
        per_handler=body.per_handler,
        seed=body.seed,
        criteria=_criteria(body),
        drawn_by=principal.id,
        drawn_at=utcnow(),
        shortfalls=shortfalls,
    )
    session.add(sample)
    await session.flush()
    picked = [c for handler in sorted(drawn.picked) for c in drawn.picked[handler]]
    session.add_all(
        QaSampleCall(sample_id=sample.id, call_id=c.call_id, handler_id=c.handler_id)
        for c in picked
    )
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="consultation",
        subject_type="qa_sample",
        subject_id=str(sample.id),
        justification="QA sample drawn",
        records={
            "month": month,
            "per_handler": body.per_handler,
            "seed": body.seed,
            "criteria": _criteria(body),
            "calls": [c.call_id for c in picked],
        },
    )
    return (await _reads(session, [sample]))[0]


async def _reads(session: AsyncSession, samples: Sequence[QaSample]) -> list[SampleRead]:
    ids = [s.id for s in samples]
    if not ids:
        return []
    rows = (
        await session.execute(
            select(QaSampleCall.sample_id, QaSampleCall.handler_id, Call)
            .join(Call, Call.id == QaSampleCall.call_id)
            .where(QaSampleCall.sample_id.in_(ids))
            .order_by(
                QaSampleCall.sample_id, QaSampleCall.handler_id, Call.source, Call.external_id
            )
        )
    ).all()
    call_ids = {row[2].id for row in rows}
    reviews: dict[int, int] = {}
    if call_ids:
        counted = await session.execute(
            select(QaReview.call_id, func.count())
            .where(QaReview.call_id.in_(call_ids))
            .group_by(QaReview.call_id)
        )
        reviews = {call_id: int(n) for call_id, n in counted.all()}
    calls: dict[int, list[SampleCall]] = defaultdict(list)
    for sample_id, handler_id, call in rows:
        n = reviews.get(call.id, 0)
        calls[sample_id].append(
            SampleCall(
                call_id=call.id,
                handler_id=handler_id,
                offered_at=call.offered_at,
                queue=call.queue,
                flagged=call.flagged,
                reviews=n,
                reviewed=n > 0,
            )
        )
    return [
        SampleRead(
            id=s.id,
            month=s.month,
            per_handler=s.per_handler,
            seed=s.seed,
            criteria=dict(s.criteria or {}),
            drawn_by=s.drawn_by,
            drawn_at=s.drawn_at,
            handlers=len({c.handler_id for c in calls[s.id]}),
            calls=calls[s.id],
            shortfalls=[Shortfall.model_validate(f) for f in s.shortfalls or []],
        )
        for s in samples
    ]


async def list_samples(
    session: AsyncSession, month: str | None, limit: int = 50
) -> list[SampleRead]:
    """Samples, newest first, each call with its review status."""
    query = select(QaSample).order_by(QaSample.id.desc()).limit(limit)
    if month is not None:
        query = query.where(QaSample.month == months.label(*months.parse(month)))
    return await _reads(session, (await session.scalars(query)).all())


async def get_sample(session: AsyncSession, sample_id: int) -> SampleRead:
    sample = await session.get(QaSample, sample_id)
    if sample is None:
        raise SampleNotFound("no such sample")
    return (await _reads(session, [sample]))[0]
