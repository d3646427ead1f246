"""Where validated history rows go, inside the caller's transaction: COPY + upsert on
PostgreSQL, multi-row upserts on SQLite; the collector that cuts them into batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert
from app.history.models import Contact, Household, Marker, Person, PersonHousehold, Phone

BATCH = 20_000


# ---- sinks: where validated rows go (inside the caller's transaction) -------------------


Batch = dict[str, list[tuple[Any, ...]]]


class Sink(Protocol):
    """Where validated rows go, a batch at a time, inside the caller's transaction."""

    async def start(self) -> None: ...
    async def write(self, batch: Batch) -> None: ...


TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("id", "name", "date_of_birth", "updated_at"),
    "phone": ("e164", "person_id", "from_date", "to_date"),
    "household": ("id", "uprn", "address", "easting", "northing", "grid_cell", "updated_at"),
    "person_household": ("person_id", "household_id", "from_date", "to_date", "relationship"),
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
