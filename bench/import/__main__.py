"""bench/import: `firstcontact import` of 1M contacts on PostgreSQL (target <= 60 s).

    .venv/bin/python -m bench.import [--contacts 1000000]

Writes the CSV files to a temp folder, creates a scratch database of its own (dropped after),
migrates it and times `import_dir` (parse + validate + COPY + upsert, one transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

import asyncpg

from app import migrate
from app.config import Settings
from bench.history_data import load

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def main(contacts: int) -> None:
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    settings = Settings(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    try:
        await migrate.upgrade_async(settings)
        elapsed, rows = await load(settings, contacts)
        print(f"rows: {rows}")
        print(f"import of {contacts:,} contacts: {elapsed:.1f}s (target <= 60 s)")
    finally:
        conn = await asyncpg.connect(ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().contacts))
