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
from sqlalchemy import select

from app.audit.models import AuditLog
from app.audit.service import record
from app.auth.models import Role
from app.calls.grouping import GroupCommit
from app.calls.models import Call, CallEventRow
from app.calls.step import StepContext
from app.config import Settings
from app.history.models import Contact
from app.telephony import canonical
from tests.calls.test_pipeline import fast, pipeline_of, running
from tests.conftest import MakeStaff
from tests.telephony.support import count_rows, lifecycle, post_signed


def grouped_of(app: FastAPI) -> GroupCommit:
    grouped = app.state.resources.ingest
    assert isinstance(grouped, GroupCommit)
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


async def test_a_step_failing_in_a_group_holds_back_only_its_own_event(
    settings: Settings,
) -> None:
    """The group is rolled back and its events taken again one at a time: the others are
    processed before their answers, the bad one is stored for the sweeper."""
    attempts: Counter[str] = Counter()

    async def flaky(ctx: StepContext) -> None:
        key = f"{ctx.event.call_id}/{ctx.event.type.value}"
        attempts[key] += 1
        # A write in the processing transaction: only an attempt that commits keeps it.
        record(ctx.session, actor="test", action="consultation", subject_type="call",
               subject_id=key)  # fmt: skip
        if key == "bad/offered":
            raise RuntimeError("lookup backend unavailable")

    start = datetime.now(UTC) - timedelta(minutes=5)
    bodies = [lifecycle("bad", start)[0]] + [
        lifecycle(f"ok-{n}", start + timedelta(seconds=n))[0] for n in range(4)
    ]
    # The sweeper's retry is far off: what is processed below was processed inline.
    slow_retry = fast(settings, pipeline_retry_base_seconds=60, pipeline_retry_max_seconds=60)
    async with running(slow_retry) as (app, _http):
        pipeline_of(app).steps = [flaky]
        grouped = grouped_of(app)
        # Called directly, all at once: the five are waiting before the first transaction
        # starts, so they go in one group (webhook requests do the same under load).
        events = [canonical.parse(json.dumps(body).encode()) for body in bodies]
        outcomes = await asyncio.gather(
            *(grouped.accept(canonical.SOURCE, e, json.dumps(b).encode())
              for e, b in zip(events, bodies, strict=True))
        )  # fmt: skip
        assert grouped.largest == 5 and grouped.retried_alone == 5
        assert not any(o.duplicate for o in outcomes)
        async with app.state.resources.sessions() as session:
            rows = {r.event_id: r for r in (await session.scalars(select(CallEventRow))).all()}
            kept = Counter((await session.scalars(select(AuditLog.subject_id))).all())
    assert len(rows) == 5  # accepted means durable: every event of the failed group stored
    bad = rows[bodies[0]["event_id"]]
    assert bad.processed_at is None and bad.last_error == "RuntimeError"
    assert all(rows[b["event_id"]].processed_at is not None for b in bodies[1:])
    # The group's writes were rolled back; each good event's were kept once, the bad one's
    # never.
    assert kept == {f"ok-{n}/offered": 1 for n in range(4)}
    assert attempts["bad/offered"] == 2  # in the group, then alone


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


async def test_a_request_cancelled_while_waiting_still_has_its_event_committed(
    app: FastAPI,
) -> None:
    """A platform that hangs up mid-request: its event is committed anyway (the express
    attempt, or the group it joined, is shielded), and the platform's retry gets the original
    outcome."""
    grouped = grouped_of(app)
    bodies = [lifecycle(f"gone-{n}", datetime.now(UTC))[0] for n in range(3)]
    raws = [json.dumps(b).encode() for b in bodies]
    events = [canonical.parse(raw) for raw in raws]
    tasks = [
        asyncio.create_task(grouped.accept(canonical.SOURCE, e, raw))
        for e, raw in zip(events, raws, strict=True)
    ]
    await asyncio.sleep(0)  # each task has started (express, then a group); nothing committed
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert await count_rows(app, CallEventRow) == 3
    retry = await grouped.accept(canonical.SOURCE, events[1], raws[1])
    assert retry.duplicate and retry.call_id is not None


async def test_fewer_than_the_minimum_go_one_transaction_each_in_order(settings: Settings) -> None:
    """Two or three events waiting together are cheaper apart; from the minimum on they
    share one transaction. Either way each call's events keep their order."""
    transactions: list[object] = []
    order: list[str] = []

    async def watch(ctx: StepContext) -> None:
        if not any(t is ctx.session for t in transactions):
            transactions.append(ctx.session)
        order.append(f"{ctx.event.call_id}/{ctx.event.type.value}")

    start = datetime.now(UTC) - timedelta(minutes=5)
    async with running(fast(settings, telephony_group_min=4)) as (app, _http):
        pipeline_of(app).steps = [watch]
        grouped = grouped_of(app)

        async def together(bodies: list[dict[str, Any]]) -> None:
            raws = [json.dumps(b).encode() for b in bodies]
            # Called at once: all are waiting before the first transaction starts.
            await asyncio.gather(
                *(grouped.accept(canonical.SOURCE, canonical.parse(r), r) for r in raws)
            )

        three = lifecycle("few", start)[:3]
        await together(three)
        assert len(transactions) == 3 and grouped.largest == 1  # figures per transaction
        assert order == ["few/offered", "few/ringing", "few/answered"]

        transactions.clear()
        order.clear()
        four = lifecycle("many", start + timedelta(seconds=1))
        await together(four)
        assert len(transactions) == 1
        assert order == ["many/offered", "many/ringing", "many/answered", "many/ended"]
        assert await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 0
