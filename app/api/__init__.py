"""HTTP and WebSocket routers: thin, one per resource.

`api_router` mounts the versioned API under `/api/v1` once; each resource's router names only
its own part of the path. The health checks and `/ws` stay at the root.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from app.api import (
    alerts,
    audit,
    calls,
    history,
    qa,
    rules,
    staff,
    subjects,
    telephony,
    thrive,
    training,
)
from app.api.lane import Lane

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
# Registration order is matching order: keep it as it was when each router carried the prefix.
for _module in (
    staff, audit, history, alerts, telephony, calls, thrive, subjects, qa, training, rules,
):  # fmt: skip
    api_router.include_router(_module.router)


def install_hot_routes(app: FastAPI) -> None:
    """Routes every request per call event takes, ahead of all others (see
    `telephony.hot_routes`)."""
    app.router.routes[0:0] = telephony.hot_routes(API_PREFIX)


def install_lane(app: FastAPI) -> None:
    """The webhook's requests past the framework's layers (`app.api.lane`); an app whose
    class has no place for it (a plain FastAPI) keeps the hot routes only."""
    if hasattr(app, "lane"):
        app.lane = Lane(app, telephony.lane_endpoints(API_PREFIX))


__all__ = ["API_PREFIX", "api_router", "install_hot_routes", "install_lane"]
