"""Group commit (app.calls.grouping): single webhook events posted together share
transactions, and each request still gets its own answer, after its own event is committed.
On both backends."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.audit.service import record
from app.auth.models import Role
from app.calls.grouping import INGEST_KEY, GroupCommit
from app.calls.models import Call, CallEventRow
from app.calls.pipeline import StepContext
from app.config import Settings
from app.history.models import Contact
from tests.calls.test_pipeline import fast, pipeline_of, running
from tests.conftest import MakeStaff
from tests.support.servers import eventually
from tests.telephony.support import count_rows, lifecycle, post_signed


def grouped_of(app: FastAPI) -> GroupCommit:
    grouped: GroupCommit = app.state.resources.extras[INGEST_KEY]
    return grouped


def burst(calls: int, seed: int) -> tuple[list[dict[str, Any]], int]:
    """The events of `calls` calls, shuffled, with a tenth of them posted twice; and the
    number of distinct events."""
    start = datetime.now(UTC) - timedelta(minutes=10)
    events = [
        body
        for n in range(calls)
        for body in lifecycle(f"g-{seed}-{n}", start + timedelta(seconds=n), number="07700 900456")
    ]
    rng = random.Random(seed)
    posted = events + rng.sample(events, len(events) // 10)
    rng.shuffle(posted)
    return posted, len(events)


async def test_a_burst_shares_transactions_and_each_post_gets_its_own_answer(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    posted, distinct = burst(30, seed=3)
    responses = await asyncio.gather(*(post_signed(client, body) for body in posted))

    grouped = grouped_of(app)
    assert grouped.events == len(posted)
    assert grouped.largest > 1, "no two events shared a transaction"
    assert grouped.groups < len(posted)

    by_event: dict[str, list[httpx.Response]] = {}
    for body, response in zip(posted, responses, strict=True):
        by_event.setdefault(body["event_id"], []).append(response)
    assert len(by_event) == distinct
    for event_id, answers in by_event.items():
        statuses = sorted(r.status_code for r in answers)
        # Exactly one post stored it; a second copy (in the same group or a later one) gets
        # the original outcome, marked as a replay.
        assert statuses.count(202) == 1, (event_id, statuses)
        assert statuses.count(200) == len(statuses) - 1, (event_id, statuses)
        original = next(r.json() for r in answers if r.status_code == 202)
        for replay in (r for r in answers if r.status_code == 200):
            assert replay.headers["Idempotent-Replayed"] == "true"
            assert replay.json()["call_id"] == original["call_id"]

    # Stored once each, all processed in the transaction that stored them (nothing left for
    # the sweeper), every call ended, and the history step wrote one contact per call.
    assert await count_rows(app, CallEventRow) == distinct
    assert await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 0
    assert await count_rows(app, Call, Call.state == "ended") == 30
    assert await count_rows(app, Contact) == 30


async def test_a_failing_step_in_a_group_leaves_every_event_for_the_sweeper(
    settings: Settings,
) -> None:
    attempts: Counter[str] = Counter()

    async def flaky(ctx: StepContext) -> None:
        key = f"{ctx.event.call_id}/{ctx.event.type.value}"
        attempts[key] += 1
        # A write in the processing transaction: only the attempt that commits keeps it.
        record(ctx.session, actor="test", action="consultation", subject_type="call",
               subject_id=key)  # fmt: skip
        if ctx.event.call_id.endswith("-0") and ctx.event.type.value == "offered":
            if attempts[key] == 1:
                raise RuntimeError("lookup backend unavailable")

    posted, distinct = burst(12, seed=4)
    async with running(fast(settings)) as (app, http):
        pipeline_of(app).steps = [flaky]
        responses = await asyncio.gather(*(post_signed(http, body) for body in posted))
        assert {r.status_code for r in responses} <= {200, 202}
        assert grouped_of(app).largest > 1

        async def all_processed() -> bool:
            waiting = CallEventRow.processed_at.is_(None)
            return await count_rows(app, CallEventRow, waiting) == 0

        await eventually(all_processed, what="every event processed after the failed group")
        async with app.state.resources.sessions() as session:
            kept = Counter((await session.scalars(select(AuditLog.subject_id))).all())
            stored = await session.scalar(select(func.count()).select_from(CallEventRow))
            retried = await session.scalar(
                select(func.count()).select_from(CallEventRow).where(CallEventRow.attempts > 1)
            )
    assert stored == distinct  # accepted means durable: nothing of the failed group lost
    # Each event's writes were kept exactly once: the failed group's were rolled back.
    assert len(kept) == distinct and set(kept.values()) == {1}
    assert attempts["g-4-0/offered"] >= 2
    assert retried is not None and retried >= 1


async def test_sources_posted_together_are_stored_apart(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("CTI1", Role.integration)
    cti_auth = {"Authorization": f"Bearer {token}"}
    start = datetime.now(UTC) - timedelta(minutes=5)

    async def canonical(n: int) -> int:
        body = lifecycle(f"mix-{n}", start + timedelta(seconds=n))[0]
        return (await post_signed(client, body)).status_code

    async def cti(n: int) -> int:
        body = {"event": "newCall", "callId": f"mix-cti-{n}", "from": "07700 900789",
                "to": "101", "direction": "inbound"}  # fmt: skip
        response = await client.post(
            "/api/v1/telephony/cti", content=json.dumps(body), headers=cti_auth
        )
        return response.status_code

    statuses = await asyncio.gather(*(f(n) for n in range(15) for f in (canonical, cti)))
    assert set(statuses) == {202}
    async with app.state.resources.sessions() as session:
        sources = Counter((await session.scalars(select(Call.source))).all())
    assert sources == {"canonical": 15, "cti": 15}
