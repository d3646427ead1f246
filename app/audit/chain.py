"""The audit log's hash chain: rows are appended at commit, one transaction at a time.

Writers queue their rows on the session (`queue`); just before the session commits, the rows
are numbered after the chain's head, each hashed over its content and the hash of the row
before, inserted, and the head moved on. Locking the head row first is the lock: on
PostgreSQL a row lock that a concurrent appender waits on until this transaction ends (then
reads the head it left), on SQLite the database's single write lock. The lock is held only
for the last statements of a transaction, so appenders barely wait on each other. On
PostgreSQL all of it is one statement (the database hashes the rows: `_APPEND_HASHED_PG`).

`verify` walks the chain and names each row that was edited, inserted or deleted.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, event, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction

from app.audit.models import GENESIS, AuditChainHead, AuditLog
from app.db_direct import driver_sync, wait
from app.metrics.catalogue import AUDIT_WRITES

AUDIT: Table = AuditLog.__table__  # type: ignore[assignment]
HEAD: Table = AuditChainHead.__table__  # type: ignore[assignment]
HEAD_ID = 1
_PENDING = "audit_pending"
# What a row says (besides the records it names), as its columns.
FIELDS = ("at", "actor", "action", "subject_type", "subject_id", "call_id", "justification")
# The columns a row's hash covers, in this order.
CONTENT = ("seq", *FIELDS, "records")


def digest(prev_hash: str, row: dict[str, Any]) -> str:
    """SHA-256 of the previous hash and the row's content, in one canonical JSON form."""
    text = _canonical_json([prev_hash, row["seq"], *_content(row)])
    return hashlib.sha256(text.encode()).hexdigest()


def _content(row: dict[str, Any]) -> list[Any]:
    """What a row's hash covers after its place in the chain (CONTENT but `seq`)."""
    return [
        row["at"].astimezone(UTC).isoformat(timespec="microseconds") if name == "at" else row[name]
        for name in CONTENT[1:]
    ]


def _canonical_json(values: list[Any]) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _after_seq(row: dict[str, Any]) -> str:
    """`digest`'s JSON text from the value after `seq` to the end: the whole text is
    '["<previous hash>",<seq>,' and this (a hash is hex and a seq an integer, so neither
    needs escaping), which lets PostgreSQL hash a row once it knows its place."""
    return _canonical_json(_content(row))[1:]


def queue(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append these audit rows (the columns of `service.row`) when the session commits."""
    session.info.setdefault(_PENDING, []).extend(rows)


def _canonical(row: dict[str, Any]) -> dict[str, Any]:
    # What the database gives back: JSON values as JSON reads them (a tuple comes back a
    # list), and times at microseconds, so the hash verifies against the stored row.
    records = json.loads(json.dumps(row.get("records") or {}, default=str))
    at: datetime = row["at"]
    return {**row, "records": records, "at": at.astimezone(UTC)}


# Updating the head takes the lock, and returns the head as the last appender left it.
_LOCK_HEAD = (
    update(HEAD)
    .where(HEAD.c.id == HEAD_ID)
    .values(seq=HEAD.c.seq)
    .returning(HEAD.c.seq, HEAD.c.hash)
)
_LOCK_HEAD_PG = f"UPDATE audit_chain_head SET seq = seq WHERE id = {HEAD_ID} RETURNING seq, hash"


def _head(conn: Connection) -> tuple[int, str]:
    direct = driver_sync(conn)
    found = wait(direct.fetchrow(_LOCK_HEAD_PG)) if direct else conn.execute(_LOCK_HEAD).first()
    if found is None:
        # A database created without the migration's head row (or emptied by tests).
        from app.db import upsert

        conn.execute(
            upsert(HEAD, conn.dialect.name)
            .values(id=HEAD_ID, seq=0, hash=GENESIS, base_seq=0, base_hash=GENESIS)
            .on_conflict_do_nothing()
        )
        found = conn.execute(_LOCK_HEAD).one()
    seq, last = found
    return int(seq), str(last)


# On PostgreSQL the head is locked and read, the rows numbered, hashed (`digest`'s text,
# built from each row's `_after_seq` and its place), inserted and the head moved on, in one
# statement: one round trip and not two (issue 19). `head` takes the row lock and, if it had
# to wait for another appender, gives the head that one left (a locking read in READ
# COMMITTED reads the newest version); `chain` walks the rows in their order from it.
_CHAINED = (
    ("at", "timestamptz"), ("actor", "text"), ("action", "text"), ("subject_type", "text"),
    ("subject_id", "text"), ("call_id", "text"), ("justification", "text"),
    ("records", "jsonb"),
)  # fmt: skip


@functools.cache  # per transaction on the hot path: built once per first parameter
def _hashed_ctes(first: int, when: str = "") -> tuple[str, ...]:
    """The append as CTEs (`audit_rows` the rows inserted), for a statement that begins `WITH
    RECURSIVE`: $first the rows' `_after_seq` texts, then one array per `_CHAINED` column.
    `when`: an SQL condition; false, nothing is appended (the head is locked all the same)."""
    names = ", ".join(name for name, _ in _CHAINED)
    picked = ", ".join(f"r.{n}::jsonb" if t == "jsonb" else f"r.{n}" for n, t in _CHAINED)
    arrays = ", ".join(f"${first + 1 + i}::{'text' if t == 'jsonb' else t}[]"
                       for i, (_, t) in enumerate(_CHAINED))  # fmt: skip
    return (
        f"audit_head AS (SELECT seq, hash FROM audit_chain_head WHERE id = {HEAD_ID} FOR UPDATE)",
        f"audit_rest AS (SELECT * FROM unnest(${first}::text[]) WITH ORDINALITY AS r(text, n)"
        + (f" WHERE {when})" if when else ")"),
        "audit_chain(n, seq, prev_hash, hash) AS ("
        " SELECT 0::bigint, seq, NULL::text, hash::text FROM audit_head"
        " UNION ALL"
        " SELECT audit_rest.n, audit_chain.seq + 1, audit_chain.hash, encode(sha256(convert_to("
        "'[\"' || audit_chain.hash || '\",' || (audit_chain.seq + 1)::text || ','"
        " || audit_rest.text, 'UTF8')), 'hex')"
        " FROM audit_chain JOIN audit_rest ON audit_rest.n = audit_chain.n + 1)",
        "audit_moved AS (UPDATE audit_chain_head SET seq = last.seq, hash = last.hash"
        " FROM (SELECT n, seq, hash FROM audit_chain ORDER BY n DESC LIMIT 1) AS last"
        f" WHERE audit_chain_head.id = {HEAD_ID}" + (" AND last.n > 0)" if when else ")"),
        f"audit_rows AS (INSERT INTO audit_log ({names}, seq, prev_hash, hash)"
        f" SELECT {picked}, audit_chain.seq, audit_chain.prev_hash, audit_chain.hash"
        f" FROM unnest({arrays}) WITH ORDINALITY AS r({names}, n)"
        " JOIN audit_chain ON audit_chain.n = r.n ORDER BY r.n RETURNING 1)",
    )


def _hashed_args(rows: list[dict[str, Any]]) -> list[Any]:
    canonical = [_canonical(row) for row in rows]
    return [
        [_after_seq(row) for row in canonical],
        *([row.get(name) for row in canonical] for name, _ in _CHAINED[:-1]),
        [json.dumps(row["records"]) for row in canonical],
    ]


_APPEND_HASHED_PG = f"WITH RECURSIVE {', '.join(_hashed_ctes(1))} SELECT count(*) FROM audit_rows"
# What a statement carrying the append (`ride`) returns for `rode`: the rows it wrote.
AUDITED = "(SELECT count(*) FROM audit_rows)"
_RIDING = "audit_riding"


def append(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Number, hash and insert `rows` after the chain's head, and move the head on."""
    if not rows:
        return
    direct = driver_sync(conn)
    if direct is not None:
        found = wait(direct.fetchrow(_APPEND_HASHED_PG, *_hashed_args(rows)))
        if found is None or found[0] != len(rows):
            _append_headless(conn, rows)
    else:
        seq, prev = _head(conn)
        chained = []
        for row in rows:
            seq += 1
            linked = {**_canonical(row), "seq": seq, "prev_hash": prev}
            linked["hash"] = prev = digest(linked["prev_hash"], linked)
            chained.append(linked)
        conn.execute(insert(AUDIT), chained)
        conn.execute(update(HEAD).where(HEAD.c.id == HEAD_ID).values(seq=seq, hash=prev))
    counted(rows)


def _append_headless(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """`_APPEND_HASHED_PG` wrote nothing: the database has no head row (created without the
    migration's). The head created, the same statement again (PostgreSQL)."""
    _head(conn)
    direct = driver_sync(conn)
    assert direct is not None
    found = wait(direct.fetchrow(_APPEND_HASHED_PG, *_hashed_args(rows)))
    assert found is not None and found[0] == len(rows)


def ride(sync: Session, first: int) -> tuple[list[str], list[Any]]:
    """The rows queued for the chain, taken to be appended by the transaction's last
    statement (app.realtime.outbox, PostgreSQL): its CTEs (`_hashed_ctes`, the statement must
    begin `WITH RECURSIVE` and return `AUDITED`), their parameters' values from `$first`.
    Nothing queued: ([], []). `rode` must follow with what the statement returned."""
    _adopt_added(sync)
    pending = sync.info.pop(_PENDING, None)
    if not pending:
        return [], []
    sync.info[_RIDING] = pending
    return list(_hashed_ctes(first)), _hashed_args(pending)


def riding_if(first: int, when: str, rows: list[dict[str, Any]]) -> tuple[list[str], list[Any]]:
    """`rows` appended by a statement of the caller's own (it begins `WITH RECURSIVE`; its
    `audit_head` CTE is the chain's head, locked), only if `when` holds there: the CTEs and
    their parameters' values from `$first`. Once it has run and wrote them, `counted`."""
    return list(_hashed_ctes(first, when)), _hashed_args(rows)


def counted(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        AUDIT_WRITES.inc(str(row["action"]))


def rode(sync: Session, written: int) -> None:
    """After the statement that took `ride`'s rows, which wrote `written` of them: none when
    the head row is missing (a database created without it), appended then with the head
    created first."""
    pending: list[dict[str, Any]] = sync.info.pop(_RIDING, [])
    if written != len(pending):
        _append_headless(sync.connection(), pending)
    counted(pending)


def _adopt_added(session: Session) -> None:
    """Audit rows added as objects (`session.add(AuditLog(...))`) join the queue instead of
    being flushed unchained."""
    for obj in [o for o in session.new if isinstance(o, AuditLog)]:
        session.expunge(obj)
        row = {name: getattr(obj, name) for name in FIELDS}
        if row["at"] is None:
            row["at"] = datetime.now(UTC)
        row["records"] = obj.records or {}
        queue(session, [row])


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: object, _instances: object) -> None:
    _adopt_added(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _adopt_added(session)
    pending = session.info.pop(_PENDING, None)
    if pending:
        append(session.connection(), pending)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_RIDING, None)  # taken by a statement that failed: rolled back too


@dataclass(frozen=True)
class Problem:
    seq: int | None
    row_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"row id {self.row_id} (seq {self.seq})" if self.row_id is not None else ""
        return f"{where}: {self.reason}" if where else self.reason


def _rows(conn: Connection, batch: int) -> Iterator[dict[str, Any]]:
    after: int | None = None
    while True:
        query = select(AUDIT).order_by(AUDIT.c.seq).limit(batch)
        if after is not None:
            query = query.where(AUDIT.c.seq > after)
        page = [dict(r._mapping) for r in conn.execute(query)]
        if not page:
            return
        yield from page
        after = page[-1]["seq"]


def verify(conn: Connection, *, batch: int = 5000) -> tuple[int, list[Problem]]:
    """Walk the chain from its base to its head: (rows checked, problems). An edited row
    fails its own hash; an inserted one breaks the links around it or sits past the head; a
    deleted one leaves a gap in `seq` (or, the newest, a head pointing past the last row)."""
    head = conn.execute(select(HEAD).where(HEAD.c.id == HEAD_ID)).first()
    if head is None:
        head_seq, head_hash, expected_seq, prev = 0, GENESIS, 1, GENESIS
    else:
        head_seq, head_hash = int(head.seq), str(head.hash)
        expected_seq, prev = int(head.base_seq) + 1, str(head.base_hash)
    problems: list[Problem] = []
    checked = 0
    last_seq, last_hash = expected_seq - 1, prev
    for row in _rows(conn, batch):
        checked += 1
        seq, rid = int(row["seq"]), int(row["id"])
        if seq < expected_seq:
            problems.append(Problem(seq, rid, "before the chain's start (inserted)"))
            continue
        if seq > expected_seq:
            problems.append(
                Problem(seq, rid, f"rows seq {expected_seq}..{seq - 1} are missing (deleted)")
            )
        if row["prev_hash"] != prev:
            problems.append(Problem(seq, rid, "does not follow the row before it (inserted)"))
        if digest(row["prev_hash"], row) != row["hash"]:
            problems.append(Problem(seq, rid, "content does not match its hash (edited)"))
        if seq > head_seq:
            problems.append(Problem(seq, rid, "after the chain's head (inserted)"))
        prev = row["hash"]
        expected_seq = seq + 1
        last_seq, last_hash = seq, row["hash"]
    if last_seq < head_seq:
        problems.append(
            Problem(None, None, f"rows seq {last_seq + 1}..{head_seq} are missing (deleted)")
        )
    elif last_seq == head_seq and last_hash != head_hash:
        problems.append(Problem(last_seq, None, "the last row is not the one the head records"))
    return checked, problems


def forget_through(conn: Connection, seq: int) -> int:
    """Delete the rows up to `seq` (retention) and record the last one's hash as the chain's
    new base, so what remains still verifies. Returns the rows deleted."""
    from sqlalchemy import delete

    last = conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == seq)).scalar_one_or_none()
    if last is None:
        return 0
    _head(conn)
    deleted = conn.execute(delete(AUDIT).where(AUDIT.c.seq <= seq)).rowcount
    conn.execute(update(HEAD).where(HEAD.c.id == HEAD_ID).values(base_seq=seq, base_hash=last))
    return int(deleted or 0)
