"""Run Alembic from code (CLI, demo, tests) against the configured database."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config

from app.config import Settings
from app.db import migrations_dir


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["database_url"] = settings.database_url
    cfg.attributes["configure_logging"] = False
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    command.downgrade(alembic_config(settings), revision)


async def upgrade_async(settings: Settings, revision: str = "head") -> None:
    # env.py drives its own event loop, so from async code it runs in a worker thread.
    await asyncio.to_thread(upgrade, settings, revision)


async def downgrade_async(settings: Settings, revision: str = "base") -> None:
    await asyncio.to_thread(downgrade, settings, revision)
