"""Acceptance 2 through the real ingest: shuffled, duplicated, concurrent signed posts of many
calls end, in the database, in the state the pure in-order fold gives. Both backends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.calls import lifecycle
from app.calls.models import Call, CallEventRow
from tests.calls.strategies import arrivals, scenarios
from tests.calls.test_lifecycle import facts
from tests.telephony.support import post_signed


def _draw_examples(n: int) -> list[tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]]:
    """Hypothesis draws the scenarios (a modest number: each is posted over HTTP)."""
    drawn: list[tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]] = []

    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        calls = data.draw(scenarios(prefix=f"h{uuid.uuid4().hex[:6]}-", max_calls=6))
        drawn.append((calls, data.draw(arrivals(calls))))

    collect()
    return drawn


async def test_http_ingest_any_order_matches_in_order_state(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    examples = _draw_examples(12)
    assert len(examples) >= 5
    limit = asyncio.Semaphore(8)

    async def post(body: dict[str, Any]) -> int:
        async with limit:
            return (await post_signed(client, body)).status_code

    expected: dict[str, lifecycle.CallState] = {}
    distinct: set[str] = set()
    for calls, arriving in examples:
        for call in calls:
            expected[call[0]["call_id"]] = lifecycle.fold(facts(call))
            distinct.update(e["event_id"] for e in call)
        statuses = await asyncio.gather(*(post(b) for b in arriving))
        assert set(statuses) <= {200, 202}, statuses

    async with app.state.resources.sessions() as session:
        rows = {c.external_id: c for c in (await session.scalars(select(Call))).all()}
        stored = await session.scalar(select(func.count()).select_from(CallEventRow))
    assert stored == len(distinct)  # every event stored, once
    assert set(rows) == set(expected)
    for call_id, want in expected.items():
        got = rows[call_id]
        assert (got.state, got.caller_e164, got.presentation, got.called, got.queue) == (
            want.state, want.caller_e164, want.presentation, want.called, want.queue,
        ), call_id  # fmt: skip
        assert (got.handler_id, tuple(got.handlers), got.end_cause) == (
            want.handler_id, want.handlers, want.end_cause,
        ), call_id  # fmt: skip
        assert (got.offered_at, got.ringing_at, got.answered_at, got.ended_at) == (
            want.offered_at, want.ringing_at, want.answered_at, want.ended_at,
        ), call_id  # fmt: skip
