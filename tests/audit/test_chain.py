"""Issue 16 acceptance 4 (the chain): `firstcontact audit verify` passes on the log the service
wrote, then fails, naming the row, after a row is edited, inserted or deleted in the database;
concurrent writers keep one unbroken chain; `audit subject` exports who saw a person."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, text, update

from app.audit import chain as audit_chain
from app.audit import service as audit
from app.audit.models import AuditLog
from app.auth.models import Role
from app.config import Settings
from app.db import unit_of_work
from tests import test_auth as auth_tests
from tests.calls.test_pipeline import fast, running
from tests.conftest import MakeStaff
from tests.history.identify_support import call_at, seed
from tests.support.statements import statements_sent
from tests.thrive.support import auth


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return auth_tests.run_cli(settings, "audit", *args)


async def _write_some(app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff) -> None:
    """Audit rows written by the service itself: a ring's lookup, searches, the log's read."""
    await seed(app)
    handler = await make_staff("H1", Role.handler)
    admin = await make_staff("A1", Role.admin)
    call_id = await call_at(client, "H1", number="+447700900501")
    for q in ("Jo Demo 1985-03-02", "12 Acacia Avenue"):
        found = await client.get(
            "/api/v1/history/search", params={"call_id": call_id, "q": q}, headers=auth(handler)
        )
        assert found.status_code == 200, found.text
    assert (await client.get("/api/v1/audit", headers=auth(admin))).status_code == 200


async def _exec(app: FastAPI, statement: object) -> None:
    async with app.state.resources.sessions() as session, session.begin():
        await session.execute(statement)  # type: ignore[call-overload]


async def test_verify_finds_an_edited_an_inserted_and_a_deleted_row(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await _write_some(app, client, make_staff)
    async with app.state.resources.sessions() as session:
        seqs = list(await session.scalars(select(AuditLog.seq).order_by(AuditLog.seq)))
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 5

    intact = run_cli(settings, "verify")
    assert intact.returncode == 0, intact.stderr
    assert f"{len(seqs)} rows" in intact.stdout

    # Edited: someone rewrites who looked.
    await _exec(app, update(AuditLog).where(AuditLog.seq == 3).values(actor="staff:NOBODY"))
    edited = run_cli(settings, "verify")
    assert edited.returncode == 1
    assert "(seq 3)" in edited.stderr and "edited" in edited.stderr

    # Deleted: the edited row removed altogether; the rest still links up to it.
    await _exec(app, delete(AuditLog).where(AuditLog.seq == 3))
    deleted = run_cli(settings, "verify")
    assert deleted.returncode == 1
    assert "rows seq 3..3 are missing (deleted)" in deleted.stderr

    # Inserted: a row slipped in where the deleted one was, with a made-up link.
    await _exec(
        app,
        text(
            "INSERT INTO audit_log (at, actor, action, subject_type, records, seq, prev_hash, "
            "hash) VALUES (CURRENT_TIMESTAMP, 'staff:H1', 'consultation', 'person', '{}', 3, "
            ":fake, :fake)"
        ).bindparams(fake="f" * 64),
    )
    inserted = run_cli(settings, "verify")
    assert inserted.returncode == 1
    assert "(seq 3)" in inserted.stderr and "inserted" in inserted.stderr

    # The newest row deleted: the head still names it.
    await _exec(app, delete(AuditLog).where(AuditLog.seq == seqs[-1]))
    tail = run_cli(settings, "verify")
    assert tail.returncode == 1
    assert f"rows seq {seqs[-1]}..{seqs[-1]} are missing (deleted)" in tail.stderr


async def test_a_row_inserted_after_the_head_is_found(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await _write_some(app, client, make_staff)
    async with app.state.resources.sessions() as session:
        last = await session.scalar(select(AuditLog).order_by(AuditLog.seq.desc()).limit(1))
    assert last is not None
    await _exec(
        app,
        text(
            "INSERT INTO audit_log (at, actor, action, subject_type, records, seq, prev_hash, "
            "hash) VALUES (CURRENT_TIMESTAMP, 'staff:H1', 'consultation', 'person', '{}', "
            ":seq, :prev, :fake)"
        ).bindparams(seq=last.seq + 1, prev=last.hash, fake="e" * 64),
    )
    done = run_cli(settings, "verify")
    assert done.returncode == 1
    assert f"(seq {last.seq + 1})" in done.stderr and "inserted" in done.stderr


async def test_concurrent_writers_keep_one_chain(settings: Settings, app: FastAPI) -> None:
    async def writer(n: int) -> None:
        async with unit_of_work(app.state.resources.sessions) as session:
            for k in range(3):
                audit.record(
                    session,
                    actor=f"staff:W{n}",
                    action="consultation",
                    subject_type="person",
                    subject_id=f"P{k}",
                )

    await asyncio.gather(*(writer(n) for n in range(20)))
    async with app.state.resources.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditLog)) == 60
    done = run_cli(settings, "verify")
    assert done.returncode == 0, done.stderr


async def test_a_rolled_back_transaction_leaves_no_audit_row(app: FastAPI) -> None:
    sessions = app.state.resources.sessions
    async with sessions() as session:
        await session.execute(select(1))  # a request's reads, then a failure
        audit.record(session, actor="staff:H1", action="consultation", subject_type="person")
        await session.rollback()
        await session.commit()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditLog)) == 0


async def test_subject_export_lists_who_saw_the_person_as_neutral_csv(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await _write_some(app, client, make_staff)
    async with unit_of_work(app.state.resources.sessions) as session:
        audit.record(
            session,
            actor='=HYPERLINK("http://e.vil","x")',
            action="consultation",
            subject_type="person",
            subject_id="P-JO",
        )
    done = run_cli(settings, "subject", "--person", "P-JO")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert rows, done.stdout
    actors = {r["actor"] for r in rows}
    # The ring's lookup showed Jo (the caller's number is hers); the handler's searches
    # listed her; the planted formula comes out as text.
    assert {"staff:H1", '\'=HYPERLINK("http://e.vil","x")'} <= actors
    assert any(r["subject_type"] == "history_search" for r in rows)
    assert all(r["subject_id"] in ("P-JO", "") for r in rows)
    async with app.state.resources.sessions() as session:
        disclosed = await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "disclosure", AuditLog.subject_id == "P-JO")
        )
    assert disclosed == 1
    assert run_cli(settings, "verify").returncode == 0


async def test_rows_hashed_by_the_database_verify_as_python_hashes_them(
    settings: Settings, app: FastAPI
) -> None:
    """On PostgreSQL the append hashes the rows in SQL (one statement): whatever a row holds
    (accents, quotes, backslashes, emoji, nested records with keys out of order, empty and
    missing values), its hash is the one `digest` gives, and the chain verifies. A database
    without the head row: the first append creates it (hashing in Python), the next ones
    follow it."""
    odd = {
        "zoë": ['Łukasz "Łuki" O\'Brien', "C:\\path\\to", "tab\tnew\nline", "🚓"],
        "b": {"z": 1, "a": [None, True, 2.5, ""]},
        "a": [],
    }
    await _exec(app, text("DELETE FROM audit_chain_head"))
    for n in range(3):
        async with unit_of_work(app.state.resources.sessions) as session:
            for k in range(3):  # several rows in one statement, each after the one before
                audit.record(
                    session, actor=f"staff:Ö{n}", action="consultation", subject_type="person",
                    subject_id=f"P-{k}-é", call_id=None if k else "42",
                    justification="weil „Grund“" if k == 1 else None, records=odd,
                )  # fmt: skip
    async with app.state.resources.sessions() as session:
        stored = (await session.scalars(select(AuditLog).order_by(AuditLog.seq))).all()
    assert [(r.seq, r.actor) for r in stored] == [
        (3 * n + k + 1, f"staff:Ö{n}") for n in range(3) for k in range(3)
    ]
    assert all(r.records == odd for r in stored)
    assert all(audit_chain.digest(r.prev_hash, vars(r)) == r.hash for r in stored)
    assert all(r.prev_hash == before.hash for before, r in zip(stored, stored[1:], strict=False))
    done = run_cli(settings, "verify")
    assert done.returncode == 0, done.stderr


@pytest.mark.production_only  # the rows ride on a PostgreSQL statement of the call's
@pytest.mark.parametrize("express", [True, False])
async def test_a_calls_consultation_rows_ride_on_the_statement_that_stores_it(
    settings: Settings, express: bool
) -> None:
    """A known caller's lookup is audited by the statement that stores the offered (the
    express path's one write) or ends its transaction (the locked path's outbox statement),
    not by one of its own; with the head row gone, the express statement writes nothing and
    the locked path appends the rows anyway, and the chain still verifies."""
    async with running(fast(settings, telephony_express=express)) as (app, http):
        await seed(app)
        resources = app.state.resources
        for n in range(2):
            if n == 1:  # a database without the chain (emptied, or created without its head)
                await _exec(app, text("DELETE FROM audit_chain_head"))
                await _exec(app, delete(AuditLog))
            async with statements_sent(resources.engine) as sent:
                call_id = await call_at(http, "H1", number="+447700900501")
                statements = await sent()
            appending = [s for s in statements if "audit_rows" in s]
            # The second: the express attempt (nothing written), the locked path's outbox
            # statement (the head missing: nothing written), the append that creates it.
            assert len(appending) == [[1, 2], [1, 3]][express][n]
            assert "INSERT INTO outbox_message" in appending[0]
            assert ("INSERT INTO call " in appending[0]) == express
            async with resources.sessions() as session:
                audited = await session.scalar(
                    select(func.count())
                    .select_from(AuditLog)
                    .where(AuditLog.call_id == str(call_id))
                )
            assert audited >= 1
        # Many at once (express, alone or in group transactions, each taking the head in
        # its last statement): one unbroken chain.
        await asyncio.gather(*(call_at(http, "H1", number="+447700900501") for _ in range(12)))
        async with resources.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(AuditLog))
        assert total >= 14
    done = run_cli(settings, "verify")
    assert done.returncode == 0, done.stderr
