"""`firstcontact import DIR`: load a force's history from CSV exports.

Whichever of people.csv, households.csv, memberships.csv, contacts.csv and markers.csv the
folder holds are read (header row, UTF-8, extra columns ignored), validated row by row, and
loaded in ONE transaction: any bad row and nothing is imported, every bad row (up to a cap) is
reported with its file and line, never with its content. On PostgreSQL rows go by COPY into
temporary staging tables, then one upsert per table; re-importing the same ids updates rows.
Every summary is invalidated (the global generation counter) in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_postgres, utcnow
from app.errors import AppError
from app.history import versions, writes
from app.history.csv_fields import (
    FILES,
    UPRN,
    Bad,
    RowError,
    csv_rows,
    field_bool,
    field_date,
    field_datetime,
    field_id,
    field_location,
    field_phone,
    field_relationship,
    field_text,
    once,
)
from app.history.import_sinks import BATCH, Batch, Collector, PostgresSink, Sink, SqliteSink
from app.history.models import Household, Person

log = logging.getLogger(__name__)

MAX_REPORTED = 100


class ImportRejected(AppError):
    status, code = 422, "import_rejected"


@dataclass
class ImportReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# ---- the import -----------------------------------------------------------------------


class _Parser:
    """Reads and validates the files row by row (in a worker thread), handing valid rows to
    the collector; remembers every error and every reference to check against the store."""

    def __init__(self, directory: Path, present: list[str], batches: Collector) -> None:
        self.directory = directory
        self.present = present
        self.batches = batches
        self.errors: list[RowError] = []
        self.people: set[str] = set()
        self.homes: set[str] = set()
        # References to ids not in this import, checked against the store at the end:
        # (kind, id) -> first (file, line, column) that named it.
        self.refs: dict[tuple[str, str], tuple[str, int, str]] = {}
        self.stop = False

    def run(self) -> None:
        directory, present, batches = self.directory, self.present, self.batches
        errors, people, homes, refs = self.errors, self.people, self.homes, self.refs
        now = utcnow()

        def fail(err: RowError) -> None:
            errors.append(err)
            batches.failed = True

        def refer(kind: str, ident: str | None, name: str, line: int, column: str) -> None:
            known = people if kind == "person" else homes
            if ident is not None and ident not in known and (kind, ident) not in refs:
                refs[(kind, ident)] = (name, line, column)

        for name in present:
            seen: dict[Any, int] = {}
            for line, row in csv_rows(directory / name, errors):
                if errors:
                    batches.failed = True
                if self.stop:
                    return
                try:
                    if name == "people.csv":
                        pid = field_id(row["person_id"], "person_id")
                        assert pid is not None
                        key: Any = pid
                        record: tuple[Any, ...] = (
                            pid,
                            field_text(row["name"], "name", 200),
                            field_date(row["date_of_birth"], "date_of_birth"),
                            now,
                        )
                        phones: dict[str, None] = {}
                        for raw in row["phones"].split(";"):
                            e164 = field_phone(raw.strip(), "phones")
                            if e164:
                                phones[e164] = None
                        once(seen, key, line, "person_id")
                        people.add(pid)
                        batches.add("person", record)
                        for e164 in phones:
                            batches.add("phone", (e164, pid, None, None))
                    elif name == "households.csv":
                        hid = field_id(row["household_id"], "household_id")
                        uprn = row["uprn"] or None
                        if uprn is not None and not UPRN.match(uprn):
                            raise Bad("uprn", "not a UPRN (up to 12 digits)")
                        place = field_location(
                            row.get("easting", ""),
                            row.get("northing", ""),
                            row.get("latitude", ""),
                            row.get("longitude", ""),
                        )
                        record = (
                            hid,
                            uprn,
                            field_text(row["address"], "address", 500),
                            *(place or (None, None, None)),
                            now,
                        )
                        once(seen, hid, line, "household_id")
                        homes.add(hid)  # type: ignore[arg-type]
                        batches.add("household", record)
                    elif name == "memberships.csv":
                        pid = field_id(row["person_id"], "person_id")
                        hid = field_id(row["household_id"], "household_id")
                        start, end = (
                            field_date(row["from_date"], "from_date"),
                            field_date(row["to_date"], "to_date"),
                        )
                        if start and end and end < start:
                            raise Bad("to_date", "before from_date")
                        relationship = field_relationship(
                            row.get("relationship", ""), "relationship"
                        )
                        once(seen, (pid, hid), line, "person_id, household_id")
                        refer("person", pid, name, line, "person_id")
                        refer("household", hid, name, line, "household_id")
                        batches.add("person_household", (pid, hid, start, end, relationship))
                    elif name == "contacts.csv":
                        cid = field_id(row["contact_id"], "contact_id")
                        record = (
                            cid,
                            field_datetime(row["occurred_at"], "occurred_at", required=True),
                            field_phone(row["phone"], "phone"),
                            field_id(row["person_id"], "person_id", required=False),
                            field_id(row["household_id"], "household_id", required=False),
                            field_text(row["incident_type"], "incident_type", 64),
                            field_bool(row["victim"], "victim"),
                            field_bool(row["domestic_abuse"], "domestic_abuse"),
                            field_text(row["outcome"], "outcome", 200),
                            now,
                        )
                        once(seen, cid, line, "contact_id")
                        refer("person", record[3], name, line, "person_id")
                        refer("household", record[4], name, line, "household_id")
                        batches.add("contact", record)
                    else:  # markers.csv
                        mid = field_id(row["marker_id"], "marker_id")
                        subject_type = row["subject_type"].lower()
                        if subject_type not in ("person", "household"):
                            raise Bad("subject_type", "not person or household")
                        subject = field_id(row["subject_id"], "subject_id")
                        kind = row["kind"]
                        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", kind):
                            raise Bad("kind", "not a marker kind (lower_snake_case)")
                        set_at = field_datetime(row["set_at"], "set_at", required=True)
                        expires = field_datetime(row["expires_at"], "expires_at", required=False)
                        if set_at and expires and expires < set_at:
                            raise Bad("expires_at", "before set_at")
                        set_by = field_text(row.get("set_by", ""), "set_by", 64)
                        once(seen, mid, line, "marker_id")
                        refer(subject_type, subject, name, line, "subject_id")
                        batches.add(
                            "marker", (mid, subject_type, subject, kind, set_by, set_at, expires)
                        )
                except Bad as bad:
                    fail(RowError(name, line, bad.column, bad.reason))
                if len(errors) > MAX_REPORTED:
                    break
            if len(errors) > MAX_REPORTED:
                break


async def _existing(session: AsyncSession, model: Any, ids: set[str]) -> set[str]:
    found: set[str] = set()
    ordered = sorted(ids)
    for start in range(0, len(ordered), 5000):
        chunk = ordered[start : start + 5000]
        found.update(await session.scalars(select(model.id).where(model.id.in_(chunk))))
    return found


async def import_dir(session: AsyncSession, directory: Path) -> ImportReport:
    """Validate and load the CSV files in `directory` in the session's transaction.

    Raises ImportRejected (details: the errors as "file:line: column: reason") when any row
    is bad; the caller rolls the transaction back, so nothing is half-imported.
    """
    started = time.perf_counter()
    present = await asyncio.to_thread(_present, directory)
    if not present:
        raise ImportRejected("no history files found", details={"expected": list(FILES)})
    postgres = is_postgres(session)
    sink: Sink = PostgresSink(session) if postgres else SqliteSink(session)
    await sink.start()
    # Parsing and validating (Python, one core) runs in a thread while the database loads the
    # previous batch (the other core): the import takes about the longer of the two.
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=4)

    def emit(batch: Batch) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(batch), loop).result()

    batches = Collector(emit)
    parser = _Parser(directory, present, batches)

    def parse() -> None:
        try:
            parser.run()
            batches.flush()
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    parsing = asyncio.ensure_future(asyncio.to_thread(parse))
    try:
        while (batch := await queue.get()) is not None:
            if not batches.failed:
                await sink.write(batch)
    except BaseException:
        batches.failed = parser.stop = True
        while not parsing.done():  # let the thread finish its last hand-over and exit
            if queue.empty():
                await asyncio.sleep(0.01)
            else:
                queue.get_nowait()
        raise
    await parsing
    errors, refs = parser.errors, parser.refs
    if not errors and refs:
        for kind, model in (("person", Person), ("household", Household)):
            wanted = {ident for (k, ident) in refs if k == kind}
            for ident in sorted(wanted - await _existing(session, model, wanted)):
                file, line, column = refs[(kind, ident)]
                errors.append(RowError(file, line, column, f"unknown {kind} id"))
        errors.sort(key=lambda e: (FILES.index(e.file), e.line))
    if errors:
        shown = [str(e) for e in errors[:MAX_REPORTED]]
        raise ImportRejected(
            f"{len(errors)}{'+' if len(errors) > MAX_REPORTED else ''} bad row(s); "
            "nothing was imported",
            details={"errors": shown},
        )
    for table, rows in batches.deferred.items():
        for start in range(0, len(rows), BATCH):
            await sink.write({table: rows[start : start + BATCH]})
    await writes.locate_contacts(session)
    await versions.bump(session, [versions.EVERYTHING])
    report = ImportReport(rows=dict(batches.counts), seconds=time.perf_counter() - started)
    log.info("history imported", extra={"rows": report.rows, "seconds": round(report.seconds, 2)})
    return report


def _present(directory: Path) -> list[str]:
    if not directory.is_dir():
        raise ImportRejected("not a folder", details={"path": str(directory)})
    return [name for name in FILES if (directory / name).is_file()]
