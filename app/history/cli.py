"""The history parts of the `firstcontact` command (import, demo seeding)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history import demo
from app.history.importer import ImportRejected, ImportReport, import_dir


def import_command(settings: Settings, directory: Path) -> int:
    """Run an import and print its outcome; returns the exit code (1: rejected)."""

    async def run() -> ImportReport:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await import_dir(session, directory)
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except ImportRejected as exc:
        typer.echo(f"import rejected: {exc.message}", err=True)
        for line in (exc.details or {}).get("errors", []):
            typer.echo(f"  {line}", err=True)
        return 1
    rows = ", ".join(f"{table} {count}" for table, count in report.rows.items())
    typer.echo(f"imported in {report.seconds:.1f}s: {rows}")
    return 0


def seed_demo_if_empty(settings: Settings) -> dict[str, int] | None:
    """Seed the synthetic demo history unless the database already has history."""

    async def run() -> dict[str, int] | None:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                if await demo.has_history(session):
                    return None
                return await demo.seed(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())
