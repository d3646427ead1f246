"""Test fixtures on real backends.

`pytest --backend=embedded` (default): SQLite file + in-process cache/broker.
`pytest --backend=production`: a fresh PostgreSQL database for the run + real Redis (a key
prefix of its own). Every test that takes the `settings` fixture is marked `storage`, and the
test command runs those twice, once per backend, except the browser tests (marked `browser`),
which it runs once (scripts/test_passes.py says where). Each test starts from empty tables and an
empty Redis prefix. If PostgreSQL or Redis cannot be reached the run stops with an error: it
never skips.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import migrate
from app.audit.chain import HEAD_ID
from app.audit.models import GENESIS
from app.auth import service as auth
from app.auth.models import Role
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.models import Base
from tests.support.servers import ServiceProcess

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TELEPHONY_SECRET = "test-telephony-secret-0123456789"
SESSION_SECRET = "test-session-secret-0123456789abcdef"

T = TypeVar("T")


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop, whatever loop this thread has."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[no-any-return]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("embedded", "production"),
        default=os.environ.get("FC_TEST_BACKEND", "embedded"),
        help="embedded: SQLite + in-process; production: PostgreSQL + Redis",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "settings" in fixtures:
            item.add_marker(pytest.mark.storage)
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)


def pytest_report_header(config: pytest.Config) -> str:
    return f"firstcontact backend: {config.getoption('--backend')}"


def _check_production_servers() -> None:
    async def pg() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        run_in_thread(pg())
    except Exception as exc:
        pytest.exit(f"PostgreSQL unreachable at {PG_ADMIN_DSN}: {exc!r}", returncode=3)
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        pytest.exit(f"Redis unreachable at {TEST_REDIS_URL}: {exc!r}", returncode=3)


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> str:
    value: str = pytestconfig.getoption("--backend")
    return value


def base_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "telephony_secret": TELEPHONY_SECRET,
        "session_secret": SESSION_SECRET,
        "log_json": True,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def run_settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The backend for the whole run, migrated once."""
    tag = uuid.uuid4().hex[:10]
    if backend == "embedded":
        path = tmp_path_factory.mktemp("db") / "firstcontact.db"
        settings = base_settings(database_url=f"sqlite+aiosqlite:///{path}", redis_url=None)
        migrate.upgrade(settings)
        yield settings
        return

    _check_production_servers()
    db_name = f"fc_test_{tag}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{db_name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_in_thread(create())
    host_part = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    settings = base_settings(
        database_url=f"postgresql+asyncpg://{host_part}/{db_name}",
        redis_url=TEST_REDIS_URL,
        redis_prefix=f"fctest:{tag}:",
    )
    try:
        migrate.upgrade(settings)
        yield settings
    finally:
        _flush_redis_prefix(settings)
        run_in_thread(drop())


def _flush_redis_prefix(settings: Settings) -> None:
    if not settings.redis_url:
        return
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=settings.redis_prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture(scope="session")
async def cleaning_engine(run_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(run_settings)
    yield engine
    await engine.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Only what the last test used is emptied: the tables holding rows and the
            # sequences drawn from since they were last reset. The rows are deleted and the
            # sequences set back rather than truncated: TRUNCATE rewrites each table's and
            # index's files, which cost a test's setup 0.1-0.5 s where DELETE of a few rows
            # costs milliseconds.
            used = await conn.execute(
                text(
                    " UNION ALL ".join(
                        f"SELECT '{t}', NULL WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables
                    )
                    + " UNION ALL SELECT NULL, quote_ident(s.schemaname) || '.'"
                    " || quote_ident(s.sequencename) FROM pg_sequences s"
                    " WHERE s.last_value IS NOT NULL"
                )
            )
            rows = used.all()
            dirty = {table for table, _ in rows if table is not None}
            statements = [f'DELETE FROM "{t}"' for t in reversed(tables) if t in dirty]
            statements += [f"SELECT setval('{seq}', 1, false)" for _, seq in rows if seq]
            # The chain's head as the migration leaves it (a test of a database without it
            # deletes it itself).
            statements.append(
                "INSERT INTO audit_chain_head (id, seq, hash, base_seq, base_hash)"
                f" VALUES ({HEAD_ID}, 0, '{GENESIS}', 0, '{GENESIS}') ON CONFLICT (id) DO NOTHING"
            )
            raw = await conn.get_raw_connection()
            # One round trip: the simple query protocol takes several statements.
            await raw.driver_connection.execute(";".join(statements))  # type: ignore[union-attr]
        else:
            for table in reversed(tables):
                await conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
async def settings(run_settings: Settings, cleaning_engine: AsyncEngine) -> Settings:
    """The run's backend, emptied for this test. Taking it marks the test `storage`."""
    await truncate_all(cleaning_engine)
    _flush_redis_prefix(run_settings)
    return run_settings


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        application.state.asgi = manager.app
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app.state.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


MakeStaff = Callable[..., Awaitable[str]]


@pytest.fixture
def make_staff(settings: Settings) -> MakeStaff:
    """`await make_staff("H1", Role.handler)` -> a fresh bearer token for that staff member."""

    async def make(staff_id: str, role: Role = Role.handler, name: str | None = None) -> str:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                from app.auth.models import Staff

                if await session.get(Staff, staff_id) is None:
                    await auth.create_staff(
                        session, staff_id=staff_id, name=name or f"Test {staff_id}",
                        role=role, actor="test",
                    )  # fmt: skip
                return await auth.issue_token(session, staff_id, actor="test")
        finally:
            await engine.dispose()

    return make


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a `firstcontact` subprocess: this one's, without its store and
    secrets settings, with the tests' secrets and `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "TELEPHONY_", "SESSION_"))
    }
    env.update(
        ENV="test",
        TELEPHONY_SECRET=TELEPHONY_SECRET,
        SESSION_SECRET=SESSION_SECRET,
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `firstcontact` subprocess needs to run on this test's backend."""
    backend = {"DATABASE_URL": settings.database_url, "REDIS_PREFIX": settings.redis_prefix}
    if settings.redis_url:
        backend["REDIS_URL"] = settings.redis_url
    return process_env(**{**backend, **extra})


@pytest.fixture
def live_service(settings: Settings) -> Iterator[Callable[..., ServiceProcess]]:
    """Start real `firstcontact serve` processes on this test's backend; stopped after."""
    started: list[ServiceProcess] = []

    def start(workers: int = 1, cwd: Path | None = None, **env: str) -> ServiceProcess:
        proc = ServiceProcess(env=service_env(settings, **env), workers=workers)
        if cwd is not None:
            proc.cwd = cwd
        started.append(proc.start())
        return proc

    yield start
    for proc in started:
        proc.stop()
