"""The express path (app.calls.express, issue 19): an event of a stored call that changes only
its state and what is published goes in two statements and no transaction, with the same
outcome, rows and frames as the locked path; whenever the call moved on between the two
statements, nothing of the express write is kept and the locked path takes the event."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from app.auth.models import Role
from app.calls import express
from app.calls import repository as repo
from app.calls.grouping import GroupCommit
from app.calls.models import Call, CallEventRow
from app.config import Settings
from app.db_direct import autocommit
from app.history.models import Alert, AlertAcknowledgement
from app.realtime.models import OutboxMessage
from app.realtime.steps import RealtimeStep
from app.resources import Resources
from app.telephony.events import CallEvent
from tests.calls.test_pipeline import fast, pipeline_of, running
from tests.conftest import MakeStaff
from tests.realtime.test_outbox import _drain, lifecycle_frames
from tests.support.servers import eventually, waiting_for_a_lock
from tests.telephony.support import lifecycle, post_signed

_START = datetime.now(UTC) - timedelta(minutes=1)


async def _events(resources: Resources, external_id: str) -> list[CallEventRow]:
    async with resources.sessions() as session:
        found = await session.scalars(
            select(CallEventRow)
            .join(Call, Call.id == CallEventRow.call_id)
            .where(Call.external_id == external_id)
            .order_by(CallEventRow.id)
        )
        return list(found.all())


async def _touch(resources: Resources, external_id: str) -> None:
    """Another writer changes the call (a handler's qualifier, the sweeper, another worker)."""
    async with resources.sessions() as session, session.begin():
        await session.execute(
            text("UPDATE call SET updated_at = now() WHERE external_id = :e"), {"e": external_id}
        )


async def _call(resources: Resources, external_id: str) -> Call:
    async with resources.sessions() as session:
        call = await session.scalar(select(Call).where(Call.external_id == external_id))
        assert call is not None
        return call


async def test_a_ringing_of_a_stored_call_goes_express_with_the_locked_paths_outcome(
    settings: Settings, backend: str
) -> None:
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        handler = await resources.broker.subscribe("handler:H1001", maxsize=100)
        supervisors = await resources.broker.subscribe("supervisors", maxsize=100)
        offered, ringing, answered, ended = lifecycle("ex-1", _START)
        express = backend == "production"  # SQLite has no such path
        assert (await post_signed(http, offered)).status_code == 202
        # A new call of a caller the history does not hold: created the express way too.
        assert pipeline.expressed == (1 if express else 0)
        answer = await post_signed(http, ringing)
        assert answer.status_code == 202
        assert answer.json()["state"] == "ringing"
        assert (await post_signed(http, answered)).status_code == 202
        assert pipeline.expressed == (3 if express else 0)
        assert (await post_signed(http, ended)).status_code == 202  # the write-back: locked
        assert pipeline.expressed == (3 if express else 0)

        _seen, desk = await lifecycle_frames(supervisors, handler)
        assert desk[0]["data"]["context"] is not None  # the context the offered stored
        assert desk[0]["data"]["alerts"] == []
        assert desk[0]["data"]["call"]["handler_id"] == "H1001"

        events = await _events(resources, "ex-1")
        assert [(e.type, e.state_before, e.state_after) for e in events] == [
            ("offered", None, "offered"), ("ringing", "offered", "ringing"),
            ("answered", "ringing", "answered"), ("ended", "answered", "ended"),
        ]  # fmt: skip
        assert all(e.processed_at is not None and e.claimed_until is None for e in events)
        call = await _call(resources, "ex-1")
        assert answer.json()["call_id"] == call.id
        assert (call.state, call.frame_seq, call.handler_id) == ("ended", 4, "H1001")
        assert call.ringing_at is not None and call.answered_at is not None
        async with resources.sessions() as session:
            rows = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.call_id == call.id)
                    .order_by(OutboxMessage.id)
                )
            ).all()
        assert [(r.type, r.seq) for r in rows] == [
            ("call.offered", 1), ("call.ringing", 2), ("call.answered", 3), ("call.ended", 4)
        ]  # fmt: skip

        # A replay of an express event gets the original outcome, stored once.
        again = await post_signed(http, ringing)
        assert again.status_code == 200
        assert again.json() == answer.json()
        assert len(await _events(resources, "ex-1")) == 4


async def _ring_with_alert(
    http: Any,
    resources: Resources,
    external_id: str,
    acknowledged: bool = False,
    wait_ahead: bool = False,
) -> dict[str, Any]:
    """An offered, an alert added to its call (after the read taken ahead for its ringing,
    with `wait_ahead`), then the ringing: the handler's frame."""
    handler = await resources.broker.subscribe("handler:H1001", maxsize=100)
    offered, ringing = lifecycle(external_id, _START)[:2]
    assert (await post_signed(http, offered)).status_code == 202
    pipeline = resources.pipeline
    if wait_ahead and pipeline is not None and pipeline.ahead is not None:
        await _read_ahead_done(pipeline, external_id)
    call = await _call(resources, external_id)
    async with resources.sessions() as session, session.begin():
        alert = Alert(
            call_id=call.id, kind="repeat_victim", severity="high", title="Repeat victim",
            reasons=["three reports in 30 days"], evidence=[{"contact": "c-1"}], rule="test",
            tags=["victim"], evidence_lines=["a line"], raised_at=_RAISED,
        )  # fmt: skip
        session.add(alert)
        if acknowledged:
            alert.acknowledged_at, alert.acknowledged_by = _RAISED, "S1"
            await session.flush()
            session.add(AlertAcknowledgement(
                alert_id=alert.id, staff_id="S1", role="supervisor", acknowledged_at=_RAISED
            ))  # fmt: skip
    assert (await post_signed(http, ringing)).status_code == 202
    # The context the offered built raises an alert of its own for this caller: ours is last.
    (frame,) = await _drain(handler, 1)
    handler.close()
    return frame


_RAISED = datetime(2026, 11, 30, 9, 15, 7, 120500, tzinfo=UTC)


async def test_a_ringing_with_alerts_carries_them_as_the_locked_path_does(
    settings: Settings, backend: str
) -> None:
    """Express with the alerts it read; express from a read taken ahead that an alert added
    since makes stale (the digest of the reads no longer holds: the locked path takes it);
    and the locked path: the same frame each way."""
    postgres = backend == "production"
    frames: dict[str, dict[str, Any]] = {}
    for mode in ("express", "stale read ahead", "locked"):
        async with running(fast(settings, telephony_express=mode != "locked")) as (app, http):
            pipeline = pipeline_of(app)
            if mode == "express":
                pipeline.ahead = None  # the ringing reads for itself, after the alert
            frames[mode] = await _ring_with_alert(
                http, app.state.resources, f"ex-2-{mode}", wait_ahead=mode != "locked"
            )
            counts = (pipeline.expressed, pipeline.express_fallbacks)
            if not postgres:
                assert counts == (0, 0)
            else:
                # The offered went express too (the history holds nothing on the caller).
                assert counts == {"express": (2, 0), "stale read ahead": (1, 1)}.get(mode, (0, 0))

    def shown(frame: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in a.items() if k != "alert_id"} for a in frame["data"]["alerts"]]

    assert shown(frames["express"]) == shown(frames["stale read ahead"]) == shown(frames["locked"])
    mine = shown(frames["express"])[-1]
    assert (mine["title"], mine["raised_at"], mine["evidence_lines"], mine["acknowledgements"]) == (
        "Repeat victim", _RAISED.isoformat(), ["a line"], []
    )  # fmt: skip


async def test_an_acknowledged_alert_or_no_stored_context_takes_the_locked_path(
    settings: Settings, backend: str
) -> None:
    postgres = backend == "production"
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        # Who acknowledged an alert is read in full on the locked path.
        frame = await _ring_with_alert(http, resources, "ex-3", acknowledged=True)
        counts = (pipeline.expressed, pipeline.express_fallbacks)
        assert counts == ((1, 1) if postgres else (0, 0))  # its offered went express
        (acked,) = [a for a in frame["data"]["alerts"] if a["title"] == "Repeat victim"]
        assert [a["staff_id"] for a in acked["acknowledgements"]] == ["S1"]

        # A ringing that comes first (no offered): nothing stored to go on.
        first = lifecycle("ex-3b", _START)[1]
        assert (await post_signed(http, first)).status_code == 202
        counts = (pipeline.expressed, pipeline.express_fallbacks)
        assert counts == ((1, 2) if postgres else (0, 0))
        assert [e.type for e in await _events(resources, "ex-3b")] == ["ringing"]


async def test_telephony_express_off_takes_every_event_the_locked_way(settings: Settings) -> None:
    async with running(fast(settings, telephony_express=False)) as (app, http):
        pipeline = pipeline_of(app)
        assert pipeline.express_types == frozenset()
        for body in lifecycle("ex-4", _START):
            assert (await post_signed(http, body)).status_code == 202
        assert pipeline.expressed == 0
        assert pipeline.processed == 4


async def test_only_postgresql_has_the_express_path(settings: Settings, backend: str) -> None:
    async with running(fast(settings)) as (app, _http):
        types = pipeline_of(app).express_types
        new_call = pipeline_of(app).express_new_types
    if backend == "production":
        assert types == {"ringing", "answered", "transferred"}
        assert new_call == {"offered"}
    else:
        assert types == new_call == frozenset()


async def test_an_event_waiting_behind_one_of_its_call_does_not_overtake_it(
    settings: Settings, backend: str
) -> None:
    """An earlier event of the call waits in a group (or is in its transaction): a later one
    waits its turn rather than going express past it."""
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        grouped = resources.ingest
        assert isinstance(grouped, GroupCommit)
        pipeline = pipeline_of(app)
        offered, ringing = lifecycle("ex-5", _START)[:2]
        assert (await post_signed(http, offered)).status_code == 202
        grouped._queued[("canonical", "ex-5")] = 1  # as while an earlier event of it waits
        assert (await post_signed(http, ringing)).status_code == 202
        counts = (pipeline.expressed, pipeline.express_fallbacks)
        assert counts == ((1, 0) if backend == "production" else (0, 0))  # the offered only
        assert grouped._queued == {("canonical", "ex-5"): 1}  # its own entry came and went


# --- the guard, statement by statement (PostgreSQL) ---------------------------------------


async def _planned(resources: Resources, raw: dict[str, Any]) -> tuple[Any, ...]:
    """The express read and plan of `raw`, as `express.accept` makes them."""
    event = CallEvent.model_validate(raw)
    pipeline = resources.pipeline
    assert pipeline is not None
    async with autocommit(resources.engine) as direct:
        assert direct is not None
        row = await express._read(direct, resources.engine.dialect, "canonical", event.call_id)
    assert row is not None
    before = repo.state_of(row)
    planned = express._plan(resources, pipeline.steps, row, event, before)
    assert planned is not None
    ctx, after = planned
    return event, row, before, ctx, after


async def _write(resources: Resources, planned: tuple[Any, ...]) -> Any:
    event, row, before, ctx, after = planned
    async with autocommit(resources.engine) as direct:
        assert direct is not None
        return await express._write(
            direct, resources.engine.dialect, ctx, "canonical", event, b"{}", row, before, after
        )


@pytest.mark.production_only  # the express path is PostgreSQL's
async def test_a_call_changed_between_the_read_and_the_write_keeps_nothing_of_the_write(
    settings: Settings,
) -> None:
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        offered, ringing = lifecycle("ex-6", _START)[:2]
        assert (await post_signed(http, offered)).status_code == 202
        planned = await _planned(resources, ringing)
        before = await _call(resources, "ex-6")
        # Another writer (a handler's qualifier, the sweeper, another worker) meanwhile.
        await _touch(resources, "ex-6")
        assert await _write(resources, planned) is None
        after = await _call(resources, "ex-6")
        assert (after.state, after.frame_seq) == (before.state, 1) == ("offered", 1)
        assert [e.type for e in await _events(resources, "ex-6")] == ["offered"]
        async with resources.sessions() as session:
            count = await session.scalar(
                text("SELECT count(*) FROM outbox_message WHERE call_id = :c"), {"c": after.id}
            )
        assert count == 1  # the offered's only

        # Sent again, it is read afresh: stored once, numbered next.
        assert (await post_signed(http, ringing)).status_code == 202
        done = await _call(resources, "ex-6")
        assert (done.state, done.frame_seq) == ("ringing", 2)


@pytest.mark.production_only
async def test_a_write_that_waited_for_the_calls_lock_finds_it_changed_and_writes_nothing(
    settings: Settings,
) -> None:
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        offered, ringing = lifecycle("ex-7", _START)[:2]
        assert (await post_signed(http, offered)).status_code == 202
        planned = await _planned(resources, ringing)
        async with resources.sessions() as holder:
            await holder.begin()
            # A transaction holding the call (as the locked path does) that writes it.
            await holder.execute(
                text("UPDATE call SET updated_at = now() WHERE external_id = 'ex-7'")
            )
            waiting = asyncio.create_task(_write(resources, planned))

            await eventually(
                lambda: waiting_for_a_lock(resources.engine),
                what="the express write waiting for the call's lock",
            )
            await holder.commit()
        # Re-checked on the row as committed: its version is not the one read.
        assert await asyncio.wait_for(waiting, 30) is None
        assert [e.type for e in await _events(resources, "ex-7")] == ["offered"]
        assert (await _call(resources, "ex-7")).frame_seq == 1


@pytest.mark.production_only
async def test_an_event_stored_meanwhile_is_not_stored_twice(settings: Settings) -> None:
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        offered, ringing = lifecycle("ex-8", _START)[:2]
        assert (await post_signed(http, offered)).status_code == 202
        planned = await _planned(resources, ringing)
        # The same event stored on another call meanwhile (an event id reused by the
        # platform): the insert conflicts, so nothing of the write is kept.
        other = lifecycle("ex-8b", _START)[0]
        other["event_id"] = ringing["event_id"]
        assert (await post_signed(http, other)).status_code == 202
        call = await _call(resources, "ex-8")
        assert await _write(resources, planned) is None
        again = await _call(resources, "ex-8")
        assert (again.state, again.frame_seq) == (call.state, call.frame_seq) == ("offered", 1)
        assert [e.type for e in await _events(resources, "ex-8")] == ["offered"]


@pytest.mark.production_only
async def test_an_alert_acknowledged_between_the_read_and_the_write_keeps_nothing_of_the_write(
    settings: Settings, make_staff: MakeStaff
) -> None:
    """What the express read of a call's alerts shows is guarded by the call's version: an
    acknowledgement publishes `alert.acknowledged` for the call, which takes the call's next
    message number, so the call's row changes with it."""
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        handler = await resources.broker.subscribe("handler:H1001", maxsize=100)
        offered, ringing = lifecycle("ex-9", _START)[:2]
        assert (await post_signed(http, offered)).status_code == 202
        call = await _call(resources, "ex-9")
        async with resources.sessions() as session, session.begin():
            alert = Alert(
                call_id=call.id, kind="repeat_victim", severity="high", title="Repeat victim",
                reasons=[], evidence=[], rule="test", raised_at=_RAISED,
            )  # fmt: skip
            session.add(alert)
        planned = await _planned(resources, ringing)
        token = await make_staff("S9", Role.supervisor)
        acked = await http.post(
            f"/api/v1/alerts/{alert.id}/ack", headers={"Authorization": f"Bearer {token}"}
        )
        assert acked.status_code == 200, acked.text
        assert await _write(resources, planned) is None
        assert [e.type for e in await _events(resources, "ex-9")] == ["offered"]

        assert (await post_signed(http, ringing)).status_code == 202
        (frame,) = await _drain(handler, 1)
        (shown,) = [a for a in frame["data"]["alerts"] if a["title"] == "Repeat victim"]
        assert [a["staff_id"] for a in shown["acknowledgements"]] == ["S9"]


@pytest.mark.production_only
async def test_a_step_whose_plan_fails_hands_the_event_to_the_locked_path_and_logs_no_values(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: RealtimeStep, ctx: object) -> bool:
        raise ValueError("no plan for +447700900123")

    monkeypatch.setattr(RealtimeStep, "express", broken)
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        offered, ringing = lifecycle("ex-10", _START)[:2]
        assert (await post_signed(http, offered)).status_code == 202
        with caplog.at_level("WARNING", logger="app.calls.express"):
            assert (await post_signed(http, ringing)).status_code == 202
        assert (pipeline.expressed, pipeline.express_fallbacks) == (0, 2)
        events = await _events(resources, "ex-10")
        assert [(e.type, e.processed_at is not None) for e in events] == [
            ("offered", True), ("ringing", True)
        ]  # fmt: skip
    lines = [r for r in caplog.records if r.name == "app.calls.express"]
    assert len(lines) == 2  # the offered's and the ringing's
    for line in lines:
        assert line.getMessage() == "express planning failed; the locked path takes the event"
        assert getattr(line, "error", None) == "ValueError"
    assert "447700" not in caplog.text


async def _read_ahead_done(pipeline: Any, external_id: str) -> None:
    ahead = pipeline.ahead
    assert ahead is not None
    held = ahead._reads[("canonical", external_id)]
    await asyncio.wait_for(asyncio.shield(held[1]), 10)


@pytest.mark.production_only
async def test_a_ringing_uses_the_read_taken_when_its_offered_was_stored(
    settings: Settings,
) -> None:
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        ahead = pipeline.ahead
        assert ahead is not None
        offered, ringing, answered = lifecycle("ex-11", _START)[:3]
        assert (await post_signed(http, offered)).status_code == 202
        await _read_ahead_done(pipeline, "ex-11")
        assert (await post_signed(http, ringing)).status_code == 202
        assert (ahead.used, pipeline.expressed) == (1, 2)  # the offered, the ringing
        # The answered reads for itself (nothing is read ahead after a ringing).
        assert (await post_signed(http, answered)).status_code == 202
        assert (ahead.used, pipeline.expressed) == (1, 3)
        assert ahead._reads == {}
        call = await _call(resources, "ex-11")
        assert (call.state, call.frame_seq) == ("answered", 3)


@pytest.mark.production_only
async def test_a_read_taken_ahead_that_the_call_outlived_writes_nothing(
    settings: Settings,
) -> None:
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        handler = await resources.broker.subscribe("handler:H1001", maxsize=100)
        offered, ringing = lifecycle("ex-12", _START)[:2]
        assert (await post_signed(http, offered)).status_code == 202
        await _read_ahead_done(pipeline, "ex-12")
        # The call changes after the read was taken (a handler's write, another worker).
        await _touch(resources, "ex-12")
        assert (await post_signed(http, ringing)).status_code == 202
        assert (pipeline.expressed, pipeline.express_fallbacks) == (1, 1)  # the offered went
        (frame,) = await _drain(handler, 1)
        assert (frame["type"], frame["data"]["seq"]) == ("call.ringing", 2)
        assert [e.type for e in await _events(resources, "ex-12")] == ["offered", "ringing"]
        assert (await _call(resources, "ex-12")).frame_seq == 2


async def _ahead_idle(ahead: express.Ahead) -> bool:
    return ahead._running == 0


async def test_reads_taken_ahead_are_bounded_and_used_once(settings: Settings) -> None:
    async with running(fast(settings)) as (app, _http):
        resources: Resources = app.state.resources
        ahead = express.Ahead(size=2, seconds=30.0, concurrent=10)
        for n in range(3):
            ahead.take_ahead(resources, "canonical", f"none-{n}")
        assert list(ahead._reads) == [("canonical", "none-1"), ("canonical", "none-2")]
        assert await ahead.take("canonical", "none-0") is None  # dropped: the oldest
        assert await ahead.take("canonical", "none-1") is None  # no such call: nothing read
        assert list(ahead._reads) == [("canonical", "none-2")]
        # Past its time a read is dropped when the next is taken.
        key = ("canonical", "none-2")
        ahead._reads[key] = (time.monotonic() - ahead.seconds - 1, ahead._reads[key][1])
        ahead.take_ahead(resources, "canonical", "none-4")
        assert list(ahead._reads) == [("canonical", "none-4")]
        # Every read counted down once it ended, the one dropped before it started too.
        await eventually(lambda: _ahead_idle(ahead), what="the reads taken ahead to end")
        busy = express.Ahead(concurrent=0)
        busy.take_ahead(resources, "canonical", "none-3")
        assert busy._reads == {}  # too many reads running: none taken
        await ahead.close()
