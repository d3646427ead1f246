"""`GET /metrics`: Prometheus text format, for the force's monitoring.

Who may scrape: not staff (a scraper is a machine, and a staff login would put a person's
credential in a Prometheus config), but whoever holds METRICS_TOKEN (`Authorization: Bearer`,
Prometheus's `authorization: credentials_file`) or connects from METRICS_ALLOW_IPS. Neither
configured: 404, so that a deployment that did not ask for metrics shows none. The numbers
carry no personal data, but they do show the force's call volumes and its outages: not public.
The route is not in the OpenAPI document (it is not part of the API staff and platforms use).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import ResourcesDep
from app.calls.backlog import backlog
from app.config import Settings
from app.db import utcnow
from app.errors import AppError, Forbidden, NotAuthenticated
from app.metrics import tally
from app.metrics.exposition import CONTENT_TYPE, Backlog, Levels, render
from app.realtime.outbox import outbox_backlog
from app.resources import Resources

log = logging.getLogger(__name__)
router = APIRouter(tags=["metrics"], include_in_schema=False)

# A scrape-time query that takes longer than this is left out of the scrape (the series is
# absent) rather than holding the scrape and a pooled connection.
QUERY_TIMEOUT = 2.0

Probe = Callable[[AsyncSession], Awaitable[Backlog | None]]


async def pipeline_probe(session: AsyncSession) -> Backlog | None:
    count, oldest = await backlog(session)
    age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
    return Backlog(count, age)


async def outbox_probe(session: AsyncSession) -> Backlog | None:
    """Frames committed and not yet published (app.realtime.outbox), and the oldest's age."""
    count, age = await outbox_backlog(session)
    return Backlog(count, age or 0.0)


OUTBOX_PROBE: Probe | None = outbox_probe


class MetricsNotConfigured(AppError):
    status, code = 404, "metrics_not_configured"


@lru_cache(maxsize=8)
def _networks(allow: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    items = [item.strip() for item in allow.split(",")]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items if item)


def check_scraper(request: Request, settings: Settings) -> None:
    """Raise unless the request may scrape (see the module's docstring)."""
    token = settings.metrics_token
    networks = _networks(settings.metrics_allow_ips)
    if token is None and not networks:
        raise MetricsNotConfigured("metrics are off: set METRICS_TOKEN or METRICS_ALLOW_IPS")
    if token is not None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), token.get_secret_value().encode()
        ):
            return
    if networks and request.client is not None:
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            address = None
        if address is not None and any(address in network for network in networks):
            return
    if token is not None:
        raise NotAuthenticated("a scrape needs the metrics bearer token")
    raise Forbidden("this address may not scrape metrics")


async def _measure(resources: Resources, probe: Probe | None, what: str) -> Backlog | None:
    if probe is None:
        return None
    try:
        async with resources.sessions() as session:
            return await asyncio.wait_for(probe(session), QUERY_TIMEOUT)
    except Exception as exc:  # the store away or slow: that series is absent this scrape
        log.warning("metrics: %s level not read", what, extra={"error": type(exc).__name__})
        return None


@router.get("/metrics")
async def metrics(request: Request, resources: ResourcesDep) -> Response:
    """Every worker's counters and the backlogs, in Prometheus text format."""
    check_scraper(request, resources.settings)
    if resources.metrics is not None:
        resources.metrics.flush_now()  # this worker's counts up to now
    else:
        tally.flush()
    levels = Levels(
        pipeline=await _measure(resources, pipeline_probe, "pipeline"),
        outbox=await _measure(resources, OUTBOX_PROBE, "outbox"),
    )
    return Response(render(levels), media_type=CONTENT_TYPE)
