"""Helpers for telephony tests: canonical events signed as a platform signs them."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.telephony.signature import signed_headers
from tests.conftest import TELEPHONY_SECRET

SECRET = TELEPHONY_SECRET.encode()
EVENTS_URL = "/api/v1/telephony/events"
_ids = itertools.count(1)


def event(call_id: str, type_: str, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": fields.pop("event_id", f"ev-{call_id}-{type_}-{next(_ids)}"),
        "call_id": call_id,
        "type": type_,
        "occurred_at": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }
    body.update(fields)
    return body


def lifecycle(call_id: str, start: datetime, number: str = "07700 900123", handler: str = "H1001"):
    caller = {"number": number, "presentation": "allowed"}
    return [
        event(call_id, "offered", start, caller=caller, called="999", queue="emergency"),
        event(call_id, "ringing", start + timedelta(seconds=2), handler_id=handler),
        event(call_id, "answered", start + timedelta(seconds=5), handler_id=handler),
        event(call_id, "ended", start + timedelta(seconds=65), cause="normal_clearing"),
    ]


async def post_signed(
    client: httpx.AsyncClient,
    body: dict[str, Any] | bytes,
    *,
    secret: bytes = SECRET,
    timestamp: int | None = None,
    url: str = EVENTS_URL,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signed = signed_headers(secret, raw, int(time.time()) if timestamp is None else timestamp)
    return await client.post(url, content=raw, headers={**signed, **(headers or {})})


async def count_rows(app: Any, model: Any, *where: Any) -> int:
    from sqlalchemy import func, select

    async with app.state.resources.sessions() as session:
        value = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(value or 0)
