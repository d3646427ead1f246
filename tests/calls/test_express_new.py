"""A call's first event the express way (app.calls.express.accept_new, issue 19): an offered
creates its call, stores the event, the caller's context, alerts and audit rows and the
supervisors' message in one statement, with the same rows, answer and frames as the locked
path, whether the history holds nothing on the caller or knows them (alert ids taken ahead, a
block at a time); a database without the audit chain's head, a call that exists by then and
an event id stored already take the locked path, nothing of the express attempt written."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.audit import chain as audit_chain
from app.audit.models import AuditLog
from app.calls.grouping import GroupCommit
from app.calls.models import Call, CallEventRow
from app.config import Settings
from app.history import writes
from app.history.models import Alert, CallContext
from app.realtime.models import OutboxMessage
from app.resources import Resources
from tests.calls.test_pipeline import fast, pipeline_of, running
from tests.history.identify_support import seed
from tests.realtime.test_outbox import _drain
from tests.support.servers import eventually, waiting_for_a_lock
from tests.support.statements import statements_sent, without_introspection
from tests.telephony.support import event, lifecycle, post_signed

pytestmark = pytest.mark.production_only  # SQLite has no express path

_START = datetime.now(UTC) - timedelta(minutes=1)
_KNOWN = "07700 900501"  # Jo Demo (tests.history.identify_support): a person, contacts, markers


async def _stored(resources: Resources, external_id: str) -> dict[str, Any]:
    """What the offered left: the call, its events, its context, its messages, its audit."""
    async with resources.sessions() as session:
        call = await session.scalar(select(Call).where(Call.external_id == external_id))
        assert call is not None
        events = (
            await session.scalars(select(CallEventRow).where(CallEventRow.call_id == call.id))
        ).all()
        context = await session.get(CallContext, call.id)
        messages = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.call_id == call.id))
        ).all()
        audited = await session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.call_id == str(call.id))
        )
    return {
        "call": (
            call.state, call.caller_e164, call.presentation, call.called, call.queue,
            call.offered_at, call.frame_seq, call.flagged, call.handlers, call.marks,
        ),
        "call_id": call.id,
        "events": [
            (e.type, e.state_before, e.state_after, e.processed_at is not None, e.claimed_until,
             e.attempts, e.canonical)
            for e in events
        ],
        "context": None if context is None else context.context,
        "messages": [(m.type, m.seq, list(m.channels)) for m in messages],
        "audited": audited,
    }  # fmt: skip


def _named(found: Any, offered: dict[str, Any]) -> Any:
    """`found` with the offered's own ids (its event's, its call's) in place of the ids."""
    if isinstance(found, dict):
        return {key: _named(value, offered) for key, value in found.items()}
    if isinstance(found, list | tuple):
        return type(found)(_named(value, offered) for value in found)
    if found == offered["event_id"]:
        return "<event>"
    if found == offered["call_id"]:
        return "<call>"
    return found


def _offered(external_id: str, presentation: str = "allowed", number: str = "07700 900777") -> Any:
    caller = {"number": number, "presentation": presentation}
    return event(external_id, "offered", _START, caller=caller, called="999", queue="emergency")


async def test_an_offered_of_a_caller_the_history_does_not_hold_goes_express_as_the_locked_path(
    settings: Settings,
) -> None:
    seen: dict[bool, dict[str, Any]] = {}
    for on in (True, False):
        external_id = f"new-1-{on}"
        async with running(fast(settings, telephony_express=on)) as (app, http):
            resources: Resources = app.state.resources
            pipeline = pipeline_of(app)
            supervisors = await resources.broker.subscribe("supervisors", maxsize=100)
            offered = _offered(external_id)
            answer = await post_signed(http, offered)
            assert answer.status_code == 202
            assert (pipeline.expressed, pipeline.express_fallbacks) == ((1, 0) if on else (0, 0))
            stored = _named(await _stored(resources, external_id), offered)
            assert answer.json() == {
                "status": "accepted", "call_id": stored["call_id"], "state": "offered"
            }  # fmt: skip
            (frame,) = await _drain(supervisors, 1)
            assert (frame["type"], frame["call_id"], frame["data"]["seq"]) == (
                "call.offered", stored["call_id"], 1
            )  # fmt: skip
            frame["data"]["call"].pop("id", None)
            stored["frame"] = _named(frame["data"], offered)
            seen[on] = stored
    express, locked = seen[True], seen[False]
    assert express["call"] == locked["call"]
    assert express["events"] == locked["events"]
    for stored in (express, locked):
        assert stored["context"].pop("looked_up_at") is not None  # when each was looked up
    assert express["context"] == locked["context"]
    assert express["messages"] == locked["messages"] == [("call.offered", 1, ["supervisors"])]
    assert express["audited"] == locked["audited"] == 0  # no record of anybody was shown
    for frame in (express["frame"], locked["frame"]):
        frame.pop("call_id", None)
    assert express["frame"] == locked["frame"]


async def test_the_new_calls_id_is_selected_with_its_callers_read(settings: Settings) -> None:
    """An offered that goes express sends its id's nextval with the lookup's first read, not
    as a statement of its own (a round trip per new call)."""
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        async with statements_sent(resources.engine) as sent:
            answer = await post_signed(http, _offered("new-id-1"))
            logged = [query for query in await sent() if "call_id_seq" in query]
        assert answer.status_code == 202
        assert pipeline_of(app).expressed == 1
        (taken,) = logged
        assert "contact" in taken and "history_version" in taken  # the lookup's first read
        stored = await _stored(resources, "new-id-1")
        async with resources.sessions() as session:
            last = await session.scalar(text("SELECT last_value FROM call_id_seq"))
        assert answer.json()["call_id"] == stored["call_id"] == last


async def _alerts_and_audit(resources: Resources, call_id: int) -> dict[str, Any]:
    """The call's alerts (id order) and audit rows (chain order), and whether every row of
    the chain hashes as `digest` says."""
    async with resources.sessions() as session:
        alerts = (
            await session.scalars(select(Alert).where(Alert.call_id == call_id).order_by(Alert.id))
        ).all()
        audit = (
            await session.scalars(
                select(AuditLog).where(AuditLog.call_id == str(call_id)).order_by(AuditLog.seq)
            )
        ).all()
        chain = (await session.scalars(select(AuditLog).order_by(AuditLog.seq))).all()
    return {
        "ids": [a.id for a in alerts],
        "alerts": [
            (a.kind, a.severity, a.title, a.reasons, a.evidence, a.rule, a.tags,
             a.suggested_grade, a.category, a.evidence_lines, a.acknowledged_at)
            for a in alerts
        ],
        "audit": [
            (r.actor.replace(str(call_id), "<call>"), r.action, r.subject_type, r.subject_id,
             r.records)
            for r in audit
        ],
        "chained": all(
            audit_chain.digest(r.prev_hash, vars(r)) == r.hash
            and (before is None or r.prev_hash == before.hash)
            for before, r in zip([None, *chain], chain, strict=False)
        ),
    }  # fmt: skip


async def test_an_offered_of_a_caller_the_history_knows_goes_express_as_the_locked_path(
    settings: Settings,
) -> None:
    """A person's number (contacts, a partner with a high-risk DA marker): the lookup (cache,
    store), the alerts with their ids taken ahead, the call flagged, the consultation's audit
    rows chained, the context and the supervisors' message, all in the one statement that
    creates the call; the same rows and frames as the locked path's."""
    seen: dict[bool, dict[str, Any]] = {}
    for on in (True, False):
        external_id = f"new-k-{on}"
        async with running(fast(settings, telephony_express=on)) as (app, http):
            resources: Resources = app.state.resources
            pipeline = pipeline_of(app)
            if on:  # the history the second service reads too
                await seed(app)
            supervisors = await resources.broker.subscribe("supervisors", maxsize=100)
            offered = _offered(external_id, number=_KNOWN)
            answer = await post_signed(http, offered)
            assert answer.status_code == 202
            assert (pipeline.expressed, pipeline.express_fallbacks) == ((1, 0) if on else (0, 0))
            stored = _named(await _stored(resources, external_id), offered)
            kept = await _alerts_and_audit(resources, answer.json()["call_id"])
            assert kept["chained"]
            (frame,) = await _drain(supervisors, 1)
            # The frame names the alerts by the ids they were stored with.
            assert [a["alert_id"] for a in frame["data"]["alerts"]] == kept.pop("ids")
            for alert in frame["data"]["alerts"]:
                alert.pop("alert_id"), alert.pop("raised_at")
            frame["data"]["call"].pop("id", None)
            frame["data"].pop("call_id", None)
            stored.update(kept, frame=_named(frame["data"], offered))
            seen[on] = stored
    express, locked = seen[True], seen[False]
    assert express["call"][7] is True  # flagged: the DA marker's alert is high
    assert express["alerts"] and express["audit"]
    for stored in (express, locked):
        assert stored["context"].pop("looked_up_at") is not None
    for key in ("call", "events", "context", "messages", "audited", "alerts", "audit", "frame"):
        assert express[key] == locked[key], key


async def test_a_known_callers_lookup_goes_in_its_reads_and_one_write(settings: Settings) -> None:
    """The known caller's offered sends no BEGIN: the lookup's first read (with the call's
    id), the store's read of the caller's people (the cache is cold), a block of alert ids,
    and the write that stores everything; the next known caller's alerts take the block's
    next ids (no statement of their own)."""
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        await seed(app)
        async with statements_sent(resources.engine) as sent:
            answer = await post_signed(http, _offered("new-s-1", number=_KNOWN))
            statements = without_introspection(await sent())
        assert answer.status_code == 202
        assert pipeline_of(app).expressed == 1
        assert not [s for s in statements if s.strip().upper() in ("BEGIN", "COMMIT")]
        first, subjects, block, write = statements
        assert "call_id_seq" in first and "history_version" in first
        assert "person" in subjects and "marker" in subjects
        assert "alert_id_seq" in block and "generate_series" in block
        assert "INSERT INTO call " in write and "audit_rows" in write
        assert "INSERT INTO alert " in write and "INSERT INTO outbox_message" in write
        assert resources.alert_ids.statements == 1
        other = await post_signed(http, _offered("new-s-2", number="07700 900502"))  # Sam
        assert other.status_code == 202
        assert resources.alert_ids.statements == 1
        ids = [
            (await _alerts_and_audit(resources, a.json()["call_id"]))["ids"]
            for a in (answer, other)
        ]
        assert ids[0] and ids[1] and ids[1][0] == ids[0][-1] + 1


async def test_while_another_event_is_on_the_express_path_a_known_caller_is_grouped(
    settings: Settings,
) -> None:
    """Under load a known caller's lookup costs less in a group (callers share the cache's
    round trip and the store's statements): with another event on the express path, its
    offered declines after the first read and goes the locked way, while a caller the
    history does not hold (the first read is the whole lookup) still goes express."""
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        await seed(app)
        pipeline._express_slots -= 1  # another event's, held
        try:
            async with statements_sent(resources.engine) as sent:
                known = await post_signed(http, _offered("new-q-1", number=_KNOWN))
                statements = without_introspection(await sent())
            assert known.status_code == 202
            assert (pipeline.expressed, pipeline.express_fallbacks) == (0, 1)
            # The express attempt: the first read alone, then the locked path's create.
            created = next(n for n, q in enumerate(statements) if "WITH created AS" in q)
            declined = statements[:created]
            assert len(declined) == 1 and "history_version" in declined[0]
            assert resources.alert_ids.statements == 0
            unknown = await post_signed(http, _offered("new-q-2"))
            assert unknown.status_code == 202
            assert (pipeline.expressed, pipeline.express_fallbacks) == (1, 1)
        finally:
            pipeline._express_slots += 1
        stored = await _stored(resources, "new-q-1")
        assert stored["audited"] >= 1 and stored["call"][7] is True
        # Quiet again: the next known caller goes express.
        assert (await post_signed(http, _offered("new-q-3", number=_KNOWN))).status_code == 202
        assert (pipeline.expressed, pipeline.express_fallbacks) == (2, 1)


async def test_without_the_chains_head_a_known_caller_takes_the_locked_path(
    settings: Settings,
) -> None:
    """A database created without the audit chain's head row: the express statement writes
    nothing (not the call, not the event), the locked path stores the offered and creates the
    head, and later calls go express again. Calls of a number on nobody with contacts of its
    own (a consultation too) and of a withheld number (an alert) go express; the call ids
    the declined read took are gaps."""
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        await seed(app)
        async with resources.sessions() as session, session.begin():
            await session.execute(text("DELETE FROM audit_chain_head"))
            await writes.record_contact(
                session, contact_id="C-NUM-1", occurred_at=_START - timedelta(days=3),
                number="+447700900888", incident_type="burglary",
            )  # fmt: skip
        ids: list[int] = []
        for n, (number, presentation) in enumerate(
            ((_KNOWN, "allowed"), ("07700 900888", "allowed"), ("", "withheld"))
        ):
            external_id = f"new-2-{n}"
            answer = await post_signed(http, _offered(external_id, presentation, number))
            assert answer.status_code == 202
            ids.append(answer.json()["call_id"])
            assert (pipeline.expressed, pipeline.express_fallbacks) == (n, 1)
            stored = await _stored(resources, external_id)
            assert stored["context"] is not None
            assert stored["events"][0][:4] == ("offered", None, "offered", True)
            kept = await _alerts_and_audit(resources, ids[-1])
            assert kept["chained"]
            assert bool(kept["audit"]) == (n < 2)
        assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
        assert kept["alerts"][0][0] == "withheld_number"
        # The rest of the known caller's call goes express from what the offered stored.
        ringing = lifecycle("new-2-0", _START, number=_KNOWN)[1]
        assert (await post_signed(http, ringing)).status_code == 202
        assert pipeline.expressed == 3


async def test_an_offered_whose_call_exists_or_that_is_replayed_writes_nothing_express(
    settings: Settings,
) -> None:
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        # The ringing came first and created the call: the offered merges into it.
        offered, ringing = lifecycle("new-3", _START)[:2]
        assert (await post_signed(http, ringing)).status_code == 202
        first = await post_signed(http, offered)
        assert first.status_code == 202
        assert (pipeline.expressed, pipeline.express_fallbacks) == (0, 2)
        stored = await _stored(resources, "new-3")
        assert sorted(e[0] for e in stored["events"]) == ["offered", "ringing"]
        # A replay of an express offered: the original outcome, stored once.
        other = _offered("new-3b")
        created = await post_signed(http, other)
        assert created.status_code == 202
        assert pipeline.expressed == 1
        again = await post_signed(http, other)
        assert (again.status_code, again.json()) == (200, created.json())
        assert again.headers["Idempotent-Replayed"] == "true"
        assert len((await _stored(resources, "new-3b"))["events"]) == 1
        async with resources.sessions() as session:
            calls = await session.scalar(
                select(func.count()).select_from(Call).where(Call.external_id.like("new-3%"))
            )
        assert calls == 2


async def test_an_event_id_stored_on_another_call_is_answered_as_the_locked_path_does(
    settings: Settings,
) -> None:
    """A platform reusing an event id for another call: the express statement fails as a
    whole (nothing of it kept) and the locked path answers it, as it does with express off."""
    answers: dict[bool, tuple[int, dict[str, Any]]] = {}
    for on in (True, False):
        async with running(fast(settings, telephony_express=on)) as (app, http):
            pipeline = pipeline_of(app)
            first = _offered(f"new-4-{on}")
            assert (await post_signed(http, first)).status_code == 202
            reused = {**_offered(f"new-4b-{on}"), "event_id": first["event_id"]}
            answer = await post_signed(http, reused)
            body = answer.json()
            answers[on] = (answer.status_code, {**body, "call_id": body["call_id"] is not None})
            if on:
                assert (pipeline.expressed, pipeline.express_fallbacks) == (1, 1)
    assert answers[True] == answers[False]
    assert answers[True][0] == 200  # the original event's outcome


async def test_while_a_group_is_in_flight_a_new_call_joins_the_next_group(
    settings: Settings,
) -> None:
    """Under load new calls share transactions (a commit for many) instead of a commit
    each: an offered that arrives while a group transaction is in flight waits for the next
    group rather than going express."""
    async with running(fast(settings)) as (app, http):
        resources: Resources = app.state.resources
        pipeline = pipeline_of(app)
        grouped = resources.ingest
        assert isinstance(grouped, GroupCommit)
        offered, ringing = lifecycle("new-5", _START)[:2]
        assert (await post_signed(http, ringing)).status_code == 202  # the call, stored
        async with resources.sessions() as holder, holder.begin():
            # Another writer holds the call: its offered's transaction waits for it.
            await holder.execute(text("SELECT id FROM call WHERE external_id = 'new-5' FOR UPDATE"))
            blocked = asyncio.create_task(post_signed(http, offered))
            await eventually(
                lambda: waiting_for_a_lock(resources.engine),
                what="the offered's group waiting for the call",
            )
            before = (pipeline.expressed, grouped.events)
            other = asyncio.create_task(post_signed(http, _offered("new-5b")))
            await eventually(lambda: _waiting(grouped), what="the new call waiting for a group")
        assert (await blocked).status_code == 202
        assert (await other).status_code == 202
        assert pipeline.expressed == before[0]  # the new call went through a group
        assert grouped.events == before[1] + 1
        assert len((await _stored(resources, "new-5b"))["events"]) == 1


async def _waiting(grouped: GroupCommit) -> bool:
    return bool(grouped._waiting)
