"""The webhook's lane (app.api.lane, issue 19): its POSTs skip the framework's layers but get
every middleware and exception handler of the app, as through the app; other methods and
paths go through the app; a traced app has no lane."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from app.api import lane as lane_module
from app.api import telephony
from app.config import Settings
from app.main import create_app
from tests.telephony.support import EVENTS_URL, event, post_signed


@contextmanager
def _served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths the lane's endpoint served while the block runs."""
    served: list[str] = []
    original = lane_module.Lane._endpoint

    async def counted(self: lane_module.Lane, scope: Any, receive: Any, send: Any) -> None:
        served.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(lane_module.Lane, "_endpoint", counted)
    yield served


async def test_the_webhook_goes_the_lane_with_the_apps_middleware_and_handlers(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    assert app.lane is not None  # type: ignore[attr-defined]
    app.lane._stack = None  # type: ignore[attr-defined]  # built again, with the counter
    transport = httpx.ASGITransport(app=app.state.asgi, raise_app_exceptions=False)
    with _served(monkeypatch) as served:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            stored = await post_signed(http, event("lane-1", "offered"))
            assert stored.status_code == 202
            # The request id and cache policy of the app's own middleware.
            assert len(stored.headers["x-request-id"]) == 32
            assert stored.headers["cache-control"] == "no-store"
            # The app's handlers: a refusal, a body over the webhook's limit, a bug.
            unsigned = await http.post(EVENTS_URL, content=b"{}")
            assert unsigned.status_code == 401
            assert unsigned.json()["error"]["code"] == "bad_signature"
            assert "x-request-id" in unsigned.headers
            huge = await post_signed(http, b"x" * (settings.telephony_max_body + 1))
            assert huge.status_code == 413
            assert huge.json()["error"]["code"] == "payload_too_large"
            lane_posts = len(served)
            # Other methods go through the app: 405 naming the allowed ones.
            listed = await http.get(EVENTS_URL)
            assert listed.status_code == 405
            assert "POST" in listed.headers["allow"]

            def broken(_raw: bytes) -> Any:
                raise RuntimeError("a bug")

            monkeypatch.setattr(telephony.canonical, "parse", broken)
            failed = await post_signed(http, event("lane-2", "offered"))
            assert failed.status_code == 500
            assert failed.json()["error"]["code"] == "internal_error"
            assert "x-request-id" in failed.headers
    # Every POST but the one the body limit refused before the endpoint; nothing else.
    assert lane_posts == 2 and len(served) == 3
    assert set(served) == {EVENTS_URL}


def test_a_traced_app_has_no_lane(settings: Settings) -> None:
    traced: Any = create_app(settings, tracer_provider=TracerProvider())
    plain: Any = create_app(settings)
    assert traced.lane is None and plain.lane is not None
