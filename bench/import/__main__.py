"""bench/import: `firstcontact import` of 1M contacts on PostgreSQL (target <= 60 s).

    .venv/bin/python -m bench.import [--contacts 1000000]

Writes the CSV files to a temp folder, creates a scratch database of its own (dropped after),
migrates it and times `import_dir` (parse + validate + COPY + upsert, one transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from app import migrate
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history.importer import import_dir

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def generate(folder: Path, contacts: int) -> None:
    rng = random.Random(1)
    persons = max(10, contacts // 10)
    households = max(5, persons // 2)
    with (folder / "households.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["household_id", "uprn", "address"])
        w.writerows([f"H{h}", str(10**9 + h), f"{h} Bench Street"] for h in range(households))
    with (folder / "people.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["person_id", "name", "date_of_birth", "phones"])
        w.writerows(
            [f"P{p}", f"Bench {p}", "1980-01-01", f"0113 {p // 10000 % 10}{p % 10000:04d}"]
            if False
            else [f"P{p}", f"Bench {p}", "1980-01-01", _number(p)]
            for p in range(persons)
        )
    with (folder / "memberships.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["person_id", "household_id", "from_date", "to_date"])
        w.writerows([f"P{p}", f"H{p // 2}", "2020-01-01", ""] for p in range(persons))
    start = datetime.now(UTC) - timedelta(days=3 * 365)
    with (folder / "contacts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["contact_id", "occurred_at", "phone", "person_id", "household_id",
                    "incident_type", "victim", "domestic_abuse", "outcome"])  # fmt: skip
        for c in range(contacts):
            p = rng.randrange(persons)
            when = start + timedelta(seconds=rng.randrange(3 * 365 * 86400))
            w.writerow([f"C{c}", when.isoformat(), _number(p), f"P{p}", f"H{p // 2}", "assault",
                        "true" if c % 3 == 0 else "false", "false", "advice_given"])  # fmt: skip


def _number(p: int) -> str:
    # 07 mobile numbers (national format, as a force's export would hold them).
    return f"07{400000000 + p:09d}"


async def main(contacts: int) -> None:
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    settings = Settings(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    try:
        await migrate.upgrade_async(settings)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            t = time.perf_counter()
            await asyncio.to_thread(generate, folder, contacts)
            print(f"generated CSV ({contacts:,} contacts) in {time.perf_counter() - t:.1f}s")
            engine = create_engine(settings)
            t = time.perf_counter()
            async with create_sessionmaker(engine)() as session, session.begin():
                report = await import_dir(session, folder)
            elapsed = time.perf_counter() - t
            await engine.dispose()
        print(f"rows: {report.rows}")
        print(f"import of {contacts:,} contacts: {elapsed:.1f}s (target <= 60 s)")
    finally:
        conn = await asyncpg.connect(ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().contacts))
