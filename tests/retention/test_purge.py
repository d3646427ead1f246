"""Issue 16 acceptance 5 (retention): each class of data goes once past its period, a dry
run reports the same counts and changes nothing, and one worker at a time purges."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditLog
from app.calls.models import Call, CallEventRow
from app.config import Settings
from app.history.models import Alert, CallContext, Contact, Marker
from app.realtime.outbox import outbox_backlog
from app.retention import service
from app.retention.schedule import RetentionSchedule
from tests.history.identify_support import call_at
from tests.history.support import add_contact, add_marker, add_people, days_ago
from tests.retention.support import firstcontact, snapshot
from tests.support.servers import eventually

ANCIENT = 3000  # days: past every default period
MONTH_AND_A_BIT = 40  # past the raw bodies' 30 days and the markers' grace, within the rest


async def _age_call(session: AsyncSession, call_id: int, days: int) -> None:
    at = days_ago(days)
    await session.execute(update(Call).where(Call.id == call_id).values(created_at=at))
    await session.execute(
        update(CallEventRow).where(CallEventRow.call_id == call_id).values(received_at=at)
    )
    await session.execute(
        update(CallContext).where(CallContext.call_id == call_id).values(looked_up_at=at)
    )
    await session.execute(update(Alert).where(Alert.call_id == call_id).values(raised_at=at))


async def _scenario(app: FastAPI, client: httpx.AsyncClient) -> tuple[int, int, int]:
    await add_people(app, {"P-A": ["+447700900601"]}, {"H-A": ["P-A"]})
    await add_contact(app, "C-OLD", occurred_at=days_ago(ANCIENT), person_id="P-A")
    await add_contact(app, "C-NEW", occurred_at=days_ago(5), person_id="P-A")
    for marker_id, expired in (("M-GONE", MONTH_AND_A_BIT), ("M-GRACE", 10)):
        await add_marker(
            app, marker_id, subject_type="person", subject_id="P-A", kind="mental_health",
            set_at=days_ago(400), expires_at=days_ago(expired),
        )  # fmt: skip
    await add_marker(app, "M-OPEN", subject_type="person", subject_id="P-A", kind="weapons")
    ancient = await call_at(client, "H1", number="07700 900601", end=True)
    older = await call_at(client, "H1", number="07700 900601", end=True)
    fresh = await call_at(client, "H1", number="07700 900601", end=True)
    async with app.state.resources.sessions() as session, session.begin():
        await _age_call(session, ancient, ANCIENT)
        await _age_call(session, older, MONTH_AND_A_BIT)
        # The chain's first row written long ago (rows are written in time order, and only
        # the chain's oldest rows can go: a gap would read as a deletion).
        first = await session.scalar(select(func.min(AuditLog.seq)))
        await session.execute(
            update(AuditLog).where(AuditLog.seq == first).values(at=days_ago(ANCIENT))
        )
    return ancient, older, fresh


async def test_dry_run_changes_nothing_then_the_purge_removes_what_is_past(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    ancient, older, fresh = await _scenario(app, client)
    sessions = app.state.resources.sessions

    async def all_sent() -> bool:
        # The outbox marks frames sent after their publish, off the request's path: settled
        # first, so that the snapshots compare only what the purge could change.
        async with sessions() as session:
            return (await outbox_backlog(session))[0] == 0

    await eventually(all_sent, what="every frame of the scenario marked sent")
    async with sessions() as session:
        before = await snapshot(session)

    code, dry, err = await firstcontact(settings, "retention", "run", "--dry-run")
    assert code == 0, err
    async with sessions() as session:
        assert await snapshot(session) == before
    assert "dry run, nothing changed" in dry
    assert "raw_events: 8" in dry  # the ancient and the older call: four events each
    assert "contacts: 1" in dry and "markers: 1" in dry and "calls: 1" in dry
    assert "audit: 1" in dry

    code, done, err = await firstcontact(settings, "retention", "run")
    assert code == 0, err
    # The real run removed what the dry run counted.
    assert done.splitlines()[1:] == dry.splitlines()[1:]
    async with sessions() as session:
        calls = set((await session.scalars(select(Call.id))).all())
        raw = {
            call_id: length
            for call_id, length in await session.execute(
                select(CallEventRow.call_id, func.length(CallEventRow.raw))
            )
        }
        older_events = (
            await session.scalars(select(CallEventRow).where(CallEventRow.call_id == older))
        ).all()
        contexts = set((await session.scalars(select(CallContext.call_id))).all())
        contacts = set((await session.scalars(select(Contact.id))).all())
        markers = set((await session.scalars(select(Marker.id))).all())
        audit = (await session.scalars(select(AuditLog))).all()
    assert calls == {older, fresh}  # the ancient call went, with everything hanging off it
    assert raw[older] == 0 and raw[fresh] > 0  # the older call keeps its record, not its body
    assert all(e.canonical["caller"]["number"] is None for e in older_events)
    assert contexts == {older, fresh}  # contexts are kept 90 days
    assert "C-OLD" not in contacts and "C-NEW" in contacts
    assert markers == {"M-GRACE", "M-OPEN"}
    assert min(a.at for a in audit) > days_ago(ANCIENT - 1)
    [purge] = [a for a in audit if a.action == "erasure" and a.subject_type == "retention"]
    assert purge.actor == "cli" and purge.records["rows"]["calls"] == 1

    # What remains of the audit chain still verifies (its oldest rows went through the chain).
    code, _, err = await firstcontact(settings, "audit", "verify")
    assert code == 0, err

    # Nothing is left past its period: a second run removes nothing.
    code, again, err = await firstcontact(settings, "retention", "run")
    assert code == 0, err
    assert all(line.endswith(": 0") for line in again.splitlines()[1:])


async def test_one_worker_purges_at_a_time(app: FastAPI, settings: Settings) -> None:
    sessions = app.state.resources.sessions
    async with sessions() as holder, holder.begin():
        first = await service.run(holder, settings, actor="worker-1", dry_run=True)
        assert first is not None
        # Another worker (its own connection) while the first one's transaction is open.
        other = await asyncio.wait_for(RetentionSchedule(sessions, settings).run_once(), 30)
    # SQLite is one process (no other worker to exclude): it just runs.
    assert (other is None) is not settings.is_sqlite


async def test_the_schedule_purges_on_its_own(app: FastAPI, settings: Settings) -> None:
    await add_people(app, {"P-S": []})
    await add_contact(app, "C-S", occurred_at=days_ago(ANCIENT), person_id="P-S")
    schedule = RetentionSchedule(app.state.resources.sessions, settings)
    rows = await schedule.run_once()
    assert rows is not None and rows["contacts"] == 1
    async with app.state.resources.sessions() as session:
        assert await session.get(Contact, "C-S") is None
