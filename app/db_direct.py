"""Small fixed statements sent straight through asyncpg, inside the session's transaction.

Around every statement it sends, SQLAlchemy spends about as much CPU as asyncpg spends
sending it (issue 19, measured on the bench machine: 0.40 ms a statement through the session
or a Core connection, 0.17 ms through asyncpg's prepared statement): for the few short
statements every call event runs (counters, the outbox, the audit chain's head), that is half
of what the event costs. `driver` gives those statements the asyncpg connection under the
session's open transaction, so they commit or roll back with everything else; None on SQLite
or before the transaction has begun, and the caller goes through SQLAlchemy as before. Values
are bound through the columns' own types (`insert_many`), so JSON and times are stored exactly
as SQLAlchemy stores them.

A failure raises what SQLAlchemy would have raised (`Direct`), and the session's rollback ends
the transaction as for any failed statement.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Executable, Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import await_

Processor = Callable[[Any], Any] | None


class Direct:
    """The asyncpg connection under a session's transaction. Its statements raise what
    SQLAlchemy's would (`sqlalchemy.exc.DBAPIError` and subclasses, `connection_invalidated`
    when the connection broke, which is then not reused): the store-unavailable handling,
    the 503 and the pool's recovery see no difference."""

    __slots__ = ("_adapter", "_dialect", "_fairy", "raw")

    def __init__(self, raw: asyncpg.Connection, fairy: Any, dialect: Dialect) -> None:
        self.raw = raw
        self._fairy = fairy
        self._adapter = fairy.dbapi_connection
        self._dialect = dialect

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    async def begin(self) -> Direct:
        if self._adapter._transaction is None:
            # BEGIN through SQLAlchemy's adapter, as its own first statement would: the
            # session's commit and rollback then end this transaction (one begun on the
            # asyncpg connection behind the adapter's back would never be committed).
            try:
                await self._adapter._start_transaction()
            except Exception as exc:
                raise self._translated(exc, "BEGIN") from exc
        return self

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return list(await self.raw.fetch(sql, *args))
        except Exception as exc:
            raise self._translated(exc, sql) from exc

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        found = await self.fetch(sql, *args)
        return found[0] if found else None

    async def execute(self, sql: str, *args: Any) -> None:
        try:
            await self.raw.execute(sql, *args)
        except Exception as exc:
            raise self._translated(exc, sql) from exc

    async def executemany(self, sql: str, args: list[tuple[Any, ...]]) -> None:
        try:
            await self.raw.executemany(sql, args)
        except Exception as exc:
            raise self._translated(exc, sql) from exc

    async def fetchmany(self, sql: str, args: list[tuple[Any, ...]]) -> list[asyncpg.Record]:
        try:
            return list(await self.raw.fetchmany(sql, args))
        except Exception as exc:
            raise self._translated(exc, sql) from exc

    def _translated(self, exc: Exception, sql: str) -> Exception:
        dbapi = self._dialect.loaded_dbapi
        if not isinstance(exc, dbapi.Error):
            try:
                self._adapter._handle_exception(exc)  # raises the DBAPI form of a driver error
            except Exception as dbapi_form:
                exc = dbapi_form
        if not isinstance(exc, dbapi.Error):
            return exc  # not the driver's (a bug here): as it is
        broken = self._dialect.is_disconnect(exc, self._fairy, None)
        if broken:
            self._fairy.invalidate(exc, soft=True)  # replaced at its next checkout
        return DBAPIError.instance(
            sql, None, exc, dbapi.Error, connection_invalidated=broken, dialect=self._dialect
        )


def _of(conn: Connection) -> Direct | None:
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "asyncpg":
        return None
    fairy = conn.connection
    raw = fairy.driver_connection
    if not isinstance(raw, asyncpg.Connection):
        return None
    return Direct(raw, fairy, conn.dialect)


_HELD = "db_direct"


async def driver(session: AsyncSession) -> Direct | None:
    """The asyncpg connection of `session`'s transaction (begun if it was not yet), or None
    (see the module). Found once per transaction."""
    sync_session = session.sync_session
    held = sync_session.info.get(_HELD)
    tx = sync_session.get_transaction()
    if held is not None and tx is not None and held[0] is tx:
        return cast(Direct | None, held[1])
    conn: AsyncConnection = await session.connection()
    sync = conn.sync_connection
    found = _of(sync) if sync is not None else None
    if found is not None:
        await found.begin()
    sync_session.info[_HELD] = (sync_session.get_transaction(), found)
    return found


def driver_sync(target: Session | Connection) -> Direct | None:
    """`driver` for code running inside SQLAlchemy's sync layer (session event hooks), from
    the session or its connection; run the statements with `wait`."""
    session = target if isinstance(target, Session) else None
    if session is not None:
        held = session.info.get(_HELD)
        tx = session.get_transaction()
        if held is not None and tx is not None and held[0] is tx:
            return cast(Direct | None, held[1])
        target = session.connection()
    assert isinstance(target, Connection)
    found = _of(target)
    if found is not None:
        wait(found.begin())
    if session is not None:
        session.info[_HELD] = (session.get_transaction(), found)
    return found


def wait(awaitable: Any) -> Any:
    """Await from SQLAlchemy's sync layer (a session hook runs in its greenlet)."""
    return await_(awaitable)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_INSERTS: dict[tuple[int, tuple[str, ...], tuple[str, ...]], tuple[str, list[Processor]]] = {}


def insert_sql(
    table: Table, columns: Sequence[str], dialect: Dialect, returning: Sequence[str] = ()
) -> tuple[str, list[Processor]]:
    """`INSERT INTO table (columns) VALUES ($1, ...) [RETURNING ...]` and each column's bind
    processor (its type's conversion for this dialect: JSON to text, times to UTC), built
    once per table, column list and dialect."""
    key = (id(dialect), tuple(columns), (table.name, *returning))
    found = _INSERTS.get(key)
    if found is None:
        cols = [table.c[name] for name in columns]
        names = ", ".join(_quoted(c.name) for c in cols)
        values = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        sql = f"INSERT INTO {_quoted(table.name)} ({names}) VALUES ({values})"
        if returning:
            sql += " RETURNING " + ", ".join(_quoted(name) for name in returning)
        found = _INSERTS[key] = (sql, [c.type.bind_processor(dialect) for c in cols])
    return found


def unnest_insert_sql(
    table: str,
    columns: Sequence[tuple[str, str]],
    first: int,
    returning: str = "",
    *,
    where: str = "",
    conflict: str = "",
) -> str:
    """`INSERT INTO table (...) SELECT ... FROM unnest($first::type[], ...)`: any number of
    rows in one statement, one array per column ((name, PostgreSQL type) pairs; a `jsonb`
    column is sent as text), inserted in the order given (so ids drawn from a sequence sort
    back into it). For a statement that also does something else: put it after a `WITH`.
    `where`: a condition on the whole insert (e.g. that an earlier CTE wrote its row);
    `conflict`: an `ON CONFLICT ...` clause."""
    names = ", ".join(name for name, _ in columns)
    picked = ", ".join(f"r.{name}::jsonb" if kind == "jsonb" else f"r.{name}"
                       for name, kind in columns)  # fmt: skip
    arrays = unnest_arrays(columns, first)
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {picked} FROM unnest({arrays})"
        f" WITH ORDINALITY AS r({names}, n)"
    )
    if where:
        sql += f" WHERE {where}"
    sql += " ORDER BY r.n"
    if conflict:
        sql += f" {conflict}"
    return sql + (f" RETURNING {returning}" if returning else "")


def unnest_arrays(columns: Sequence[tuple[str, str]], first: int) -> str:
    """`$first::type[], ...`: one array parameter per column (JSON sent as text)."""
    return ", ".join(
        f"${first + i}::{'text' if kind == 'jsonb' else kind}[]"
        for i, (_, kind) in enumerate(columns)
    )


def array_type(table: Table, name: str, dialect: Dialect) -> str:
    """The column's PostgreSQL type, as an element of `unnest`'s arrays (JSON sent as text)."""
    kind = table.c[name].type.compile(dialect=dialect).lower()
    return "jsonb" if kind in ("jsonb", "json") else kind


def bound(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
          processors: list[Processor]) -> list[tuple[Any, ...]]:  # fmt: skip
    """Each row's values in `columns` order, through the processors."""
    pairs = list(zip(columns, processors, strict=True))
    return [
        tuple(row[name] if proc is None else proc(row[name]) for name, proc in pairs)
        for row in rows
    ]


def _default_of(column: Any, onupdate: bool = False) -> Any:
    """A column's Python-side default (or on-update value), as SQLAlchemy computes it."""
    default = column.onupdate if onupdate else column.default
    if getattr(default, "is_scalar", False):
        return default.arg
    if getattr(default, "is_callable", False):
        return default.arg(None)  # wrapped by SQLAlchemy to take an execution context
    return None


_DEFAULTS: dict[tuple[str, tuple[str, ...]], list[tuple[str, Callable[[], Any]]]] = {}


def _defaults(table: Table, given: Sequence[str]) -> list[tuple[str, Callable[[], Any]]]:
    """The columns `given` leaves out that have a Python-side default, and how to make it
    (found once per table and column list: this runs for every insert on the hot path)."""
    key = (table.name, tuple(given))
    found = _DEFAULTS.get(key)
    if found is None:
        found = _DEFAULTS[key] = _find_defaults(table, given)
    return found


def _find_defaults(table: Table, given: Sequence[str]) -> list[tuple[str, Callable[[], Any]]]:
    out: list[tuple[str, Callable[[], Any]]] = []
    for column in table.columns:
        default = column.default
        if column.name in given or not (
            getattr(default, "is_scalar", False) or getattr(default, "is_callable", False)
        ):
            continue
        out.append((column.name, partial(_default_of, column)))
    return out


def with_defaults(
    table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[str], Sequence[Mapping[str, Any]]]:
    """The columns to insert (those of the rows, then those with a Python-side default the
    rows leave out) and the rows with those defaults filled in, as SQLAlchemy's insert does."""
    given = list(rows[0])
    defaults = _defaults(table, given)
    if defaults:
        rows = [{**row, **{name: make() for name, make in defaults}} for row in rows]
    return given + [name for name, _ in defaults], rows


async def insert_many(
    conn: Direct,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    dialect: Dialect,
    returning: Sequence[str] = (),
) -> list[asyncpg.Record]:
    """Insert `rows` (all with the same keys) in one round trip (asyncpg pipelines a prepared
    statement's executions); with `returning`, each row's returned values, in `rows` order."""
    if not rows:
        return []
    columns, rows = with_defaults(table, rows)
    sql, processors = insert_sql(table, columns, dialect, returning)
    args = bound(rows, columns, processors)
    if returning:
        return await conn.fetchmany(sql, args)
    await conn.executemany(sql, args)
    return []


@dataclass(frozen=True)
class _Compiled:
    compiled: SQLCompiler
    row: type[tuple[Any, ...]] | None  # a named tuple of the result's columns
    results: tuple[Processor, ...]
    # Without IN lists the text never changes: each positional parameter's key, its value
    # when the statement carries one, its Python-side default (a column) and its processor.
    fixed: tuple[tuple[str, Any, Any, Processor], ...] | None
    # The names of its IN lists (`_shape`); None when one is a list of tuples (a tuple IN)
    # or a value is made at each run: then SQLAlchemy expands it on every run.
    lists: frozenset[str] | None


def _lists_of(compiled: SQLCompiler) -> frozenset[str] | None:
    names = []
    for bind, name in compiled.bind_names.items():
        if bind.callable is not None or bind.literal_execute:
            return None  # a value made at each run, or rendered into the text
        if bind.expanding:
            if getattr(bind.type, "_is_tuple_type", False):
                return None
            names.append(name)
    return frozenset(names)


_REQUIRED = object()


def _fixed_plan(compiled: SQLCompiler) -> tuple[tuple[str, Any, Any, Processor], ...] | None:
    if compiled.positiontup is None:
        return None
    binds = {compiled.bind_names[b]: b for b in compiled.bind_names}
    prefetch = {c.key: (c, False) for c in compiled.insert_prefetch}
    prefetch.update({c.key: (c, True) for c in compiled.update_prefetch})
    plan: list[tuple[str, Any, Any, Processor]] = []
    for name in compiled.positiontup:
        bind = binds.get(name)
        if bind is None or bind.expanding or bind.callable is not None or bind.literal_execute:
            return None
        value = _REQUIRED if bind.required else bind.value
        proc = cast(Processor, compiled._bind_processors.get(name))
        plan.append((bind.key, value, prefetch.get(bind.key), proc))
    return tuple(plan)


# Statements are built once at import (module constants), so they are kept here by identity,
# with a strong reference (an id is never reused while its object lives).
_COMPILED: dict[tuple[int, int], tuple[Executable, _Compiled]] = {}


def _compile(stmt: Executable, dialect: Dialect) -> _Compiled:
    key = (id(stmt), id(dialect))
    held = _COMPILED.get(key)
    if held is None:
        compiled = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        columns = list(getattr(stmt, "exported_columns", ()))
        row: type[tuple[Any, ...]] | None = None
        results: tuple[Processor, ...] = ()
        if columns:
            names = [c.key if isinstance(c.key, str) else f"c{i}" for i, c in enumerate(columns)]
            row = namedtuple("Row", names, rename=True)  # type: ignore[misc,no-redef]  # noqa: PYI024
            results = tuple(c.type.result_processor(dialect, None) for c in columns)
        done = _Compiled(compiled, row, results, _fixed_plan(compiled), _lists_of(compiled))
        held = _COMPILED[key] = (stmt, done)
    return held[1]


def _args(done: _Compiled, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The statement's text for these parameters (IN lists expanded) and its positional
    values, each through its type's bind processor (as SQLAlchemy's execution does)."""
    compiled = done.compiled
    if done.fixed is not None:
        out: list[Any] = []
        for key, value, default, proc in done.fixed:
            if key in params:
                value = params[key]
            elif default is not None:
                value = _default_of(default[0], onupdate=default[1])
            elif value is _REQUIRED:
                raise KeyError(f"a value is required for bind parameter {key!r}")
            out.append(value if proc is None else proc(value))
        return compiled.string, tuple(out)
    given = dict(params)
    for column in compiled.insert_prefetch:  # Python-side defaults SQLAlchemy would fill
        if column.key not in given:
            given[column.key] = _default_of(column)
    for column in compiled.update_prefetch:
        if column.key not in given:
            given[column.key] = _default_of(column, onupdate=True)
    if done.lists is None:
        return _expanded_now(compiled, given)
    shape = _shape(done, given)
    out = []
    for name, index, value, proc in shape.plan:
        if name is not None:
            value = given[name] if index is None else given[name][index]
        out.append(value if proc is None else proc(value))
    return shape.statement, tuple(out)


def _expanded_now(compiled: SQLCompiler, given: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    state = compiled.construct_expanded_state(given)
    assert state.positiontup is not None
    procs: Mapping[str, Any] = {**compiled._bind_processors, **state.processors}
    values = state.parameters
    out = []
    for name in state.positiontup:
        proc = procs.get(name)
        out.append(values[name] if proc is None else proc(values[name]))
    return state.statement, tuple(out)


@dataclass(frozen=True)
class _Mark:
    key: str
    index: int | None


@dataclass(frozen=True)
class _Shape:
    """A statement's text with its IN lists expanded to given lengths, and where each
    positional value comes from: (parameter, index in its list or None, the statement's own
    value when the parameter is None, bind processor)."""

    statement: str
    plan: tuple[tuple[str | None, int | None, Any, Processor], ...]


# SQLAlchemy's expansion of IN lists costs more than the statement's round trip; the text
# depends only on the lists' lengths, so it is worked out once per statement and lengths.
_SHAPES: dict[tuple[Any, ...], _Shape] = {}
_SHAPES_MAX = 4096  # lengths vary with the data: bounded, cleared when full


def _shape(done: _Compiled, given: Mapping[str, Any]) -> _Shape:
    lists = done.lists
    assert lists is not None
    key = (id(done), *given, *(len(given[name]) for name in lists if name in given))
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _expand(done.compiled, lists, given)
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        _SHAPES[key] = shape
    return shape


def _expand(compiled: SQLCompiler, lists: frozenset[str], given: Mapping[str, Any]) -> _Shape:
    """SQLAlchemy's own expansion, run on markers instead of values to learn the plan."""
    marked = {
        name: [_Mark(name, i) for i in range(len(value))] if name in lists else _Mark(name, None)
        for name, value in given.items()
    }
    state = compiled.construct_expanded_state(marked)
    assert state.positiontup is not None
    # The statement's own processors (the expanded state holds only the IN lists' ones).
    procs: Mapping[str, Any] = (
        {**compiled._bind_processors, **state.processors}
        if state.processors
        else compiled._bind_processors
    )
    plan: list[tuple[str | None, int | None, Any, Processor]] = []
    for name in state.positiontup:
        proc = cast(Processor, procs.get(name))
        mark = state.parameters[name]
        if isinstance(mark, _Mark):
            plan.append((mark.key, mark.index, None, proc))
        else:  # a value the statement carries (a literal built into it)
            plan.append((None, None, mark, proc))
    return _Shape(state.statement, tuple(plan))


def _rows(done: _Compiled, records: Sequence[asyncpg.Record]) -> list[Any]:
    row = done.row
    if row is None:
        return []
    results = done.results
    return [
        row(*(v if p is None else p(v) for v, p in zip(rec, results, strict=True)))
        for rec in records
    ]


async def rows_on(
    direct: Direct, dialect: Dialect, stmt: Executable, params: Mapping[str, Any]
) -> list[Any]:
    """`rows` for one parameter set on a connection held outside any session (`autocommit`)."""
    done = _compile(stmt, dialect)
    sql, args = _args(done, params)
    return _rows(done, await direct.fetch(sql, *args))


@contextlib.asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[Direct | None]:
    """A pooled connection's asyncpg connection with no transaction begun: each statement
    commits on its own (a single statement is atomic however many rows and tables it writes).
    None on SQLite. Returned to the pool when the block ends, as any connection is."""
    async with engine.connect() as conn:
        sync = conn.sync_connection
        yield _of(sync) if sync is not None else None


# What reads run on: a session (in its transaction), or a connection held outside any
# session (`autocommit`: the express path's reads, app.calls.express).
Reader = AsyncSession | Direct


async def rows(
    session: Reader,
    stmt: Executable,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> list[Any]:
    """Run a Core statement built once (a module constant) and return its rows as named
    tuples (attribute access, as SQLAlchemy's `Row`): straight through asyncpg on PostgreSQL
    (one round trip, also for a list of parameter sets: pipelined, rows in their order),
    through the session elsewhere. On a `Direct` connection: one parameter set."""
    if isinstance(session, Direct):
        assert params is None or isinstance(params, Mapping)
        return await rows_on(session, session.dialect, stmt, params or {})
    direct = await driver(session)
    if direct is None:
        result = await session.execute(stmt, params)
        return list(result.all()) if getattr(result, "returns_rows", True) else []
    done = _compile(stmt, session.get_bind().dialect)
    if not isinstance(params, Mapping) and params is not None and len(params) == 1:
        params = params[0]  # one set: a plain execution (asyncpg's batch path costs more)
    if params is None or isinstance(params, Mapping):
        return await rows_on(direct, session.get_bind().dialect, stmt, params or {})
    if not params:
        return []
    batches = [_args(done, p) for p in params]
    sql = batches[0][0]
    if any(other != sql for other, _ in batches):  # IN lists of different lengths
        out: list[Any] = []
        for text, args in batches:
            out += _rows(done, await direct.fetch(text, *args))
        return out
    if done.row is None:
        await direct.executemany(sql, [args for _, args in batches])
        return []
    return _rows(done, await direct.fetchmany(sql, [args for _, args in batches]))


__all__ = [
    "Direct", "Reader", "array_type", "autocommit", "bound", "driver", "driver_sync",
    "insert_many", "insert_sql", "rows", "rows_on", "unnest_arrays", "unnest_insert_sql",
    "wait", "with_defaults",
]  # fmt: skip
