"""Helpers for the retention tests: run the real command, read every table whole."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import Base
from tests.conftest import service_env


async def firstcontact(settings: Settings, *args: str, **env: str) -> tuple[int, str, str]:
    """`firstcontact ARGS` as a process on this test's backend: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args,
        env=service_env(settings, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def as_text(value: Any) -> str:
    """A stored value as the text a search would read (JSON whole, bytes as Latin-1)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


async def where_found(session: AsyncSession, needles: list[str]) -> dict[str, list[str]]:
    """Every table of the schema, every column of every row, searched for each needle
    (case-insensitive): table -> the needles found in it."""
    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        rows = (await session.execute(select(table))).all()
        text = "\n".join(as_text(v) for row in rows for v in row).lower()
        hits = [n for n in needles if n.lower() in text]
        if hits:
            found[table.name] = hits
    return found


async def snapshot(session: AsyncSession) -> dict[str, list[str]]:
    """Every table's rows as text, sorted: equal snapshots mean nothing changed."""
    return {
        table.name: sorted(
            "|".join(as_text(v) for v in row) for row in (await session.execute(select(table)))
        )
        for table in Base.metadata.sorted_tables
    }
