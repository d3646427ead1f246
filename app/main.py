"""The application factory. Resources live in the lifespan, never at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app import __version__, live_rules, tracing
from app.api import api_router, errors, guard, health, install_hot_routes, install_lane
from app.api import metrics as metrics_api
from app.api import ws as ws_api
from app.api.headers import StrictTransportSecurity
from app.api.lane import Lane
from app.api.limits import BodySizeLimit
from app.api.methods import AllowedMethods
from app.api.request_context import RequestContext
from app.api.statuses import document_statuses
from app.cache import create_cache
from app.calls.grouping import GroupCommit
from app.calls.pipeline import Pipeline
from app.calls.step import Step
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.heap import freeze_startup_heap
from app.history.steps import history_step
from app.housekeeping import Housekeeping
from app.live_rules import RulesSync
from app.logs import mask_phone_numbers
from app.metrics import catalogue
from app.metrics.tally import Flusher
from app.qa import forms as qa_forms
from app.realtime import create_broker
from app.realtime.hub import Hub
from app.realtime.outbox import Relay
from app.realtime.revocation import CredentialWatch
from app.realtime.steps import realtime_step
from app.resources import Resources
from app.retention.schedule import RetentionSchedule
from app.web import apidocs
from app.web import install as install_web

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)


def default_steps() -> list[Step]:
    """The steps every stored call event goes through, in order: the caller's history and
    alerts, then the frames to the screens (published after the commit). Composed here, at
    the top, so that `calls` knows nothing of the layers above it."""
    return [history_step, realtime_step]


class FirstContact(FastAPI):
    """FastAPI with `RequestContext` outside everything, Starlette's error layer included
    (around the whole app rather than in `build_middleware_stack`, which the OpenTelemetry
    instrumentation replaces); and the webhook's lane (app.api.lane) beside the app."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._outermost = RequestContext(self._dispatch)
        self.lane: Lane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._outermost(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        if lane is not None and lane.takes(scope):
            await lane(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The app; traced through `tracer_provider` if given, else as OTEL_* says (app.tracing:
    off by default)."""
    settings = settings or get_settings()
    own_provider = tracer_provider is None and tracing.wanted()
    provider = tracing.provider_from_env() if own_provider else tracer_provider

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, object]]:
        # Rule packs first: an invalid pack refuses the start (file:line: reason logged).
        rules = live_rules.load_at_start(settings.rules_dir, settings.history_horizon_days)
        qa_form = qa_forms.load_at_start(settings.rules_dir)  # RULES_DIR/qa/, else shipped
        engine = create_engine(settings, service=True)
        if provider is not None:
            tracing.instrument_stores(engine, provider, redis=settings.redis_url is not None)
        cache = create_cache(settings)
        log.info(
            "starting",
            extra={
                "database": engine.dialect.name,
                "cache": cache.name,
                "redis": mask_phone_numbers(settings.redis_url or "none"),
            },
        )
        # Real-time delivery: the broker (in-process, or Redis when REDIS_URL is set), before
        # the hub of this process's sockets and the pipeline that publishes through it.
        broker = create_broker(settings)
        await broker.connect()
        resources = Resources(
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
            cache=cache,
            rules=rules,
            qa_form=qa_form,
            broker=broker,
        )
        # The outbox's publisher: each commit's messages at once, and what anybody left unsent.
        relay = Relay(resources)
        resources.outbox = relay
        await relay.start()
        # A reload received by any worker reaches every worker (generation in the cache).
        rules_sync = RulesSync(
            resources,
            cache,
            settings.rules_dir,
            settings.rules_poll_seconds,
            settings.history_horizon_days,
        )
        resources.rules_sync = rules_sync
        await rules_sync.start()
        hub = Hub(broker, resources)
        resources.hub = hub
        hub.install_signal_hook()
        # Sockets close when their credential ends (logout, expiry, revocation), on every
        # worker: the hub follows the broker's control channel and re-checks periodically.
        credential_watch = CredentialWatch(hub, resources)
        resources.credential_watch = credential_watch
        await credential_watch.start()
        # Processing of accepted call events: inline after each ingest + a sweeper.
        pipeline = Pipeline.from_settings(resources, default_steps())
        resources.pipeline = pipeline
        # The webhooks' single events, grouped into shared transactions under load.
        grouped = GroupCommit(
            pipeline,
            max_events=settings.telephony_group_max,
            min_events=settings.telephony_group_min,
        )
        resources.ingest = grouped
        _app.state.resources = resources  # for tests and tools holding the app
        # Counters: the pipeline counts what it processes anyway; the flush reads those.
        flusher = Flusher()
        flusher.follow(catalogue.PIPELINE_PROCESSED, lambda: pipeline.processed)
        flusher.follow(catalogue.PIPELINE_FAILURES, lambda: pipeline.failed)
        flusher.follow(catalogue.EXPRESS_EVENTS, lambda: pipeline.expressed)
        flusher.follow(catalogue.EXPRESS_FALLBACKS, lambda: pipeline.express_fallbacks)
        resources.metrics = flusher
        await flusher.start()
        await pipeline.start()
        housekeeping = Housekeeping(resources.sessions, settings)
        await housekeeping.start()
        # The retention purge: every worker tries, one (the advisory lock's holder) purges.
        retention = RetentionSchedule(resources.sessions, settings)
        await retention.start()
        if settings.gc_freeze:  # served processes (see app.heap)
            freeze_startup_heap(settings.default_region)
        try:
            yield {
                "resources": resources,
                "settings": settings,
                "engine": engine,
                "sessions": resources.sessions,
                "cache": cache,
            }
        finally:
            await retention.stop()
            await housekeeping.stop()
            await rules_sync.stop()
            await credential_watch.stop()
            await hub.shutdown()  # sockets closed with 1001 (going away)
            await grouped.drain()
            await pipeline.stop()
            await relay.stop()  # unsent rows stay in the outbox for the next relay
            await broker.disconnect()
            await cache.close()
            await engine.dispose()
            await flusher.stop()  # the last counts, into this worker's file
            if own_provider and provider is not None:
                provider.shutdown()  # the spans still batched, exported
            log.info("stopped")

    app = FirstContact(
        title="firstcontact",
        version=__version__,
        summary="Call-taker assist: caller and household context pushed before hello.",
        lifespan=lifespan,
        # Issue 16: the documents are served by app.web.apidocs (behind a login, no outside
        # CDN), or not at all in production.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if provider is not None:
        tracing.instrument_app(app, provider)
    errors.install(app)
    # NUL, lone surrogates, integers past int64 and deep JSON refused on every route (422).
    guard.install(app)
    # Every status each route can answer, in the OpenAPI document (shared layers included).
    document_statuses(app)
    # OPTIONS and 405 list the methods of every route of the path, not the first one's.
    app.add_middleware(AllowedMethods)
    app.add_middleware(
        BodySizeLimit,
        default=settings.max_body,
        prefixes={
            "/api/v1/telephony": settings.telephony_max_body,
            "/api/v1/telephony/events/batch": settings.telephony_max_batch_body,
        },
    )
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.include_router(ws_api.router)
    app.include_router(api_router)
    install_hot_routes(app)  # the webhook first, as a plain route (issue 19)
    if provider is None:  # traced: through the framework's stack, as every request
        install_lane(app)
    install_web(app)  # the browser pages, /web/api and /static (issue 7)
    if settings.docs_enabled:
        apidocs.install(app)
    if settings.production:
        app.add_middleware(StrictTransportSecurity, max_age_seconds=settings.hsts_max_age_seconds)
    return app
