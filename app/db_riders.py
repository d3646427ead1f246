"""Rows inserted by the statement that ends a transaction, not in a round trip of their own.

On PostgreSQL every call event's transaction ends with one statement that numbers and writes
its outbox messages (app.realtime.outbox). Rows that nothing reads later in the transaction
(a call's stored context) `ride` on it: that statement takes them as data-modifying CTEs
(`take`), one round trip fewer per event (issue 19). Whatever no statement took is inserted
just before the commit (`_insert_left`), so a rider is never lost: it commits or rolls back
with the transaction either way. SQLite, and a session whose transaction has no asyncpg
connection, insert at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, event, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.db import per_transaction, this_transactions
from app.db_direct import (
    Processor,
    array_type,
    bound,
    driver,
    driver_sync,
    insert_many,
    insert_sql,
    unnest_insert_sql,
    wait,
    with_defaults,
)

_RIDING = "db_riders"


async def ride(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (the same keys each) with the transaction's last statement, or before its
    commit; at once where that cannot be (SQLite). Only for rows nothing reads later in the
    same transaction."""
    if not rows:
        return
    direct = await driver(session)
    if direct is None:
        await session.execute(insert(table), list(rows))
        return
    riding: list[tuple[Table, list[Mapping[str, Any]]]] = per_transaction(
        session.sync_session, _RIDING, list
    )
    riding.append((table, list(rows)))


def take(sync: Session, dialect: Dialect, first: int) -> tuple[list[str], list[Any]]:
    """The rows riding on this transaction, taken: `name AS (INSERT ...)` CTEs to put after a
    statement's `WITH`, their parameters numbered from `$first`, and those parameters' values
    (one array per column)."""
    riding = this_transactions(sync, _RIDING)
    if not isinstance(riding, list) or not riding:
        return [], []
    found = ctes(riding, dialect, first)
    riding.clear()
    return found


def ctes(
    riding: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]],
    dialect: Dialect,
    first: int,
    *,
    where: str = "",
    returning: str = "",
) -> tuple[list[str], list[Any]]:
    """`riding_<n> AS (INSERT ...)` CTEs for rows of each table (the same keys per table),
    parameters numbered from `$first`, and their values. `where`/`returning`: as for
    `unnest_insert_sql` (an express event's rows are inserted only if its event is), or
    `returning=KEY`."""
    texts: list[str] = []
    args: list[Any] = []
    for n, (table, rows) in enumerate(riding):
        columns, full = with_defaults(table, rows)
        cte, processors = _cte(table, tuple(columns), dialect, n, first, where, returning)
        texts.append(cte)
        values = bound(full, columns, processors)
        args += [[row[i] for row in values] for i in range(len(columns))]
        first += len(columns)
    return texts, args


_CTES: dict[tuple[Any, ...], tuple[str, list[Processor]]] = {}

# `returning` for riders of tables keyed otherwise than by `id` (a call's stored context, by
# its call): each table's primary key, named `id`.
KEY = "<primary key>"


def _cte(
    table: Table,
    columns: tuple[str, ...],
    dialect: Dialect,
    n: int,
    first: int,
    where: str = "",
    returning: str = "",
) -> tuple[str, list[Processor]]:
    """The rider's CTE text and its columns' bind processors, built once per table, column
    list, position and first parameter (every event's transaction sends the same one)."""
    key = (table.name, columns, id(dialect), n, first, where, returning)
    found = _CTES.get(key)
    if found is None:
        _, processors = insert_sql(table, columns, dialect)
        if returning == KEY:
            returning = f"{next(iter(table.primary_key.columns)).name} AS id"
        kinds = [array_type(table, name, dialect) for name in columns]
        sql = unnest_insert_sql(
            table.name, list(zip(columns, kinds, strict=True)), first, returning, where=where
        )
        found = _CTES[key] = (f"riding_{n} AS ({sql})", processors)
    return found


def _insert_left(sync: Session) -> None:
    riding = this_transactions(sync, _RIDING)
    if not isinstance(riding, list) or not riding:
        return
    direct = driver_sync(sync)
    assert direct is not None  # only riding where the transaction has one
    dialect = sync.get_bind().dialect
    for table, rows in riding:
        wait(insert_many(direct, table, rows, dialect))
    riding.clear()


# A hook that takes the riders into its statement registers with `insert=True`: it then runs
# before this one, whichever module was imported first.
event.listen(Session, "before_commit", _insert_left)
