"""OpenTelemetry traces, from the webhook to the publish (issue 18, item 5). Off by default.

On when the standard environment asks for an exporter: OTEL_TRACES_EXPORTER (`otlp`,
`console`) or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT / ..._TRACES_ENDPOINT); off again
with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Everything else the SDK reads from
the same variables itself (endpoint, headers, protocol timeouts, OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER).

Traced: every request (FastAPI), every statement (SQLAlchemy: the statement's text, never its
parameters), every Redis command (its name and key, never its values), and our own two spans
in between: `call_event.store` (a webhook's transaction: ingest, the steps, the commit, then
its publishes) and `realtime.publish` (the frames handed to the broker).

Off, nothing is instrumented and our spans are a no-op context manager: no cost per event.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SDK is imported only when tracing is on
    from fastapi import FastAPI
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

_tracer: Tracer | None = None
_redis_instrumented = False


def wanted(env: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces (see the module's docstring)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        exporter
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def provider_from_env() -> TracerProvider:
    """A tracer provider exporting as OTEL_* says (batched, off the request path)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "firstcontact"}
    provider = TracerProvider(resource=Resource.create(attributes))
    kinds = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    for kind in (k.strip() for k in kinds.split(",")):
        if kind == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif kind == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            log.warning("unknown OTEL_TRACES_EXPORTER entry ignored", extra={"exporter": kind})
    return provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    """Requests and our own spans (at app creation: before the middleware stack is built)."""
    global _tracer
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # Probes and scrapes are not requests anyone traces.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,readyz,metrics"
    )
    _tracer = provider.get_tracer("firstcontact")


def instrument_stores(engine: AsyncEngine, provider: TracerProvider, redis: bool) -> None:
    """The database's statements (this engine) and Redis's commands (once per process)."""
    global _redis_instrumented
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # It declares sqlalchemy < 2.1 but only hooks the engine's public events, which 2.1
    # keeps: skip_dep_check, and tests/metrics/test_tracing.py shows the statements traced.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        tracer_provider=provider,
        enable_commenter=False,
        skip_dep_check=True,
    )
    if redis and not _redis_instrumented:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument(tracer_provider=provider)
        _redis_instrumented = True


def uninstrument() -> None:
    """Tracing off again (tests): our spans become no-ops, Redis's commands untraced."""
    global _tracer, _redis_instrumented
    _tracer = None
    if _redis_instrumented:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().uninstrument()
        _redis_instrumented = False


def capture() -> Context | None:
    """The current trace context, to continue in another task (None when off)."""
    if _tracer is None:
        return None
    from opentelemetry.context import get_current

    return get_current()


@contextlib.contextmanager
def span(name: str, parent: Context | None = None, **attributes: Any) -> Iterator[None]:
    """One of our spans (a no-op when tracing is off), under `parent` when given."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, context=parent, attributes=attributes):
        yield
