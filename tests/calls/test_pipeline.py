"""Processing after acceptance: a failing step is retried from the stored event (its writes
rolled back each time), a restart picks up what was accepted but not processed, and several
sweepers (as several workers would run) process each event exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.audit.models import AuditLog
from app.audit.service import record
from app.cache import create_cache
from app.calls.models import CallEventRow
from app.calls.pipeline import Pipeline
from app.calls.step import StepContext
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.qa import forms as qa_forms
from app.realtime import create_broker
from app.resources import Resources
from app.rules.loader import load_configured
from tests.support.servers import eventually
from tests.telephony.support import count_rows, lifecycle, post_signed


def fast(settings: Settings, **extra: Any) -> Settings:
    values = {
        **settings.model_dump(),
        "pipeline_poll_seconds": 0.05,
        "pipeline_retry_base_seconds": 0.1,
        "pipeline_retry_max_seconds": 0.5,
        "pipeline_lease_seconds": 0.5,
        **extra,
    }
    return Settings(**values)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield application, http


def stop_processing(app: FastAPI) -> None:
    """Webhooks store events and leave them for a sweeper (a process that stopped)."""
    app.state.resources.pipeline = None
    app.state.resources.ingest = None


def pipeline_of(app: FastAPI) -> Pipeline:
    pipeline = app.state.resources.pipeline
    assert isinstance(pipeline, Pipeline)
    return pipeline


async def test_failed_step_is_retried_with_its_writes_rolled_back(settings: Settings) -> None:
    calls: Counter[int] = Counter()

    async def flaky(ctx: StepContext) -> None:
        calls[ctx.event_row_id] += 1
        # A write in the processing transaction: kept only by the attempt that succeeds.
        record(ctx.session, actor="test", action="consultation", subject_type="call",
               subject_id=str(ctx.call.id))  # fmt: skip
        if calls[ctx.event_row_id] < 3:
            raise RuntimeError("lookup backend unavailable: +447700900123")

    async with running(fast(settings)) as (app, http):
        pipeline_of(app).steps = [flaky]
        offered = lifecycle("c-retry", datetime.now(UTC) - timedelta(minutes=1))[0]
        assert (await post_signed(http, offered)).status_code == 202

        async def done() -> bool:
            return await count_rows(app, CallEventRow, CallEventRow.processed_at.is_not(None)) == 1

        await eventually(done, what="the event processed after two failures")
        async with app.state.resources.sessions() as session:
            row = (await session.scalars(select(CallEventRow))).one()
            audits = await session.scalar(select(func.count()).select_from(AuditLog))
    assert list(calls.values()) == [3]
    assert row.attempts == 3  # the inline attempt, then two claimed by the sweeper
    assert row.last_error is None and row.claimed_until is None
    assert audits == 1  # the failed attempts' writes were rolled back


async def test_failure_is_recorded_without_personal_data(settings: Settings) -> None:
    async def broken(ctx: StepContext) -> None:
        raise ValueError("caller +447700900123 not found")

    slow_retry = fast(settings, pipeline_retry_base_seconds=60, pipeline_retry_max_seconds=60)
    async with running(slow_retry) as (app, http):
        pipeline_of(app).steps = [broken]
        assert (
            await post_signed(http, lifecycle("c-err", datetime.now(UTC))[0])
        ).status_code == 202

        async def failed() -> bool:
            async with app.state.resources.sessions() as session:
                row = (await session.scalars(select(CallEventRow))).one()
            return row.last_error is not None

        await eventually(failed, what="the failure recorded")
        async with app.state.resources.sessions() as session:
            row = (await session.scalars(select(CallEventRow))).one()
    assert row.processed_at is None
    assert row.last_error == "ValueError"
    # The retry is scheduled (backoff), not immediate.
    assert row.claimed_until is not None and row.claimed_until > datetime.now(UTC) + timedelta(
        seconds=30
    )


async def test_restart_picks_up_accepted_but_unprocessed_events(settings: Settings) -> None:
    start = datetime.now(UTC) - timedelta(minutes=3)
    bodies = lifecycle("c-r1", start) + lifecycle("c-r2", start, number="anonymous")
    # First process: accepts (stores) every event, then stops before processing any of them,
    # as if it crashed right after the commits.
    async with running(fast(settings)) as (app, http):
        pipeline = pipeline_of(app)
        await pipeline.stop()
        stop_processing(app)
        for body in bodies:
            assert (await post_signed(http, body)).status_code == 202
        assert await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 8

    seen: list[tuple[str, str]] = []

    async def recorder(ctx: StepContext) -> None:
        seen.append((ctx.event.call_id, ctx.event.type.value))

    # Second process: its sweeper finds them once their lease has run out.
    async with running(fast(settings)) as (app, _http):
        pipeline_of(app).steps = [recorder]

        async def all_done() -> bool:
            return await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 0

        await eventually(all_done, what="the backlog processed after restart")
    assert sorted(seen) == sorted((b["call_id"], b["type"]) for b in bodies)
    # In order per call (arrival order = id order here).
    for call_id in ("c-r1", "c-r2"):
        assert [t for c, t in seen if c == call_id] == ["offered", "ringing", "answered", "ended"]


async def test_concurrent_sweepers_process_each_event_once(settings: Settings) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    async with running(fast(settings)) as (app, http):
        await pipeline_of(app).stop()
        stop_processing(app)
        for i in range(15):
            for body in lifecycle(f"c-s{i}", start + timedelta(seconds=i)):
                assert (await post_signed(http, body)).status_code == 202
    engine = create_engine(settings)
    async with engine.begin() as conn:  # every lease over: all due now
        await conn.execute(update(CallEventRow).values(claimed_until=None))

    processed: Counter[int] = Counter()

    async def count_step(ctx: StepContext) -> None:
        processed[ctx.event_row_id] += 1
        await asyncio.sleep(0)  # let the other sweeper interleave

    # Two sweepers with their own engines and connection pools, as two workers have.
    pipelines = []
    engines = []
    rules = load_configured(None)
    qa_form = qa_forms.parse_file(qa_forms.SHIPPED_FORM, "shipped")
    for _ in range(2):
        eng = create_engine(settings)
        engines.append(eng)
        resources = Resources(
            settings,
            eng,
            create_sessionmaker(eng),
            create_cache(settings),
            rules=rules,
            qa_form=qa_form,
            broker=create_broker(settings),
        )
        pipelines.append(Pipeline(resources, [count_step], lease_seconds=30, batch=7))

    async def sweep_all(p: Pipeline) -> None:
        while await p.sweep_once():
            pass

    await asyncio.gather(*(sweep_all(p) for p in pipelines))
    for eng in engines:
        await eng.dispose()
    async with engine.connect() as conn:
        left = await conn.scalar(
            select(func.count())
            .select_from(CallEventRow)
            .where(CallEventRow.processed_at.is_(None))
        )
    await engine.dispose()
    assert left == 0
    assert len(processed) == 60
    assert set(processed.values()) == {1}
