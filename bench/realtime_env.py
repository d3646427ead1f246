"""Shared set-up of the real-time benchmarks: a fresh PostgreSQL database (migrated) and a Redis
key prefix of their own, staff with tokens, the service under uvicorn."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from app import migrate
from app.auth import service as auth
from app.auth.models import Role
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from tests.support.servers import ServiceProcess

PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "bench-telephony-secret-0123456789"


async def admin_sql(sql: str, database: str | None = None) -> None:
    """Run `sql` as the admin user, on `database` (default: the admin DSN's)."""
    dsn = PG_ADMIN_DSN if database is None else PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def bench_backend(
    database_url: str | None = None, template: str | None = None
) -> Iterator[Settings]:
    """A fresh migrated database (dropped after) unless `database_url` names a loaded one;
    `template`: the fresh database is a copy of that one (a history loaded once, see
    bench/ring_to_screen/history.py), so every run starts from the same rows."""
    tag = uuid.uuid4().hex[:8]
    name = f"fc_bench_{tag}"
    host = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]

    if database_url is None:
        # FILE_COPY: the copy's files are written and checkpointed here, before the run. The
        # default (WAL_LOG, PostgreSQL 15) writes the whole copy (390 MB at 1M contacts) to
        # the WAL and leaves its pages dirty, and the checkpoints that follow land in the
        # first minutes of the run (its first steps measured PostgreSQL, not the service).
        source = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        asyncio.run(admin_sql(f'CREATE DATABASE "{name}"{source}'))
        if template:
            asyncio.run(admin_sql("CHECKPOINT"))
    settings = Settings(
        env="test",
        database_url=database_url or f"postgresql+asyncpg://{host}/{name}",
        redis_url=REDIS_URL,
        redis_prefix=f"fcbench:{tag}:",
        telephony_secret=SECRET,
        session_secret="bench-session-secret-0123456789",
    )
    try:
        migrate.upgrade(settings)
        yield settings
    finally:
        if database_url is None:
            asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=settings.redis_prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()


async def make_handlers(settings: Settings, ids: list[str]) -> dict[str, str]:
    """Handler accounts (created if missing) and a fresh token each."""
    engine = create_engine(settings)
    tokens: dict[str, str] = {}
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            from app.auth.models import Staff

            for staff_id in ids:
                if await session.get(Staff, staff_id) is None:
                    await auth.create_staff(
                        session, staff_id=staff_id, name=f"Bench {staff_id}",
                        role=Role.handler, actor="bench",
                    )  # fmt: skip
                tokens[staff_id] = await auth.issue_token(session, staff_id, actor="bench")
    finally:
        await engine.dispose()
    return tokens


def start_service(settings: Settings, workers: int = 1, **extra: str) -> ServiceProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        ENV="test",
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url or "",
        REDIS_PREFIX=settings.redis_prefix,
        TELEPHONY_SECRET=SECRET,
        SESSION_SECRET="bench-session-secret-0123456789",
        LOG_LEVEL="WARNING",
        # Benchmark clients do not answer heartbeats for the length of a run.
        WS_IDLE_TIMEOUT="3600",
        WS_HEARTBEAT_SECONDS="600",
    )
    env.update(extra)
    return ServiceProcess(env=env, workers=workers).start()
