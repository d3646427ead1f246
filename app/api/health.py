"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.cache import Cache, CacheUnavailable
from app.db import StoreLocked, ping

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving; says nothing of its dependencies."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the database (and Redis, if configured) answer; 503 naming what does not."""
    checks: dict[str, dict[str, str]] = {}
    ready = True
    try:
        await asyncio.wait_for(ping(request.state.engine), CHECK_TIMEOUT)
        checks["database"] = {"status": "ok", "backend": request.state.engine.dialect.name}
    except StoreLocked:
        # Writes would wait (then fail with 503 after DATABASE_STATEMENT_TIMEOUT_MS).
        ready = False
        checks["database"] = {"status": "unavailable", "reason": "locked"}
    except Exception as exc:  # any failure to answer is "not ready", whatever its type
        ready = False
        checks["database"] = {"status": "unavailable", "reason": type(exc).__name__}
    cache: Cache = request.state.cache
    if cache.name == "redis":
        try:
            await asyncio.wait_for(cache.ping(), CHECK_TIMEOUT)
            checks["redis"] = {"status": "ok"}
        except (CacheUnavailable, TimeoutError) as exc:
            ready = False
            checks["redis"] = {"status": "unavailable", "reason": type(exc).__name__}
    else:
        checks["cache"] = {"status": "ok", "backend": cache.name}
    if ready:
        return JSONResponse({"status": "ready", "checks": checks})
    failing = sorted(name for name, check in checks.items() if check["status"] != "ok")
    return JSONResponse(
        {
            "status": "unavailable",
            "checks": checks,
            "error": {
                "code": "not_ready",
                "message": "not reachable: " + ", ".join(failing),
                "details": failing,
            },
        },
        status_code=503,
    )
