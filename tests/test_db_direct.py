"""app.db_direct: hot statements straight through asyncpg inside the session's transaction
(issue 19). They must behave as SQLAlchemy's own: same rows, same values stored (types'
conversions and Python-side defaults), in the session's transaction (rolled back with it), and
the same exceptions (a broken connection flagged and not reused). On SQLite there is no driver
connection and the same calls go through SQLAlchemy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import db_direct as direct
from app.calls.models import Call
from app.config import Settings
from app.db import create_engine, create_sessionmaker

CALL = Call.__table__
_BY_SOURCE = select(CALL.c.id, CALL.c.external_id, CALL.c.handlers, CALL.c.marks,
                    CALL.c.created_at, CALL.c.frame_seq, CALL.c.presentation).where(
    CALL.c.source == bindparam("source"), CALL.c.external_id.in_(bindparam("ids", expanding=True))
).order_by(CALL.c.external_id)  # fmt: skip


# A statement built once with its parameters, as the hot path's are (`direct.rows`).
_INSERT = CALL.insert().values(
    {name: bindparam(name) for name in ("source", "external_id", "state", "flagged")}
)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


def _row(external_id: str) -> dict[str, object]:
    # Only the columns without a Python-side default: the others are filled as SQLAlchemy does.
    return {"source": "t", "external_id": external_id, "state": "offered", "flagged": False}


async def test_rows_and_values_are_sqlalchemys(
    sessions: async_sessionmaker[AsyncSession], backend: str
) -> None:
    before = datetime.now(UTC)
    async with sessions() as session, session.begin():
        conn = await direct.driver(session)
        assert (conn is not None) == (backend == "production")
        if conn is not None:
            await direct.insert_many(conn, CALL, [_row("a"), _row("b")], session.get_bind().dialect)
        else:
            await session.execute(CALL.insert(), [_row("a"), _row("b")])
        # Through the driver (PostgreSQL) and through SQLAlchemy: the same rows.
        fast = await direct.rows(session, _BY_SOURCE, {"source": "t", "ids": ["b", "a", "x"]})
        orm = (await session.execute(_BY_SOURCE, {"source": "t", "ids": ["b", "a", "x"]})).all()
    assert [tuple(r) for r in fast] == [tuple(r) for r in orm]
    assert [r.external_id for r in fast] == ["a", "b"]
    first = fast[0]
    # Defaults as SQLAlchemy applies them; JSON read back as JSON; times aware, in UTC.
    assert (first.handlers, first.marks, first.frame_seq, first.presentation) == (
        [], {}, 0, "unavailable"
    )  # fmt: skip
    assert first.created_at.tzinfo is not None and first.created_at >= before


# Two IN lists and a plain value: the expanded text is kept per statement and list lengths.
_TWO_LISTS = (
    select(CALL.c.external_id, CALL.c.state)
    .where(
        CALL.c.source == bindparam("source"),
        CALL.c.external_id.in_(bindparam("ids", expanding=True)),
        CALL.c.state.in_(bindparam("states", expanding=True)),
    )
    .order_by(CALL.c.external_id)
)


async def test_in_lists_of_every_length_give_sqlalchemys_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = [_row(x) | {"state": s} for x, s in (("a", "offered"), ("b", "ringing"), ("c", "ended"))]
    async with sessions() as session, session.begin():
        await direct.rows(session, _INSERT, rows)
    # Same lengths again with other values (a kept expansion must not keep values), empty
    # lists, and lengths swapped between the two lists.
    cases = [
        (["a", "b"], ["offered"]),
        (["b", "c"], ["ended"]),
        (["c", "b"], ["ringing"]),
        ([], ["offered"]),
        (["a"], []),
        (["a"], ["offered", "ringing"]),
        (["a", "b", "c"], ["ringing", "ended"]),
        (["b"], ["offered", "ringing"]),
    ]
    async with sessions() as session, session.begin():
        for ids, states in cases:
            params = {"source": "t", "ids": ids, "states": states}
            fast = await direct.rows(session, _TWO_LISTS, params)
            orm = (await session.execute(_TWO_LISTS, params)).all()
            assert [tuple(r) for r in fast] == [tuple(r) for r in orm], (ids, states)
            expected = [(x, s) for x, s in (("a", "offered"), ("b", "ringing"), ("c", "ended"))
                        if x in ids and s in states]  # fmt: skip
            assert [tuple(r) for r in fast] == expected


async def test_direct_statements_roll_back_with_the_session(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        async with session.begin():
            conn = await direct.driver(session)
            if conn is not None:
                await direct.insert_many(conn, CALL, [_row("gone")], session.get_bind().dialect)
            else:
                await session.execute(CALL.insert(), [_row("gone")])
            await session.rollback()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CALL)) == 0


async def test_a_failing_statement_raises_sqlalchemys_error_and_the_session_goes_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await direct.rows(session, _INSERT, [_row("dup")])
    async with sessions() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                await direct.rows(session, _INSERT, _row("dup"))
    async with sessions() as session, session.begin():
        found = await direct.rows(session, _BY_SOURCE, {"source": "t", "ids": ["dup"]})
    assert [r.external_id for r in found] == ["dup"]


async def test_a_connection_that_breaks_under_a_direct_statement_is_not_reused(
    sessions: async_sessionmaker[AsyncSession], backend: str
) -> None:
    if backend != "production":
        # SQLite has no driver connection to break: every statement goes through SQLAlchemy.
        async with sessions() as session, session.begin():
            assert await direct.driver(session) is None
        return
    async with sessions() as killer:
        with pytest.raises(DBAPIError) as raised:
            async with sessions() as session, session.begin():
                conn = await direct.driver(session)
                assert conn is not None
                pid = (await conn.fetch("SELECT pg_backend_pid()"))[0][0]
                async with killer.begin():
                    await killer.execute(text(f"SELECT pg_terminate_backend({int(pid)})"))
                await direct.rows(session, _BY_SOURCE, {"source": "t", "ids": ["a"]})
    assert raised.value.connection_invalidated
    # The pool hands out a working connection next.
    async with sessions() as session, session.begin():
        assert await direct.rows(session, _BY_SOURCE, {"source": "t", "ids": ["a"]}) == []
