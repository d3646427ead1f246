"""The batch webhook: many signed canonical events per request, each accepted, replayed or
refused on its own, the accepted ones committed before the answer and processed as single
events are (same final states). On both backends."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.audit.models import AuditLog
from app.audit.service import record
from app.calls import repository as repo
from app.calls.models import Call, CallEventRow
from app.calls.step import StepContext
from app.config import Settings
from tests.calls.test_pipeline import fast, pipeline_of, running
from tests.support.servers import eventually
from tests.telephony.support import EVENTS_URL, count_rows, event, lifecycle, post_signed

BATCH_URL = EVENTS_URL + "/batch"
FINAL = (
    "state", "caller_e164", "presentation", "called", "queue", "handler_id", "handlers",
    "offered_at", "ringing_at", "answered_at", "ended_at", "end_cause",
)  # fmt: skip


async def post_batch(http: httpx.AsyncClient, events: list[Any], **kw: Any) -> httpx.Response:
    return await post_signed(http, json.dumps(events).encode(), url=BATCH_URL, **kw)


async def final_states(app: Any, prefix: str) -> dict[str, tuple[Any, ...]]:
    async with app.state.resources.sessions() as session:
        calls = (
            await session.scalars(select(Call).where(Call.external_id.like(prefix + "%")))
        ).all()
    return {
        c.external_id.removeprefix(prefix): tuple(getattr(c, name) for name in FINAL) for c in calls
    }


def calls_of(prefix: str, start: datetime) -> list[list[dict[str, Any]]]:
    numbers = ["07700 900123", "anonymous", "+44 (0)20 7946 0018"]
    return [
        lifecycle(f"{prefix}{n}", start + timedelta(seconds=n), numbers[n % 3], f"H100{n % 2}")
        for n in range(6)
    ]


async def test_batch_is_stored_processed_and_ends_as_single_posts_do(settings: Settings) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    async with running(settings) as (app, http):
        # The same calls twice: one batch (shuffled, so calls interleave and arrive out of
        # order), and one signed POST per event in order.
        batched = [e for call in calls_of("b-", start) for e in call]
        random.Random(7).shuffle(batched)
        response = await post_batch(http, batched)
        for call in calls_of("s-", start):
            for e in call:
                assert (await post_signed(http, e)).status_code == 202
        # Answered means committed: another session sees every event of the batch.
        assert await count_rows(app, CallEventRow, CallEventRow.call_id.in_(
            select(Call.id).where(Call.external_id.like("b-%")))) == 24  # fmt: skip
        assert await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 0
        batch_states = await final_states(app, "b-")
        single_states = await final_states(app, "s-")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["replayed"], body["invalid"]) == (24, 0, 0)
    assert [r["index"] for r in body["results"]] == list(range(24))
    for sent, result in zip(batched, body["results"], strict=True):
        assert result["status"] == "accepted" and result["event_id"] == sent["event_id"]
    assert len(batch_states) == 6
    assert batch_states == single_states
    assert {s[0] for s in batch_states.values()} == {"ended"}


async def test_replays_inside_and_across_batches_keep_the_original_outcome(
    settings: Settings,
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=2)
    offered, ringing, answered, ended = lifecycle("r-1", start)
    async with running(settings) as (app, http):
        first = (await post_batch(http, [offered, ringing, offered])).json()
        second = (await post_batch(http, [ringing, answered, ended, answered])).json()
        # And a single post of an event first stored by a batch.
        single = await post_signed(http, offered)
        assert await count_rows(app, CallEventRow) == 4
        assert await count_rows(app, Call) == 1
        assert await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 0
    assert [r["status"] for r in first["results"]] == ["accepted", "accepted", "replay"]
    assert first["results"][2]["state"] == "offered"  # the original outcome, not "ringing"
    assert first["results"][2]["call_id"] == first["results"][0]["call_id"]
    assert [r["status"] for r in second["results"]] == ["replay", "accepted", "accepted", "replay"]
    assert second["results"][0]["state"] == "ringing"
    assert second["results"][3]["state"] == "answered"
    assert (second["accepted"], second["replayed"]) == (2, 2)
    assert single.status_code == 200 and single.json()["state"] == "offered"


async def test_bad_events_are_refused_alone_without_their_values(settings: Settings) -> None:
    start = datetime.now(UTC) - timedelta(minutes=2)
    good = lifecycle("m-1", start)[:2]
    unknown_type = event("m-2", "exploded", caller={"number": "07700 900999"})
    no_call_id = {k: v for k, v in event("m-3", "offered").items() if k != "call_id"}
    async with running(settings) as (app, http):
        response = await post_batch(
            http, [good[0], unknown_type, "07700 900888", no_call_id, good[1]]
        )
        assert await count_rows(app, CallEventRow) == 2
        assert await count_rows(app, Call) == 1
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted", "invalid", "invalid", "invalid", "accepted",
    ]  # fmt: skip
    assert (body["accepted"], body["replayed"], body["invalid"]) == (2, 0, 3)
    refused = body["results"][1]
    assert refused["error"]["code"] == "invalid_event"
    assert any(d["loc"] == ["type"] for d in refused["error"]["details"])
    assert any(d["loc"] == ["call_id"] for d in body["results"][3]["error"]["details"])
    assert "900999" not in response.text and "900888" not in response.text


async def test_oversize_malformed_and_unsigned_batches_store_nothing(settings: Settings) -> None:
    small = Settings(**{**settings.model_dump(), "telephony_max_batch": 3,
                        "telephony_max_batch_body": 4096, "telephony_max_body": 1024})  # fmt: skip
    events = lifecycle("o-1", datetime.now(UTC) - timedelta(minutes=2))
    async with running(small) as (app, http):
        too_many = await post_batch(http, events)  # 4 > 3
        big = [dict(events[0], pad="y" * 300, event_id=f"o-big-{i}") for i in range(3)]
        padded = [dict(e, pad="x" * 1500) for e in big]  # unknown fields: ignored, but bytes
        too_big = await post_batch(http, padded)
        unsigned = await http.post(BATCH_URL, content=json.dumps(events[:3]).encode())
        wrong_key = await post_batch(http, events[:3], secret=b"not-the-secret")
        not_json = await post_signed(http, b"[{", url=BATCH_URL)
        not_array = await post_signed(http, json.dumps(events[0]).encode(), url=BATCH_URL)
        empty = await post_batch(http, [])
        not_utf8 = await post_signed(http, b'["\xff"]', url=BATCH_URL)
        deep = await post_signed(http, b"[" * 2000 + b"]" * 2000, url=BATCH_URL)
        assert await count_rows(app, CallEventRow) == 0
        # Over the single-event body limit (1 KiB) but within the batch's: accepted.
        fits = await post_batch(http, big)
        assert await count_rows(app, CallEventRow) == 3
    assert len(json.dumps(big)) > 1024
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "payload_too_large"
    assert too_big.status_code == 413
    assert unsigned.status_code == 401 and wrong_key.status_code == 401
    assert wrong_key.json()["error"]["details"]
    assert (not_json.status_code, not_array.status_code, empty.status_code) == (400, 400, 422)
    assert (not_utf8.status_code, deep.status_code) == (400, 400)
    for response in (not_json, not_array, empty, not_utf8, deep):
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert fits.status_code == 200 and fits.json()["accepted"] == 3


async def test_failing_step_keeps_every_batch_event_and_retries_them(settings: Settings) -> None:
    attempts: Counter[str] = Counter()

    async def flaky(ctx: StepContext) -> None:
        attempts[ctx.event.event_id] += 1
        failing = ctx.event.call_id == "f-1" and ctx.event.type.value == "answered"
        if failing and attempts[ctx.event.event_id] == 1:
            raise RuntimeError("lookup backend unavailable: +447700900123")
        # A write in the processing transaction: kept only by the attempt that commits.
        record(ctx.session, actor="test", action="consultation", subject_type="call",
               subject_id=f"{ctx.event.call_id}/{ctx.event.type.value}")  # fmt: skip

    start = datetime.now(UTC) - timedelta(minutes=2)
    batch = lifecycle("f-1", start) + lifecycle("f-2", start + timedelta(seconds=1))
    async with running(fast(settings)) as (app, http):
        pipeline_of(app).steps = [flaky]
        response = await post_batch(http, batch)
        # Accepted means durable: all eight stored before the answer, even though the batch's
        # processing failed and was rolled back.
        assert await count_rows(app, CallEventRow) == 8

        async def done() -> bool:
            return await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 0

        await eventually(done, what="the batch processed by the sweeper")
        states = await final_states(app, "f-")
        async with app.state.resources.sessions() as session:
            kept = (await session.scalars(select(AuditLog.subject_id).order_by(AuditLog.id))).all()
    assert response.status_code == 200 and response.json()["accepted"] == 8
    assert states["1"][0] == states["2"][0] == "ended"
    # Each call's events processed once each (the failed attempt's work rolled back), in order.
    for call in ("f-1", "f-2"):
        types = [k.split("/")[1] for k in kept if k.startswith(call + "/")]
        assert types == ["offered", "ringing", "answered", "ended"]
    # The failed pass ran f-1's offered, ringing, answered (then rolled back); then all eight.
    assert sum(attempts.values()) == 3 + 8


async def test_an_event_id_stored_by_a_racing_request_is_a_replay_and_the_rest_kept(
    settings: Settings, monkeypatch: Any
) -> None:
    """A batch reads which of its events are stored already, then inserts the others. An
    event id the platform reused on another call, stored by a concurrent request between the
    two, makes the insert skip it: the batch is then taken one event at a time, and the event
    is a replay of the other call's, as if it had been stored first."""
    start = datetime.now(UTC) - timedelta(minutes=2)
    batch = lifecycle("x-1", start)
    rival = dict(event("x-other", "offered", start, caller={"number": "07700 900777"}),
                 event_id=batch[1]["event_id"])  # fmt: skip
    raced: list[int] = []
    async with running(settings) as (app, http):
        if settings.is_sqlite:
            # One writer at a time: nobody can store anything while the batch is writing, so
            # the rival can only come first (and the batch sees it stored).
            raced.append((await post_signed(http, rival)).status_code)
        else:
            read_stored = repo.existing_events

            async def racing(*args: Any) -> Any:
                found = await read_stored(*args)
                if not raced:  # the rival commits right after the batch has looked
                    raced.append((await post_signed(http, rival)).status_code)
                return found

            monkeypatch.setattr(repo, "existing_events", racing)
        response = await post_batch(http, batch)
        assert await count_rows(app, CallEventRow) == 4
        assert await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 0
        states = await final_states(app, "x-")
    assert raced == [202]
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted", "replay", "accepted", "accepted"]
    other = body["results"][1]
    assert other["call_id"] != body["results"][0]["call_id"] and other["state"] == "offered"
    assert states["1"][0] == "ended" and states["other"][0] == "offered"
