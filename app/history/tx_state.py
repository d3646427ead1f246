"""What the history step holds for one processing transaction, and `settle`, which writes it.

The step (app.history.steps) reads ahead into it, the write-back (app.history.write_back) adds
to it, `settle` flushes it once at the end of the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import db_riders
from app.calls.models import Call
from app.db import per_transaction
from app.db_direct import driver, insert_many
from app.history import alerts, writes
from app.history.models import Alert
from app.history.store import Summary

# A call's context and its alerts: dicts once stored; an alert raised in this transaction is
# its row until the history step finishes (its id comes with `settle`'s insert).
StoredContext = tuple[dict[str, Any], list[Any]]


@dataclass
class HistoryTx:
    """What the history step holds for one processing transaction (a batch of events, or one).

    Read ahead for all its events at once (`prepare`), written once at the end (`finish`):
    contexts, alerts, audit records and contacts are flushed together, and the summaries the
    new contacts change are invalidated together. The call rows are locked for the whole
    transaction, so nobody else changes what is held here meanwhile."""

    known: dict[int, StoredContext] = field(default_factory=dict)  # by call id
    summaries: dict[str, Summary] = field(default_factory=dict)  # read ahead, by number
    contacts_read: set[int] = field(default_factory=set)  # calls whose contacts were read
    with_contact: set[int] = field(default_factory=set)  # calls that have their contact
    contact_ids: set[str] = field(default_factory=set)  # contact ids already taken
    # Ending calls read ahead that carry the domestic-abuse qualifier (their contact is DA).
    da_calls: set[int] = field(default_factory=set)
    # Written here and not yet invalidated: a summary that shows any of these is rebuilt
    # from the store (after a flush) rather than read ahead or from the cache.
    numbers: set[str] = field(default_factory=set)
    persons: set[str] = field(default_factory=set)
    households: set[str] = field(default_factory=set)
    flag: set[int] = field(default_factory=set)  # calls to flag
    alerts: list[Alert] = field(default_factory=list)  # raised, to insert (`alerts.raised`)
    # Rows to insert with one statement per table (Core: many rows cost a fraction of as
    # many ORM objects): contexts, consultation records, write-back contacts.
    rows: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)

    def add_row(self, table: Table, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)

    def shows_pending(self, summary: Summary) -> bool:
        """Whether a write of this transaction (not yet invalidated) changes `summary`: it
        shows the number, a person or a household written to."""
        if not (self.numbers or self.persons or self.households):
            return False
        return (
            summary.number in self.numbers
            or any(p.id in self.persons for p in summary.persons)
            or any(h.id in self.households for h in summary.households)
        )


TX_KEY = "history_tx"


def tx_of(session: AsyncSession) -> HistoryTx:
    """The history step's state for the session's current transaction (a new one per
    transaction: a rolled-back attempt leaves nothing behind)."""
    return per_transaction(session.sync_session, TX_KEY, HistoryTx)


async def settle(session: AsyncSession) -> None:
    """Flush what the history step added in this transaction, flag its calls and invalidate
    the summaries its writes change (in the same transaction, as every history write does)."""
    tx = tx_of(session)
    if tx.flag or tx.alerts:
        await _raise(session, tx)
    await write_rows(session, tx)
    if tx.numbers or tx.persons or tx.households:
        await writes.invalidate(
            session, numbers=tx.numbers, person_ids=tx.persons, household_ids=tx.households
        )
        tx.numbers, tx.persons, tx.households = set(), set(), set()


async def write_rows(session: AsyncSession, tx: HistoryTx) -> None:
    """Flush the session (alerts) and insert the pending rows, one statement per table."""
    await session.flush()
    direct = await driver(session) if tx.rows else None
    for table, rows in tx.rows.items():
        if not rows:
            continue
        if direct is not None and table.name in _RIDING and _same_keys(rows):
            await db_riders.ride(session, table, rows)
        elif direct is not None and _same_keys(rows):
            await insert_many(direct, table, rows, session.get_bind().dialect)
        else:
            await session.execute(insert(table), rows)
    tx.rows.clear()


async def _raise(session: AsyncSession, tx: HistoryTx) -> None:
    """Insert the alerts raised in this transaction and flag the calls they flag. PostgreSQL:
    one statement, the flagging riding on the insert, each alert's id set on its row (the
    realtime step's frames carry it); elsewhere through the session (ids at its flush)."""
    raised, flag = tx.alerts, sorted(tx.flag)
    tx.alerts, tx.flag = [], set()
    direct = await driver(session)
    if direct is None:
        session.add_all(raised)  # flushed by `write_rows`
        if flag:
            await session.execute(update(Call).where(Call.id.in_(flag)).values(flagged=True))
        return
    if not raised:
        await direct.execute(_FLAG_PG, flag)
        return
    dialect = session.get_bind().dialect
    rows = [alerts.values(alert) for alert in raised]
    (insert_alerts,), args = db_riders.ctes([(_ALERT, rows)], dialect, 2, returning="id")
    found = await direct.fetch(
        f"WITH flagged AS ({_FLAG_PG}), {insert_alerts} SELECT id FROM riding_0", flag, *args
    )
    # Ids drawn from the sequence in the rows' order (`unnest_insert_sql`) sort back into it.
    for alert, alert_id in zip(raised, sorted(r[0] for r in found), strict=True):
        alert.id = alert_id


_ALERT: Table = Alert.__table__  # type: ignore[assignment]

# Tables whose rows nothing reads later in the transaction that writes them (a call's stored
# context is read by the call's later events, each in a transaction of its own, and within
# this one from `HistoryTx.known`): they go with the transaction's last statement.
_RIDING = frozenset({"call_context"})

# `settle`'s flagging on PostgreSQL: one text (and plan) whatever the number of calls.
_FLAG_PG = "UPDATE call SET flagged = true WHERE id = ANY($1::bigint[])"


def _same_keys(rows: list[dict[str, Any]]) -> bool:
    first = rows[0].keys()
    return all(row.keys() == first for row in rows)
