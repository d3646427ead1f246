"""Telephony webhooks: one route per provider adapter, all ending in the same ingest.

Each route checks the provider's authentication on the raw bytes, turns the request into a
canonical `CallEvent` (the adapter), stores it (the call service) and answers 2xx only once
the transaction has committed. The pipeline's steps run in that same transaction
(`Pipeline.accept`; single events that arrive together under load share one, through
`Pipeline.accept_many`: app.calls.grouping); what they publish goes out right after the
commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.api.deps import IntegrationClient, ResourcesDep, SessionDep
from app.calls import service as calls
from app.correlation import CALL_ID
from app.db import unit_of_work
from app.errors import AppError
from app.metrics.catalogue import EVENTS, RING_TO_PUBLISH
from app.resources import Resources
from app.telephony import canonical, cti, signature, twilio
from app.telephony.events import CallEvent

log = logging.getLogger(__name__)
router = APIRouter(prefix="/telephony", tags=["telephony"])


class Accepted(BaseModel):
    status: str = "accepted"
    call_id: int  # the service's own call id
    state: str  # the call's state right after this event


@contextmanager
def _counted(source: str) -> Iterator[None]:
    """Count a webhook refused (4xx: bad signature, not an event) or not stored (503)."""
    try:
        yield
    except AppError as exc:
        EVENTS.inc(source, "unavailable" if exc.status == 503 else "rejected")
        raise
    except Exception:  # the store down (answered 503 by app.api.errors) or a bug (500)
        EVENTS.inc(source, "unavailable")
        raise


async def _accept(
    resources: Resources, source: str, event: CallEvent, raw: bytes, arrived: float
) -> JSONResponse:
    grouped = resources.ingest
    if grouped is not None:
        # Stored and processed in one transaction (shared with the events that arrived
        # alongside it, under load); published and committed before this answer.
        outcome = await grouped.accept(source, event, raw)
    else:  # no processing in this process (tools, drills): stored for a sweeper
        settings = resources.settings
        async with unit_of_work(resources.sessions) as session:
            outcome = await calls.ingest(
                session,
                source=source,
                event=event,
                raw=raw,
                region=settings.default_region,
                lease_seconds=settings.pipeline_lease_seconds,
            )
    CALL_ID.set(outcome.call_id)  # this request's later log lines name the call
    if outcome.duplicate:
        # The original outcome again; the event is stored (and processed) once.
        EVENTS.inc(source, "replay")
        return JSONResponse(
            outcome.body(), status_code=200, headers={"Idempotent-Replayed": "true"}
        )
    EVENTS.inc(source, "accepted")
    if grouped is not None and event.type == "ringing":
        # Processed and published before `accept` returned (the webhook's own path).
        RING_TO_PUBLISH.observe(time.perf_counter() - arrived)
    # DEBUG: the stored event is the record of it; a line per event at INFO cost more CPU
    # than the floor spends on a whole request (issue 19).
    log.debug(
        "event accepted",
        extra={"source": source, "call": outcome.call_id, "type": event.type.value},
    )
    return JSONResponse(outcome.body(), status_code=202)


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": Accepted, "description": "a replay: the original outcome"},
    202: {"model": Accepted, "description": "stored"},
    400: {"description": "not UTF-8, not JSON / form"},
    401: {"description": "bad or missing signature / token (with a reason)"},
    413: {"description": "body over TELEPHONY_MAX_BODY"},
    422: {"description": "not a valid event"},
    503: {"description": "the database cannot be reached: nothing stored, send it again"},
}


@router.post("/events", status_code=202, responses=_RESPONSES)
async def canonical_event(request: Request, resources: ResourcesDep) -> JSONResponse:
    """A signed canonical event (`X-Signature-Timestamp`, `X-Signature`)."""
    arrived = time.perf_counter()
    with _counted(canonical.SOURCE):
        raw = await request.body()
        signature.verify(request.headers, raw, resources.settings.telephony_secrets())
        event = canonical.parse(raw)
        return await _accept(resources, canonical.SOURCE, event, raw, arrived)


async def canonical_event_plain(request: Request) -> Response:
    """`canonical_event` as a plain Starlette endpoint (see `hot_routes`)."""
    return await canonical_event(request, request.state.resources)


def hot_routes(prefix: str) -> list[BaseRoute]:
    """The canonical webhook as a plain route, to be matched before everything else.

    FastAPI (0.16x) matches a request through its nested included routers at about 0.2 ms a
    request: a quarter of the CPU an event may cost (issue 19). A Starlette route is one
    regex. Same endpoint, same errors (raised to the app's handlers), same middleware; the
    FastAPI route stays for the OpenAPI document and for the other methods' 405."""
    path = prefix + router.prefix + "/events"
    return [Route(path, canonical_event_plain, methods=["POST"], include_in_schema=False)]


def lane_endpoints(prefix: str) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The webhook's paths served by `app.api.lane` (POST only), and their endpoints."""
    return {prefix + router.prefix + "/events": canonical_event_plain}


class BatchResult(BaseModel):
    index: int  # the event's position in the batch
    status: str  # accepted | replay (the original outcome) | invalid (not stored)
    event_id: str | None = None
    call_id: int | None = None
    state: str | None = None
    error: dict[str, object] | None = None  # invalid: code and details (never the values)


class BatchOutcome(BaseModel):
    accepted: int
    replayed: int
    invalid: int
    results: list[BatchResult]


@router.post(
    "/events/batch",
    status_code=200,
    response_model=BatchOutcome,
    responses={
        200: {"description": "every event accepted, replayed or refused on its own"},
        400: {"description": "not UTF-8, not JSON, not an array"},
        401: {"description": "bad or missing signature (with a reason)"},
        413: {"description": "over TELEPHONY_MAX_BATCH events or TELEPHONY_MAX_BATCH_BODY bytes"},
        422: {"description": "an empty batch"},
    },
)
async def canonical_batch(
    request: Request, session: SessionDep, resources: ResourcesDep
) -> BatchOutcome:
    """Many signed canonical events in one request (a JSON array, signed as one body).

    Each event is accepted, replayed (its original outcome) or refused as invalid on its own;
    the accepted ones are committed, in one transaction, before the answer, and processed in
    order per call as single events are.
    """
    with _counted(canonical.SOURCE):
        raw = await request.body()
        settings = resources.settings
        signature.verify(request.headers, raw, settings.telephony_secrets())
        items = canonical.parse_batch(raw, settings.telephony_max_batch)
        return await _batch(session, resources, items)


async def _batch(
    session: AsyncSession, resources: Resources, items: list[canonical.BatchItem]
) -> BatchOutcome:
    settings = resources.settings
    valid = [(item.event, item.raw) for item in items if item.event is not None]
    pipeline = resources.pipeline
    if pipeline is not None:
        outcomes = await pipeline.accept_many(session, source=canonical.SOURCE, events=valid)
    else:  # no processing in this process (tools, drills): stored for a sweeper
        outcomes = [
            await calls.ingest(
                session,
                source=canonical.SOURCE,
                event=event,
                raw=own,
                region=settings.default_region,
                lease_seconds=settings.pipeline_lease_seconds,
            )
            for event, own in valid
        ]
    results: list[BatchResult] = []
    done = iter(outcomes)
    for item in items:
        if item.event is None:
            error = {"code": canonical.InvalidEvent.code, "details": item.errors or []}
            results.append(BatchResult(index=item.index, status="invalid", error=error))
            continue
        outcome = next(done)
        results.append(
            BatchResult(
                index=item.index,
                status="replay" if outcome.duplicate else "accepted",
                event_id=item.event.event_id,
                call_id=outcome.call_id,
                state=outcome.state,
            )
        )
    statuses = [r.status for r in results]
    counts = {s: statuses.count(s) for s in ("accepted", "replay", "invalid")}
    for status, count in counts.items():
        if count:
            EVENTS.inc(canonical.SOURCE, status, by=count)
    log.info("batch accepted", extra={"source": canonical.SOURCE, **counts})
    return BatchOutcome(
        accepted=counts["accepted"],
        replayed=counts["replay"],
        invalid=counts["invalid"],
        results=results,
    )


@router.post(
    "/twilio",
    status_code=202,
    responses={
        **_RESPONSES,
        404: {"description": "not configured (TWILIO_AUTH_TOKEN or PUBLIC_BASE_URL unset)"},
    },
)
async def twilio_status(request: Request, resources: ResourcesDep) -> JSONResponse:
    """A Twilio Voice status callback (form-encoded, `X-Twilio-Signature`)."""
    arrived = time.perf_counter()
    with _counted(twilio.SOURCE):
        raw = await request.body()
        settings = resources.settings
        params = twilio.parse_form(raw)
        twilio.verify(
            settings,
            url=twilio.public_url(settings, request.url.path, request.url.query),
            params=params,
            signature_header=request.headers.get("x-twilio-signature"),
        )
        event = twilio.to_event(params)
        return await _accept(resources, twilio.SOURCE, event, raw, arrived)


@router.post("/cti", status_code=202, responses=_RESPONSES)
async def cti_event(
    request: Request, session: SessionDep, resources: ResourcesDep, _client: IntegrationClient
) -> JSONResponse:
    """A generic CTI `newCall` / `answer` / `hangup` event (bearer token, role integration)."""
    # The token's lookup is done: give its connection back before waiting for a share of a
    # group transaction, which needs one from the same pool (held, a burst would starve it).
    await session.commit()
    arrived = time.perf_counter()
    with _counted(cti.SOURCE):
        raw = await request.body()
        event = cti.to_event(cti.parse(raw))
        return await _accept(resources, cti.SOURCE, event, raw, arrived)
