"""Acceptance 1 and bad input: the signed canonical webhook, on both backends."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from app.calls.models import Call, CallEventRow
from app.telephony.signature import TOLERANCE_SECONDS, sign
from tests.telephony.support import EVENTS_URL, SECRET, count_rows, event, lifecycle, post_signed

# Well outside the window: the header carries whole seconds and the request takes time, so a
# timestamp one second past the edge can land back inside it (the exact edges are unit-tested
# in test_signature.py with a fixed clock).
OUTSIDE = TOLERANCE_SECONDS + 60


async def test_valid_event_is_stored_and_answered_after_commit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    body = event("c-1", "offered", caller={"number": "07700 900123"}, called="999")
    response = await post_signed(client, body)
    assert response.status_code == 202, response.text
    outcome = response.json()
    assert outcome["status"] == "accepted" and outcome["state"] == "offered"
    # Answered means stored: another session sees the row now.
    assert await count_rows(app, CallEventRow) == 1
    async with app.state.resources.sessions() as session:
        call = await session.get(Call, outcome["call_id"])
        assert call is not None
        assert (call.caller_e164, call.presentation, call.called) == (
            "+447700900123",
            "allowed",
            "999",
        )


async def test_replayed_event_id_gets_original_outcome_stored_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=2)
    offered, ringing, *_ = lifecycle("c-2", start)
    first = await post_signed(client, offered)
    assert first.status_code == 202
    assert (await post_signed(client, ringing)).json()["state"] == "ringing"
    again = await post_signed(client, offered)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    # The original outcome (state "offered" right after it), not the call's current state.
    assert again.json() == first.json()
    assert await count_rows(app, CallEventRow) == 2
    assert await count_rows(app, Call) == 1
    # Processed once: the pipeline marks each stored event once.
    assert await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None)) == 0


async def test_previous_secret_is_accepted(settings, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    from app.config import Settings
    from app.main import create_app

    rotated = Settings(
        **{
            **settings.model_dump(),
            "telephony_secret": "the-new-secret-0123456789",
            "telephony_secret_previous": settings.telephony_secret.get_secret_value(),
        }
    )
    from asgi_lifespan import LifespanManager

    application = create_app(rotated)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            old = await post_signed(http, event("c-rot", "offered"))
            new = await post_signed(
                http, event("c-rot", "ringing"), secret=b"the-new-secret-0123456789"
            )
            bad = await post_signed(http, event("c-rot", "answered"), secret=b"never-configured")
    assert (old.status_code, new.status_code, bad.status_code) == (202, 202, 401)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda raw, h: (raw, {k: v for k, v in h.items() if k != "X-Signature"}),
            "missing_headers",
        ),
        (
            lambda raw, h: (raw, {k: v for k, v in h.items() if k != "X-Signature-Timestamp"}),
            "missing_headers",
        ),
        (lambda raw, h: (raw.replace(b"c-bad", b"c-bad2"), h), "mismatch"),
        (
            lambda raw, h: (
                raw,
                {**h, "X-Signature": sign(b"wrong-key", h["X-Signature-Timestamp"], raw)},
            ),
            "mismatch",
        ),
        (lambda raw, h: _at(raw, h, time.time() - OUTSIDE), "stale_timestamp"),
        (lambda raw, h: _at(raw, h, time.time() + OUTSIDE), "future_timestamp"),
    ],
    ids=["no-signature", "no-timestamp", "changed-body", "wrong-key", "stale", "future"],
)
async def test_bad_signatures_are_401_with_reason_and_store_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    mutate,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    raw = json.dumps(event("c-bad", "offered")).encode()
    ts = int(time.time())
    headers = {
        "X-Signature-Timestamp": str(ts),
        "X-Signature": sign(SECRET, ts, raw),
        "Content-Type": "application/json",
    }
    raw, headers = mutate(raw, headers)
    response = await client.post(EVENTS_URL, content=raw, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert response.json()["error"]["details"]["reason"] == reason
    assert await count_rows(app, CallEventRow) == 0
    assert await count_rows(app, Call) == 0


def _at(raw: bytes, headers: dict[str, str], when: float) -> tuple[bytes, dict[str, str]]:
    ts = int(when)
    return raw, {**headers, "X-Signature-Timestamp": str(ts), "X-Signature": sign(SECRET, ts, raw)}


def _future(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


BAD_BODIES = [
    (b'{"event_id": "e1", "call_id": ', 400, "malformed_body"),
    (b"not json at all", 400, "malformed_body"),
    (b"\xff\xfe\x00{bad utf8}", 400, "malformed_body"),
    (
        '{"event_id":"e1","call_id":"c","type":"offered","occurred_at":"2026-11-25T20:00:00Z","caller":{"number":"\xe9"}}'.encode(
            "latin-1"
        ),
        400,
        "malformed_body",
    ),
    (b"[]", 422, "invalid_event"),
    (b"null", 422, "invalid_event"),
    (json.dumps(event("c", "picked_up")).encode(), 422, "invalid_event"),
    (
        json.dumps({k: v for k, v in event("c", "offered").items() if k != "call_id"}).encode(),
        422,
        "invalid_event",
    ),
    (
        json.dumps(event("c", "offered", at=datetime(1999, 12, 31, tzinfo=UTC))).encode(),
        422,
        "invalid_event",
    ),
    (
        json.dumps({**event("c", "offered"), "occurred_at": _future(2)}).encode(),
        422,
        "invalid_event",
    ),
    (
        json.dumps({**event("c", "offered"), "occurred_at": "2026-11-25T20:00:00"}).encode(),
        422,
        "invalid_event",
    ),
    (
        json.dumps({**event("c", "offered"), "occurred_at": "yesterday"}).encode(),
        422,
        "invalid_event",
    ),
    (json.dumps({**event("c", "offered"), "seq": -1}).encode(), 422, "invalid_event"),
    (json.dumps({**event("c", "offered"), "seq": 10**30}).encode(), 422, "invalid_event"),
    (json.dumps({**event("c", "offered"), "call_id": "x" * 500}).encode(), 422, "invalid_event"),
    (json.dumps({**event("c", "offered"), "caller": "07700900123"}).encode(), 422, "invalid_event"),
    # NUL and lone surrogates: JSON escapes that no database text column can hold.
    (json.dumps({**event("c", "offered"), "call_id": "a\u0000b"}).encode(), 422, "invalid_event"),
    (json.dumps({**event("c", "offered"), "queue": "q\u0000"}).encode(), 422, "invalid_event"),
    (
        b'{"event_id":"e\\ud800","call_id":"c","type":"offered","occurred_at":"2026-11-25T20:00:00Z"}',
        400,  # pydantic's JSON parser refuses a lone surrogate escape
        "malformed_body",
    ),
    (
        json.dumps({**event("c", "offered"), "caller": {"number": "0\u00007700"}}).encode(),
        422,
        "invalid_event",
    ),
]


@pytest.mark.parametrize(("raw", "status", "code"), BAD_BODIES)
async def test_bad_bodies_are_4xx_envelopes_and_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, raw: bytes, status: int, code: str
) -> None:
    response = await post_signed(client, raw)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    # Never echo what was sent (a number, a name) back.
    assert "07700" not in response.text
    assert await count_rows(app, CallEventRow) == 0
    assert await count_rows(app, Call) == 0


async def test_ten_megabyte_body_is_413_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    raw = (
        b'{"event_id":"big","call_id":"c","type":"offered","pad":"'
        + b"x" * (10 * 1024 * 1024)
        + b'"}'
    )
    response = await post_signed(client, raw)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(160):
            yield b"x" * 65536

    ts = int(time.time())
    streamed = await client.post(
        EVENTS_URL,
        content=chunks(),
        headers={"X-Signature-Timestamp": str(ts), "X-Signature": "AAAA"},
    )
    assert streamed.status_code == 413
    assert await count_rows(app, CallEventRow) == 0


async def test_inline_processing_marks_events_processed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for body in lifecycle("c-proc", datetime.now(UTC) - timedelta(minutes=5)):
        assert (await post_signed(client, body)).status_code == 202
    sessions = app.state.resources.sessions

    async def pending() -> int:
        return await count_rows(app, CallEventRow, CallEventRow.processed_at.is_(None))

    assert await pending() == 0
    async with sessions() as session:
        from sqlalchemy import select

        call = (await session.scalars(select(Call))).one()
    assert call.state == "ended"
    assert call.handlers == ["H1001"]
    assert call.end_cause == "normal_clearing"
