"""Liveness and readiness on both backends; Redis going away is named, the process stays."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from app.config import Settings
from tests.support.servers import ServiceProcess, throwaway_redis, wait_until


async def test_healthz_and_readyz(client: httpx.AsyncClient, settings: Settings) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    if settings.is_sqlite:
        assert checks["database"]["backend"] == "sqlite"
        assert checks["cache"]["backend"] == "in-process"
    else:
        assert checks["database"]["backend"] == "postgresql"
        assert checks["redis"]["status"] == "ok"


def test_readyz_names_redis_when_it_stops(
    settings: Settings, live_service: Callable[..., ServiceProcess]
) -> None:
    with throwaway_redis() as redis_server:
        service = live_service(REDIS_URL=redis_server.url)
        ready = httpx.get(service.url + "/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["redis"]["status"] == "ok"

        redis_server.stop()

        def not_ready() -> bool:
            return httpx.get(service.url + "/readyz", timeout=5).status_code == 503

        wait_until(not_ready, 10, what="readyz to report Redis down")
        body = httpx.get(service.url + "/readyz", timeout=5).json()
        assert body["checks"]["redis"]["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "ok"
        assert "redis" in body["error"]["message"]
        # The process stays up and says so.
        assert httpx.get(service.url + "/healthz", timeout=5).status_code == 200

        redis_server.start()
        wait_until(
            lambda: httpx.get(service.url + "/readyz", timeout=5).status_code == 200,
            15,
            what="readyz to recover once Redis is back",
        )
