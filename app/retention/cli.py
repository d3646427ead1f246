"""The retention parts of the `firstcontact` command: `retention run`, `erase`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.retention import service
from app.retention.erase import erase_person

Purge = Callable[[AsyncSession], Awaitable[dict[str, int] | None]]
Erase = Callable[[AsyncSession], Awaitable[dict[str, int]]]


def purge_work(settings: Settings, *, actor: str, dry_run: bool) -> Purge:
    async def work(session: AsyncSession) -> dict[str, int] | None:
        return await service.run(session, settings, actor=actor, dry_run=dry_run)

    return work


def erase_work(settings: Settings, person_id: str, *, actor: str) -> Erase:
    async def work(session: AsyncSession) -> dict[str, int]:
        return await erase_person(session, person_id, actor=actor, region=settings.default_region)

    return work


def print_rows(title: str, rows: dict[str, int]) -> None:
    typer.echo(title)
    for name, count in rows.items():
        typer.echo(f"  {name}: {count}")


def report_purge(rows: dict[str, int] | None, *, dry_run: bool) -> int:
    """Print a purge's outcome; the exit code (1: another worker was purging)."""
    if rows is None:
        typer.echo("another worker is purging now; nothing done", err=True)
        return 1
    print_rows("would remove (dry run, nothing changed):" if dry_run else "removed:", rows)
    return 0
