"""The loaded history the ring -> screen bench runs against: a PostgreSQL database
`bench_<contacts>` (migrated, `contacts` contacts imported through the real importer) built
once and kept, checked by row count, and copied (`CREATE DATABASE ... TEMPLATE`) for each run
so that every run starts from the same state and the 1M rows are loaded only once.

Known callers are the people of bench/history_data.py (person `p` has `phone_of(p)`); unknown
callers get numbers from a range no person has.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from bench import history_data
from bench.realtime_env import PG_ADMIN_DSN, admin_sql, bench_backend

HOST = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]


def template_name(contacts: int) -> str:
    return f"bench_{contacts // 1_000_000}m" if contacts % 1_000_000 == 0 else f"bench_{contacts}"


async def _contact_rows(name: str) -> int | None:
    try:
        conn = await asyncpg.connect(f"postgresql://{HOST}/{name}")
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        return int(await conn.fetchval("SELECT count(*) FROM contact"))
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()


def ensure_template(contacts: int) -> str:
    """The name of the loaded template database, built (minutes) only if it is missing or does
    not hold exactly `contacts` contacts."""
    name = template_name(contacts)
    if asyncio.run(_contact_rows(name)) == contacts:
        return name
    print(f"loading {contacts:,} contacts into {name} (once; reused by later runs)", flush=True)
    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    started = time.perf_counter()
    with bench_backend(f"postgresql+asyncpg://{HOST}/{name}") as settings:  # migrated, kept
        seconds, rows = asyncio.run(history_data.load(settings, contacts))
    asyncio.run(admin_sql("VACUUM ANALYZE", name))
    print(f"loaded {rows} in {seconds:.1f} s ({time.perf_counter() - started:.1f} s)", flush=True)
    return name


def known_number(person: int) -> str:
    """A caller the history knows (person `person`'s phone, as the platform sends it)."""
    return history_data.phone_of(person)


def unknown_number(n: int) -> str:
    """A caller the history does not know: 07 mobiles from 07900..., a range no bench person
    has (persons are 07400... upwards, 100k of them per 1M contacts)."""
    return f"079{n:08d}"
