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
import csv
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_postgres, upsert, utcnow
from app.errors import AppError
from app.history import versions
from app.history.models import Contact, Household, Marker, Person, PersonHousehold, Phone
from app.telephony.numbers import normalise

log = logging.getLogger(__name__)

FILES = ("people.csv", "households.csv", "memberships.csv", "contacts.csv", "markers.csv")
COLUMNS: dict[str, tuple[str, ...]] = {
    "people.csv": ("person_id", "name", "date_of_birth", "phones"),
    "households.csv": ("household_id", "uprn", "address"),
    "memberships.csv": ("person_id", "household_id", "from_date", "to_date"),
    "contacts.csv": (
        "contact_id",
        "occurred_at",
        "phone",
        "person_id",
        "household_id",
        "incident_type",
        "victim",
        "domestic_abuse",
        "outcome",
    ),
    "markers.csv": ("marker_id", "subject_type", "subject_id", "kind", "set_at", "expires_at"),
}
MAX_REPORTED = 100
BATCH = 20_000
# A UK force's exports carry local wall-clock times when they carry no offset.
LOCAL_TZ = ZoneInfo("Europe/London")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$")
_UPRN = re.compile(r"^\d{1,12}$")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0", ""})


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.column}: {self.reason}" if self.column else f"{where}: {self.reason}"
        )


class ImportRejected(AppError):
    status, code = 422, "import_rejected"


@dataclass
class ImportReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class _Bad(Exception):
    def __init__(self, column: str | None, reason: str) -> None:
        self.column, self.reason = column, reason


# ---- field parsers: each raises _Bad with a reason that never contains the value ----------


def _id(value: str, column: str, required: bool = True) -> str | None:
    if not value:
        if required:
            raise _Bad(column, "required")
        return None
    if not _ID.match(value):
        raise _Bad(column, "not a valid id (letters, digits, _.:/- ; at most 64)")
    return value


def _text(value: str, column: str, limit: int) -> str | None:
    if len(value) > limit:
        raise _Bad(column, f"longer than {limit} characters")
    return value or None


def _date(value: str, column: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return datetime.strptime(value, "%d/%m/%Y").date()
    except ValueError:
        raise _Bad(column, "not a date (YYYY-MM-DD or DD/MM/YYYY)") from None


def _datetime(value: str, column: str, required: bool) -> datetime | None:
    if not value:
        if required:
            raise _Bad(column, "required")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(column, "not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LOCAL_TZ)
    return parsed.astimezone(UTC)


def _bool(value: str, column: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _Bad(column, "not true or false")


@lru_cache(maxsize=262_144)
def _e164(raw: str) -> str | None:
    number = normalise(raw)
    return number.e164


def _phone(value: str, column: str) -> str | None:
    if not value:
        return None
    e164 = _e164(value)
    if e164 is None:
        raise _Bad(column, "not a UK phone number")
    return e164


# ---- reading --------------------------------------------------------------------------


def _rows(path: Path, errors: list[RowError]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) for every data row; header problems are recorded as errors."""
    name = path.name
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except UnicodeDecodeError:
            errors.append(RowError(name, _first_bad_utf8_line(path), None, "not UTF-8"))
            return
        except csv.Error as exc:
            errors.append(RowError(name, 1, None, f"malformed CSV header ({exc})"))
            return
        if header is None:
            errors.append(RowError(name, 1, None, "empty file: a header row is required"))
            return
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS[name] if c not in names]
        if missing:
            errors.append(RowError(name, 1, None, "missing columns: " + ", ".join(missing)))
            return
        index = {c: names.index(c) for c in (*COLUMNS[name], "set_by") if c in names}
        width = len(names)
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                errors.append(RowError(name, _first_bad_utf8_line(path), None, "not UTF-8"))
                return
            except csv.Error as exc:
                errors.append(RowError(name, reader.line_num, None, f"malformed CSV ({exc})"))
                return
            line = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if len(record) < width:
                errors.append(
                    RowError(name, line, None, f"expected {width} fields, found {len(record)}")
                )
                continue
            yield line, {c: record[i].strip() for c, i in index.items()}


def _first_bad_utf8_line(path: Path) -> int:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


# ---- sinks: where validated rows go (inside the caller's transaction) -------------------


Batch = dict[str, list[tuple[Any, ...]]]


class Sink(Protocol):
    """Where validated rows go, a batch at a time, inside the caller's transaction."""

    async def start(self) -> None: ...
    async def write(self, batch: Batch) -> None: ...


TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("id", "name", "date_of_birth", "updated_at"),
    "phone": ("e164", "person_id", "from_date", "to_date"),
    "household": ("id", "uprn", "address", "updated_at"),
    "person_household": ("person_id", "household_id", "from_date", "to_date"),
    "contact": (
        "id",
        "occurred_at",
        "number",
        "person_id",
        "household_id",
        "incident_type",
        "victim",
        "domestic_abuse",
        "outcome",
        "updated_at",
    ),
    "marker": ("id", "subject_type", "subject_id", "kind", "set_by", "set_at", "expires_at"),
}
CONFLICT_KEYS: dict[str, tuple[str, ...]] = {
    "person": ("id",),
    "phone": ("person_id", "e164"),
    "household": ("id",),
    "person_household": ("person_id", "household_id"),
    "contact": ("id",),
    "marker": ("id",),
}
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "contact": ("person_id", "number", "occurred_at"),
    "phone": ("e164",),
    "person_household": ("household_id",),
}
# Dependency order for the final upserts (foreign keys).
LOAD_ORDER = ("person", "phone", "household", "person_household", "contact", "marker")
_MODELS: dict[str, Any] = {
    "person": Person,
    "phone": Phone,
    "household": Household,
    "person_household": PersonHousehold,
    "contact": Contact,
    "marker": Marker,
}


class PostgresSink:
    """COPY into temporary staging tables, then one INSERT ... ON CONFLICT per table."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.driver: Any = None

    async def start(self) -> None:
        conn = await self.session.connection()
        raw = await conn.get_raw_connection()
        self.driver = raw.driver_connection
        for table in LOAD_ORDER:
            columns = ", ".join(TABLE_COLUMNS[table])
            await self.session.execute(
                text(
                    f"CREATE TEMP TABLE stg_{table} ON COMMIT DROP AS "
                    f"SELECT {columns} FROM {table} WITH NO DATA"
                )
            )

    async def write(self, batch: Batch) -> None:
        for table in LOAD_ORDER:  # persons before their phones (foreign key)
            rows = batch.get(table)
            if not rows:
                continue
            await self.driver.copy_records_to_table(
                f"stg_{table}", records=rows, columns=list(TABLE_COLUMNS[table])
            )
            if table == "phone":
                # A person's phones are replaced by the file's list, not merged with old ones
                # (a batch always holds a person together with their phones).
                await self.session.execute(
                    text("DELETE FROM phone WHERE person_id IN (SELECT id FROM stg_person)")
                )
            columns = TABLE_COLUMNS[table]
            keys = CONFLICT_KEYS[table]
            updates = [c for c in columns if c not in keys]
            action = (
                "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in updates)
                if updates
                else "DO NOTHING"
            )
            cols = ", ".join(columns)
            # Inserting in index order keeps the b-tree pages being written hot in the cache:
            # half the time of a random-order insert for a million contacts.
            order = f" ORDER BY {', '.join(SORT_KEYS[table])}" if table in SORT_KEYS else ""
            await self.session.execute(
                text(
                    f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stg_{table}{order} "
                    f"ON CONFLICT ({', '.join(keys)}) {action}"
                )
            )
        for table in LOAD_ORDER:
            if batch.get(table):
                await self.session.execute(text(f"TRUNCATE stg_{table}"))


class SqliteSink:
    """Upserts in batches straight into the tables (the transaction is the staging area)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(self) -> None:
        return None

    async def write(self, batch: Batch) -> None:
        for table in LOAD_ORDER:
            rows = batch.get(table)
            if not rows:
                continue
            model = _MODELS[table]
            columns = TABLE_COLUMNS[table]
            if table == "phone":
                persons = sorted({r[1] for r in rows})
                for start in range(0, len(persons), 500):
                    await self.session.execute(
                        delete(Phone).where(Phone.person_id.in_(persons[start : start + 500]))
                    )
            # Core on the table, not the ORM bulk path: one executemany per batch.
            stmt = upsert(model.__table__, "sqlite")  # this path is SQLite's (COPY on PostgreSQL)
            keys = CONFLICT_KEYS[table]
            updates = {c: stmt.excluded[c] for c in columns if c not in keys}
            stmt = (
                stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
                if updates
                else stmt.on_conflict_do_nothing(index_elements=list(keys))
            )
            conn = await self.session.connection()
            await conn.execute(stmt, [dict(zip(columns, r, strict=True)) for r in rows])


# ---- the import -----------------------------------------------------------------------


DEFERRED = frozenset({"person_household"})


class Collector:
    """Validated rows by table, handed on in batches. A batch is cut only before a row that is
    not a phone, so a person always travels with their phones."""

    def __init__(self, emit: Callable[[Batch], None], size: int = BATCH) -> None:
        self.emit = emit
        self.size = size
        self.failed = False  # after the first bad row: keep validating, stop writing
        self.pending: Batch = {}
        self.held = 0
        self.counts: dict[str, int] = {}
        # Rows with foreign keys to ids that may be in the store rather than in the files:
        # written once every reference has been checked.
        self.deferred: Batch = {}

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.counts[table] = self.counts.get(table, 0) + 1
        if self.failed:
            return
        if table in DEFERRED:
            self.deferred.setdefault(table, []).append(row)
            return
        if self.held >= self.size and table != "phone":
            self.flush()
        self.pending.setdefault(table, []).append(row)
        self.held += 1

    def flush(self) -> None:
        if self.pending and not self.failed:
            self.emit(self.pending)
        self.pending, self.held = {}, 0


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
            for line, row in _rows(directory / name, errors):
                if errors:
                    batches.failed = True
                if self.stop:
                    return
                try:
                    if name == "people.csv":
                        pid = _id(row["person_id"], "person_id")
                        assert pid is not None
                        key: Any = pid
                        record: tuple[Any, ...] = (
                            pid,
                            _text(row["name"], "name", 200),
                            _date(row["date_of_birth"], "date_of_birth"),
                            now,
                        )
                        phones: dict[str, None] = {}
                        for raw in row["phones"].split(";"):
                            e164 = _phone(raw.strip(), "phones")
                            if e164:
                                phones[e164] = None
                        _once(seen, key, line, "person_id")
                        people.add(pid)
                        batches.add("person", record)
                        for e164 in phones:
                            batches.add("phone", (e164, pid, None, None))
                    elif name == "households.csv":
                        hid = _id(row["household_id"], "household_id")
                        uprn = row["uprn"] or None
                        if uprn is not None and not _UPRN.match(uprn):
                            raise _Bad("uprn", "not a UPRN (up to 12 digits)")
                        record = (hid, uprn, _text(row["address"], "address", 500), now)
                        _once(seen, hid, line, "household_id")
                        homes.add(hid)  # type: ignore[arg-type]
                        batches.add("household", record)
                    elif name == "memberships.csv":
                        pid = _id(row["person_id"], "person_id")
                        hid = _id(row["household_id"], "household_id")
                        start, end = (
                            _date(row["from_date"], "from_date"),
                            _date(row["to_date"], "to_date"),
                        )
                        if start and end and end < start:
                            raise _Bad("to_date", "before from_date")
                        _once(seen, (pid, hid), line, "person_id, household_id")
                        refer("person", pid, name, line, "person_id")
                        refer("household", hid, name, line, "household_id")
                        batches.add("person_household", (pid, hid, start, end))
                    elif name == "contacts.csv":
                        cid = _id(row["contact_id"], "contact_id")
                        record = (
                            cid,
                            _datetime(row["occurred_at"], "occurred_at", required=True),
                            _phone(row["phone"], "phone"),
                            _id(row["person_id"], "person_id", required=False),
                            _id(row["household_id"], "household_id", required=False),
                            _text(row["incident_type"], "incident_type", 64),
                            _bool(row["victim"], "victim"),
                            _bool(row["domestic_abuse"], "domestic_abuse"),
                            _text(row["outcome"], "outcome", 200),
                            now,
                        )
                        _once(seen, cid, line, "contact_id")
                        refer("person", record[3], name, line, "person_id")
                        refer("household", record[4], name, line, "household_id")
                        batches.add("contact", record)
                    else:  # markers.csv
                        mid = _id(row["marker_id"], "marker_id")
                        subject_type = row["subject_type"].lower()
                        if subject_type not in ("person", "household"):
                            raise _Bad("subject_type", "not person or household")
                        subject = _id(row["subject_id"], "subject_id")
                        kind = row["kind"]
                        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", kind):
                            raise _Bad("kind", "not a marker kind (lower_snake_case)")
                        set_at = _datetime(row["set_at"], "set_at", required=True)
                        expires = _datetime(row["expires_at"], "expires_at", required=False)
                        if set_at and expires and expires < set_at:
                            raise _Bad("expires_at", "before set_at")
                        set_by = _text(row.get("set_by", ""), "set_by", 64)
                        _once(seen, mid, line, "marker_id")
                        refer(subject_type, subject, name, line, "subject_id")
                        batches.add(
                            "marker", (mid, subject_type, subject, kind, set_by, set_at, expires)
                        )
                except _Bad as bad:
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
    await versions.bump(session, [versions.EVERYTHING])
    report = ImportReport(rows=dict(batches.counts), seconds=time.perf_counter() - started)
    log.info("history imported", extra={"rows": report.rows, "seconds": round(report.seconds, 2)})
    return report


def _present(directory: Path) -> list[str]:
    if not directory.is_dir():
        raise ImportRejected("not a folder", details={"path": str(directory)})
    return [name for name in FILES if (directory / name).is_file()]


def _once(seen: dict[Any, int], key: Any, line: int, column: str) -> None:
    first = seen.get(key)
    if first is not None:
        raise _Bad(column, f"duplicates line {first}")
    seen[key] = line
