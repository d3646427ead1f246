"""The long-lived resources of one process, built by the lifespan in `app.main`.

Routers reach them through `request.state.resources` (dependencies in `app.api.deps`);
background tasks get them passed in. Add a field here when a domain needs a new resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cache import Cache
from app.config import Settings


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: Cache
    # Filled by later domains (broker, rule packs, pipeline) as they arrive.
    extras: dict[str, Any] = field(default_factory=dict)
