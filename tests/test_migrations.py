"""Every revision upgrades, downgrades to base and upgrades again, on both databases, and
the migrated schema matches the models (so no model change ships without its migration)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from app import migrate
from app.config import Settings
from app.db import create_engine
from app.models import Base
from tests.conftest import PG_ADMIN_DSN, base_settings


@pytest.fixture
async def scratch_settings(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """An empty database of the run's kind, apart from the one the other tests share."""
    if settings.is_sqlite:
        yield base_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}")
        return
    name = f"fc_scratch_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    host = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    yield base_settings(database_url=f"postgresql+asyncpg://{host}/{name}")
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def _tables(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


async def test_upgrade_downgrade_upgrade(scratch_settings: Settings) -> None:
    expected = set(Base.metadata.tables)
    await migrate.upgrade_async(scratch_settings)
    assert await _tables(scratch_settings) == expected
    await migrate.downgrade_async(scratch_settings, "base")
    assert await _tables(scratch_settings) == set()
    await migrate.upgrade_async(scratch_settings)
    assert await _tables(scratch_settings) == expected


async def test_migrated_schema_matches_models(scratch_settings: Settings) -> None:
    await migrate.upgrade_async(scratch_settings)
    engine = create_engine(scratch_settings)

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await engine.dispose()
    assert differences == []
