"""The application factory. Resources live in the lifespan, never at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app import __version__
from app.api import audit, errors, health, staff
from app.api.limits import BodySizeLimit
from app.cache import create_cache
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.logs import mask_phone_numbers
from app.resources import Resources

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        engine = create_engine(settings)
        cache = create_cache(settings)
        log.info(
            "starting",
            extra={
                "database": engine.dialect.name,
                "cache": cache.name,
                "redis": mask_phone_numbers(settings.redis_url or "none"),
            },
        )
        resources = Resources(
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
            cache=cache,
        )
        try:
            yield {
                "resources": resources,
                "settings": settings,
                "engine": engine,
                "sessions": resources.sessions,
                "cache": cache,
            }
        finally:
            await cache.close()
            await engine.dispose()
            log.info("stopped")

    app = FastAPI(
        title="firstcontact",
        version=__version__,
        summary="Call-taker assist: caller and household context pushed before hello.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(
        BodySizeLimit,
        default=settings.max_body,
        prefixes={"/api/v1/telephony": settings.telephony_max_body},
    )
    app.include_router(health.router)
    app.include_router(staff.router)
    app.include_router(audit.router)
    return app
