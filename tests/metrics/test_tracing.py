"""OpenTelemetry (issue 18, item 5): a webhook's spans form one tree, webhook -> store ->
publish, with the statements under the store and (with Redis) the broker's command under the
publish. Recorded with the SDK's in-memory exporter; off unless asked (app.tracing.wanted)."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app import tracing
from app.config import Settings
from app.main import create_app
from tests.telephony.support import event, post_signed


def _parent(span: ReadableSpan, spans: dict[int, ReadableSpan]) -> ReadableSpan | None:
    return spans.get(span.parent.span_id) if span.parent is not None else None


def _under(span: ReadableSpan, ancestor: ReadableSpan, spans: dict[int, ReadableSpan]) -> bool:
    node: ReadableSpan | None = span
    while node is not None:
        node = _parent(node, spans)
        if node is ancestor:
            return True
    return False


async def test_a_webhook_is_traced_from_request_to_publish(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    application = create_app(settings, tracer_provider=provider)
    try:
        async with LifespanManager(application) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                offered = await post_signed(client, event("tr-1", "offered"))
                assert offered.status_code == 202
                exporter.clear()
                ringing = await post_signed(client, event("tr-1", "ringing", handler_id="H7"))
                assert ringing.status_code == 202
    finally:
        tracing.uninstrument()
    finished = exporter.get_finished_spans()
    (webhook,) = [
        s
        for s in finished
        if s.kind is SpanKind.SERVER and s.name == "POST /api/v1/telephony/events"
    ]
    # The webhook's trace; the outbox relay's and the sent-marks' rounds run in the
    # background, each a trace of its own.
    spans = {
        s.context.span_id: s for s in finished if s.context.trace_id == webhook.context.trace_id
    }
    names = sorted(s.name for s in spans.values())
    # The ringing of a stored call goes express on PostgreSQL (app.calls.express): its
    # store span is that path's; elsewhere the transaction's.
    postgres = settings.database_url.startswith("postgresql")
    expected = "call_event.express" if postgres else "call_event.store"
    (store,) = [s for s in spans.values() if s.name == expected]
    (publish,) = [s for s in spans.values() if s.name == "realtime.publish"]
    assert _parent(store, spans) is webhook, names
    assert _parent(publish, spans) is store, names
    statements = [s for s in spans.values() if s.attributes and "db.statement" in s.attributes]
    assert statements and all(_under(s, store, spans) for s in statements), names
    # Statement text only: the parameters of an insert never reach a span.
    assert not any("07700" in str(s.attributes) for s in spans.values())
    if settings.redis_url:
        commands = [s for s in spans.values() if s.attributes and "db.system" in s.attributes
                    and s.attributes["db.system"] == "redis"]  # fmt: skip
        assert any(_under(s, publish, spans) for s in commands), names


def test_tracing_is_off_unless_the_environment_asks() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.wanted(
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    )
