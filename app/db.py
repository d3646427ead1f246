"""The store: one SQLAlchemy schema on SQLite (embedded) and PostgreSQL (production).

Repositories take an `AsyncSession` and never commit: the request's session dependency commits
once, then runs whatever the request queued with `after_commit` (publishing, for example), so
nothing is announced that was not stored.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    cast,
    event,
    literal_column,
    null,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.sql._typing import _DMLTableArgument  # what insert() takes; no public alias
from sqlalchemy.types import TypeDecorator

from app import json_codec
from app.config import Settings

_T = TypeVar("_T")
log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# JSONB on PostgreSQL (indexable, compact); plain JSON text elsewhere.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def union_branch(tag: int, query: Any, shape: Sequence[tuple[str, Any]], **columns: Any) -> Any:
    """`query` (its FROM and WHERE) as one branch of a UNION ALL whose branches read different
    rows: a `tag` column saying which branch a row came from, then `shape`'s (name, type)
    columns, each from `columns` or NULL of its type."""
    picked: list[Any] = [literal_column(str(tag)).label("tag")]
    picked += [
        (columns[name] if name in columns else cast(null(), type_)).label(name)
        for name, type_ in shape
    ]
    return query.with_only_columns(*picked)


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_engine(settings: Settings, *, service: bool = False) -> AsyncEngine:
    """The engine on DATABASE_URL. `service`: the served process's (PostgreSQL statements
    limited to DATABASE_STATEMENT_TIMEOUT_MS; the command-line tools' bulk work is not)."""
    url = settings.database_url
    # hide_parameters: a statement's error message would otherwise quote its parameters
    # (narratives, names, numbers), and error messages end up in logs and tracebacks.
    common = {
        "pool_pre_ping": settings.db_pre_ping,
        "hide_parameters": True,
        # JSON columns (every event's canonical form, call state, context): orjson.
        "json_serializer": json_codec.dumps,
        "json_deserializer": json_codec.loads,
    }
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # One writer at a time in SQLite: wait for the lock rather than fail under load.
        engine = create_async_engine(url, **common, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    pool = settings.db_pool_size
    # Each statement text is prepared once per connection and kept in an LRU of this size.
    # Grouped ingest (app.calls.grouping) sends IN lists and multi-row inserts of every
    # length from 1 to the group's maximum, a few hundred texts: with asyncpg's default of
    # 100 they were evicted and prepared again all the time (a server round trip and a parse
    # and plan each), about a tenth of the service's CPU at 100 calls/s (issue 19).
    connect_args: dict[str, object] = {"prepared_statement_cache_size": STATEMENT_CACHE}
    timeout_ms = settings.database_statement_timeout_ms
    if service and timeout_ms:
        # A statement stuck behind a lock (a table locked by hand, a long migration) is
        # cancelled by the server and answered 503 with Retry-After (app.api.errors).
        connect_args["server_settings"] = {"statement_timeout": str(timeout_ms)}
    return create_async_engine(
        url, **common, pool_size=pool, max_overflow=pool, connect_args=connect_args
    )


STATEMENT_CACHE = 2048


# SQLSTATE classes and codes that mean "the store cannot serve this now; retry": connection
# exceptions (08), insufficient resources (53), operator intervention (57: shutting down,
# starting up, a statement cancelled by statement_timeout), rollbacks a retry resolves
# (40: deadlock, serialisation), a lock not available (55P03).
_UNAVAILABLE_CLASSES = ("08", "40", "53", "57")
_UNAVAILABLE_CODES = ("55P03",)


def store_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (a driver error, wrapped by SQLAlchemy or not) says the store is down,
    starting, stopping, overloaded or blocked, rather than that the statement is wrong."""
    seen: BaseException | None = exc
    for _ in range(6):  # SQLAlchemy -> adapter -> driver: a short chain
        if seen is None:
            return False
        if getattr(seen, "connection_invalidated", False):
            return True
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(state, str) and (
            state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_CODES
        ):
            return True
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        # asyncpg's own errors outside a statement: the connection dropped under it.
        if type(seen).__name__ in ("ConnectionDoesNotExistError", "InterfaceError") and (
            type(seen).__module__.startswith("asyncpg")
        ):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


async def without_statement_timeout(session: AsyncSession) -> None:
    """Lift DATABASE_STATEMENT_TIMEOUT_MS for this transaction (the scheduled purge's long
    deletes); nothing on SQLite."""
    if is_postgres(session):
        await session.execute(text("SET LOCAL statement_timeout = 0"))


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def dialect_of(session: AsyncSession) -> str:
    """The session's database: "postgresql" or "sqlite". Every session here comes from
    `create_sessionmaker` and so is bound; an unbound one is a programming error."""
    if session.bind is None:
        raise RuntimeError("unbound session: sessions come from create_sessionmaker")
    return session.bind.dialect.name


def is_postgres(session: AsyncSession) -> bool:
    return dialect_of(session) == "postgresql"


# An INSERT that takes ON CONFLICT clauses: PostgreSQL and SQLite spell them alike, SQLAlchemy
# has one class each (their shared methods type-check on the union).
Upsert = postgresql.Insert | sqlite.Insert


def upsert(table: _DMLTableArgument, dialect: str) -> Upsert:
    """An INSERT that takes ON CONFLICT clauses (`on_conflict_do_nothing`,
    `on_conflict_do_update`, `excluded`), built by the dialect's own construct."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table)


def upsert_for(session: AsyncSession, table: _DMLTableArgument) -> Upsert:
    """`upsert` in the session's dialect."""
    return upsert(table, dialect_of(session))


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession | Session, action: AfterCommit) -> None:
    """Queue `action` to run once the request's transaction has committed (a sync `Session`:
    from a session event hook; it shares `info` with its AsyncSession)."""
    session.info.setdefault("after_commit", []).append(action)


def per_transaction(sync: Session, key: str, make: Callable[[], _T]) -> _T:
    """An object `sync` keeps under `key` for its current transaction only: a new one (from
    `make`) once that transaction ends, committed or rolled back, so nothing a failed attempt
    gathered is seen by the next."""
    tx = sync.get_transaction()
    held = sync.info.get(key)
    if held is None or held[0] is not tx:
        held = sync.info[key] = (tx, make())
    found: _T = held[1]
    return found


def this_transactions(sync: Session, key: str) -> object | None:
    """What `per_transaction` keeps under `key` for the current transaction, or None."""
    held = sync.info.get(key)
    if held is None or held[0] is not sync.get_transaction():
        return None
    return held[1]  # type: ignore[no-any-return]


def pop_after_commit(session: AsyncSession) -> list[AfterCommit]:
    actions: list[AfterCommit] = session.info.pop("after_commit", [])
    return actions


async def run_after_commit(actions: list[AfterCommit]) -> None:
    # Stored is what counts: a failing side effect is logged and left to its own retry path
    # rather than turning a committed request into an error.
    for action in actions:
        try:
            await action()
        except Exception:
            log.exception("after-commit action failed")


@contextlib.asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends (rolled back if it raises), then the
    side effects queued with `after_commit`, in order."""
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            pop_after_commit(session)
            raise
        actions = pop_after_commit(session)
    await run_after_commit(actions)


async def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[_T]]) -> _T:
    """`work` in one committed transaction on an engine of its own (the command-line tools:
    no service, no pool to share); the engine is disposed of whatever happens."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


# The tables every webhook writes: a lock on one of them holds the whole ring -> screen path.
WEBHOOK_TABLES = ("call", "call_event", "outbox_message")


class StoreLocked(Exception):
    """A table the webhooks write is locked against writers (readiness says so)."""


async def ping(engine: AsyncEngine, lock_wait_ms: int = 200) -> None:
    """The store answers; on PostgreSQL, also that the webhooks' tables take writers (a
    ROW EXCLUSIVE lock, what INSERT and UPDATE take, granted within `lock_wait_ms`, then
    released): a table locked by hand or by a migration raises StoreLocked."""
    async with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            await conn.execute(text("SELECT 1"))
            return
        await conn.execute(text(f"SET LOCAL lock_timeout = {int(lock_wait_ms)}"))
        try:
            await conn.execute(
                text(f"LOCK TABLE {', '.join(WEBHOOK_TABLES)} IN ROW EXCLUSIVE MODE")
            )
        except DBAPIError as exc:
            if store_unavailable(exc) and "55P03" in str(getattr(exc.orig, "sqlstate", "")):
                raise StoreLocked("a table the webhooks write is locked") from None
            raise
        finally:
            await conn.rollback()


def migrations_dir() -> Path:
    """Beside the package in a source checkout; in the working directory for an installed
    wheel (the container image copies `migrations/` into its working directory)."""
    for candidate in (
        Path(__file__).resolve().parent.parent / "migrations",
        Path.cwd() / "migrations",
    ):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("no migrations/ folder beside the package or in the working directory")
