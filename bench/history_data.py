"""The scratch history the import and ingest benchmarks load: people with 07 mobile numbers,
two to a household, and contacts spread over three years (one in three as a victim), written
as the CSV files a force's export gives `firstcontact import`."""

from __future__ import annotations

import asyncio
import csv
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history.importer import import_dir


def generate(folder: Path, contacts: int) -> None:
    rng = random.Random(1)
    persons = people_for(contacts)
    households = max(5, persons // 2)
    with (folder / "households.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["household_id", "uprn", "address"])
        w.writerows([f"H{h}", str(10**9 + h), f"{h} Bench Street"] for h in range(households))
    with (folder / "people.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["person_id", "name", "date_of_birth", "phones"])
        w.writerows([f"P{p}", f"Bench {p}", "1980-01-01", phone_of(p)] for p in range(persons))
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
            w.writerow([f"C{c}", when.isoformat(), phone_of(p), f"P{p}", f"H{p // 2}", "assault",
                        "true" if c % 3 == 0 else "false", "false", "advice_given"])  # fmt: skip


def people_for(contacts: int) -> int:
    """How many people `generate` writes for `contacts` contacts (person ids P0...)."""
    return max(10, contacts // 10)


def phone_of(p: int) -> str:
    """Person `p`'s phone: a 07 mobile number in national format, as a force's export would
    hold it."""
    return f"07{400000000 + p:09d}"


async def load(settings: Settings, contacts: int) -> tuple[float, dict[str, int]]:
    """Generate and import `contacts` contacts (and their people, households, memberships)
    into the migrated database of `settings`: (seconds the import took, rows per file)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        await asyncio.to_thread(generate, folder, contacts)
        engine = create_engine(settings)
        try:
            t = time.perf_counter()
            async with create_sessionmaker(engine)() as session, session.begin():
                report = await import_dir(session, folder)
            return time.perf_counter() - t, report.rows
        finally:
            await engine.dispose()
