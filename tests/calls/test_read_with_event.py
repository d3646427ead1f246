"""Reads answered by an event's own statement (`repository.read_with_event`, issue 19): a
ringing's statement also reads the context its offered stored, so the ring -> screen path
does not send that read on its own. Its answer must be what the call's earlier events
committed, even when the ringing waited for the call's lock while the offered committed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.calls import repository as repo
from app.calls import service as calls
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history import stored_context as stored_context_module
from app.history.models import CallContext
from app.history.stored_context import stored_contexts
from app.telephony.events import CallEvent
from tests.support.servers import eventually, waiting_for_a_lock
from tests.telephony.support import lifecycle

CONTEXT = {"persons": [], "households": [], "note": "built when the call was offered"}


def _event(raw: dict[str, object]) -> CallEvent:
    return CallEvent.model_validate(raw)


async def _ingest(session: object, raw: dict[str, object]) -> calls.IngestOutcome:
    return await calls.ingest(
        session,  # type: ignore[arg-type]
        source="canonical",
        event=_event(raw),
        raw=b"{}",
        region="GB",
        lease_seconds=30.0,
        processed=True,
    )


@pytest.mark.production_only  # the statement is PostgreSQL's; SQLite reads on its own
async def test_a_ringing_that_waited_for_the_lock_reads_what_the_offered_committed(
    settings: Settings,
) -> None:
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    offered, ringing = lifecycle("c-read-with-event", datetime.now(UTC))[:2]
    try:
        async with sessions() as first:
            # The offered's transaction: the call locked, its context stored, not committed.
            await first.begin()
            stored = await _ingest(first, offered)
            first.add(CallContext(call_id=stored.call_id, context=CONTEXT))
            await first.flush()

            async def ring() -> tuple[object, object]:
                async with sessions() as second, second.begin():
                    outcome = await _ingest(second, ringing)
                    sync = second.sync_session
                    answer = repo.read_with_event_answer(sync, outcome.call_id, "stored_context")
                    # Taken once: the second ask goes to the store (and finds the same).
                    again = await stored_contexts(second, [outcome.call_id])
                    return answer, again

            waiting = asyncio.create_task(ring())

            await eventually(
                lambda: waiting_for_a_lock(engine), what="the ringing waiting for the call's lock"
            )
            await first.commit()
        answer, again = await asyncio.wait_for(waiting, 30)
    finally:
        await engine.dispose()
    # Read by a statement whose snapshot began before the offered committed, it would be None
    # and the ringing would look the caller up a second time.
    assert answer == CONTEXT
    assert again == {stored.call_id: (CONTEXT, [])}


async def test_the_ringing_delivers_the_stored_context_without_reading_it_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[object] = []
    rows = stored_context_module.direct.rows

    async def recorded(session: object, stmt: object, params: object = None) -> list[object]:
        sent.append(stmt)
        return await rows(session, stmt, params)  # type: ignore[arg-type]

    monkeypatch.setattr(stored_context_module.direct, "rows", recorded)
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    offered, ringing = lifecycle("c-read-with-event-2", datetime.now(UTC))[:2]
    try:
        async with sessions() as session, session.begin():
            stored = await _ingest(session, offered)
            session.add(CallContext(call_id=stored.call_id, context=CONTEXT))
        async with sessions() as session, session.begin():
            outcome = await _ingest(session, ringing)
            read = await stored_contexts(session, [outcome.call_id])
        postgres = engine.dialect.name == "postgresql"
    finally:
        await engine.dispose()
    assert read == {stored.call_id: (CONTEXT, [])}
    # PostgreSQL: answered by the ringing's own statement; SQLite reads it on its own.
    reads = [s for s in sent if s is stored_context_module._STORED_CONTEXT]
    assert len(reads) == (0 if postgres else 1)


@pytest.mark.production_only  # the statement is PostgreSQL's
async def test_only_the_events_whose_steps_read_the_context_carry_the_read(
    settings: Settings,
) -> None:
    """An offered's call is new and an answered needs no context: their statements do not
    read it (no answer is held for them), a ringing's and an ended's do."""
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    offered, ringing, answered, ended = lifecycle("c-read-with-event-3", datetime.now(UTC))
    held: dict[str, object] = {}
    try:
        for raw in (offered, ringing, answered, ended):
            async with sessions() as session, session.begin():
                outcome = await _ingest(session, raw)
                if raw is offered:
                    session.add(CallContext(call_id=outcome.call_id, context=CONTEXT))
                sync = session.sync_session
                held[str(raw["type"])] = repo.read_with_event_answer(
                    sync, outcome.call_id, "stored_context"
                )
    finally:
        await engine.dispose()
    assert held == {"offered": None, "ringing": CONTEXT, "answered": None, "ended": CONTEXT}
