"""Helpers for real-time tests: real sockets (the `websockets` client) on real services."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from app.telephony.signature import signed_headers
from tests.conftest import TELEPHONY_SECRET
from tests.support.servers import ServiceProcess

EVENTS_URL = "/api/v1/telephony/events"
_ids = itertools.count(1)
CONTROL = frozenset({"hello", "ping", "pong"})


def event(call_id: str, type_: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": f"rt-{call_id}-{type_}-{next(_ids)}-{time.monotonic_ns()}",
        "call_id": call_id,
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    body.update(fields)
    return body


def withheld_offer(call_id: str) -> dict[str, Any]:
    """An offered call from a withheld number: the alert pack raises `withheld_number`."""
    return event(
        call_id, "offered", caller={"number": "", "presentation": "withheld"}, called="999",
        queue="emergency",
    )  # fmt: skip


async def post(service: ServiceProcess, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = signed_headers(TELEPHONY_SECRET.encode(), raw, int(time.time()))
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        response = await http.post(EVENTS_URL, content=raw, headers=headers)
    assert response.status_code in (200, 202), response.text
    return response


async def ring(service: ServiceProcess, call_id: str, handler: str) -> int:
    """Offer a withheld call and ring it at `handler`; the service's call id."""
    await post(service, withheld_offer(call_id))
    response = await post(service, event(call_id, "ringing", handler_id=handler))
    return int(response.json()["call_id"])


def open_socket(
    service: ServiceProcess,
    token: str | None,
    after: str | None = None,
    origin: str | None = None,
    **kwargs: Any,
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = service.ws_url + "/ws" + (f"?after={after}" if after else "")
    return connect(url, additional_headers=headers, origin=origin, **kwargs)  # type: ignore[arg-type]


async def frame(ws: ClientConnection, wait: float = 10.0) -> dict[str, Any]:
    """The next frame that is not a heartbeat (`ping` is answered with `pong`)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), wait))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        if message["type"] == "pong":
            continue
        return message  # type: ignore[no-any-return]


async def message(ws: ClientConnection, wait: float = 10.0) -> dict[str, Any]:
    """The next channel message (skipping hello and heartbeats)."""
    while True:
        got = await frame(ws, wait)
        if got["type"] != "hello":
            return got


async def until(ws: ClientConnection, type_: str, call_id: int | None = None) -> dict[str, Any]:
    """Skip channel messages until one of `type_` (for `call_id`) arrives."""
    while True:
        got = await message(ws)
        if got["type"] == type_ and (call_id is None or got["call_id"] == call_id):
            return got
