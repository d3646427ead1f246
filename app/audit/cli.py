"""The audit part of the `firstcontact` command: check the hash chain, export a subject's
access record."""

from __future__ import annotations

import asyncio
import sys

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import chain, service, subject
from app.audit.chain import Problem
from app.config import Settings
from app.db import in_transaction

CLI_ACTOR = "cli"


def verify(settings: Settings) -> int:
    """Exit 0 when the chain is whole, 1 naming each row edited, inserted or deleted."""

    async def work(session: AsyncSession) -> tuple[int, list[Problem]]:
        return await session.run_sync(lambda sync: chain.verify(sync.connection()))

    checked, problems = asyncio.run(in_transaction(settings, work))
    for problem in problems:
        typer.echo(f"audit chain broken: {problem}", err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {checked} rows", err=True)
        return 1
    typer.echo(f"audit chain intact: {checked} rows")
    return 0


def export_subject(settings: Settings, person_id: str) -> int:
    """CSV to stdout: every audit row showing or changing the person. The export is itself
    audited, as a disclosure."""

    async def work(session: AsyncSession) -> str:
        rows = await subject.rows_about_person(session, person_id)
        service.record(
            session,
            actor=CLI_ACTOR,
            action="disclosure",
            subject_type="person",
            subject_id=person_id,
            justification="subject access export",
            records={"audit_rows": len(rows)},
        )
        return subject.as_csv(rows)

    sys.stdout.write(asyncio.run(in_transaction(settings, work)))
    return 0
