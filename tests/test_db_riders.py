"""Rows that ride with the statement that ends a transaction (`app.db_riders`, issue 19): on
PostgreSQL the outbox's statement takes them, or they are inserted just before the commit;
either way they commit and roll back with the transaction. On SQLite they are inserted at
once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Table, select

from app import db_direct, db_riders
from app.calls import service as calls
from app.history.models import CallContext
from app.realtime import outbox
from app.telephony.events import CallEvent
from tests.telephony.support import lifecycle

CONTEXTS: Table = CallContext.__table__  # type: ignore[assignment]


async def _call(session: Any, name: str) -> int:
    """A call, ingested (and so locked) in `session`'s transaction."""
    offered = lifecycle(name, datetime.now(UTC))[0]
    stored = await calls.ingest(
        session, source="canonical", event=CallEvent.model_validate(offered), raw=b"{}",
        region="GB", lease_seconds=30.0, processed=True,
    )  # fmt: skip
    assert stored.call_id is not None
    return stored.call_id


def _row(call_id: int) -> dict[str, Any]:
    return {"call_id": call_id, "context": {"persons": [], "note": "riding"},
            "looked_up_at": datetime.now(UTC)}  # fmt: skip


async def _stored(app: FastAPI, call_id: int) -> dict[str, Any] | None:
    async with app.state.resources.sessions() as session:
        found = await session.scalar(
            select(CallContext.context).where(CallContext.call_id == call_id)
        )
    return found


async def _riding(app: FastAPI, name: str, *, staged: bool) -> int:
    """One committed transaction: a call ingested, its context riding, and (`staged`) a
    message of the call staged for the outbox. The call's id."""
    resources = app.state.resources
    async with resources.sessions() as session:
        async with session.begin():
            call_id = await _call(session, name)
            await db_riders.ride(session, CONTEXTS, [_row(call_id)])
            assert await _stored(app, call_id) is None  # nothing sent yet
            if staged:
                outbox.stage(session, resources, "call.offered", call_id, [("supervisors", {})])
    return call_id


class _Sent:
    """What went to PostgreSQL on its own (a spy: the real calls still run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inserts: list[str] = []
        self.fetched: list[str] = []
        real_insert, real_fetch = db_direct.insert_many, db_direct.Direct.fetch

        async def insert_many(conn: Any, table: Table, *args: Any, **kw: Any) -> Any:
            self.inserts.append(table.name)
            return await real_insert(conn, table, *args, **kw)

        async def fetch(conn: Any, sql: str, *args: Any) -> Any:
            self.fetched.append(sql)
            return await real_fetch(conn, sql, *args)

        monkeypatch.setattr(db_riders, "insert_many", insert_many)
        monkeypatch.setattr(db_direct.Direct, "fetch", fetch)


@pytest.mark.production_only  # SQLite has no statement to ride on: see the last test
async def test_the_outbox_statement_takes_the_riders(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _Sent(monkeypatch)
    call_id = await _riding(app, "c-riding", staged=True)
    assert await _stored(app, call_id) == {"persons": [], "note": "riding"}
    assert sent.inserts == []  # not on its own ...
    carried = [sql for sql in sent.fetched if "INSERT INTO outbox_message" in sql]
    assert len(carried) == 1 and "riding_0 AS (INSERT INTO call_context" in carried[0]


@pytest.mark.production_only
async def test_riders_no_statement_took_are_inserted_before_the_commit_and_roll_back(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = app.state.resources
    sent = _Sent(monkeypatch)
    call_id = await _riding(app, "c-riding-alone", staged=False)
    assert await _stored(app, call_id) == {"persons": [], "note": "riding"}
    assert sent.inserts == ["call_context"]
    async with resources.sessions() as session:
        async with session.begin():
            other = await _call(session, "c-riding-back")
            await db_riders.ride(session, CONTEXTS, [_row(other)])
            outbox.stage(session, resources, "call.offered", other, [("supervisors", {})])
            await session.rollback()
        async with session.begin():  # the next transaction of the session carries nothing
            later = await _call(session, "c-riding-later")
            outbox.stage(session, resources, "call.offered", later, [("supervisors", {})])
    assert await _stored(app, other) is None
    assert "riding_0" not in [sql for sql in sent.fetched if "outbox_message" in sql][-1]


async def test_a_rider_is_stored_with_its_transaction_on_either_store(app: FastAPI) -> None:
    call_id = await _riding(app, "c-riding-any", staged=True)
    assert await _stored(app, call_id) == {"persons": [], "note": "riding"}
