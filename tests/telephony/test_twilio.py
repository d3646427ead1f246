"""Acceptance 3: Twilio status callbacks signed by Twilio's own RequestValidator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.calls.models import Call, CallEventRow
from app.config import Settings
from app.main import create_app
from tests.telephony.support import count_rows

AUTH_TOKEN = "twilio-test-auth-token-0123456789"
PUBLIC = "https://calls.force.example"
PATH = "/api/v1/telephony/twilio"


@pytest.fixture
async def twilio_app(settings: Settings) -> AsyncIterator[FastAPI]:
    configured = Settings(
        **{**settings.model_dump(), "twilio_auth_token": AUTH_TOKEN, "public_base_url": PUBLIC}
    )
    application = create_app(configured)
    async with LifespanManager(application) as manager:
        application.state.asgi = manager.app
        yield application


def callback(status: str, seq: int, **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": "CA" + "1" * 32,
        "CallStatus": status,
        "From": "+447700900123",
        "To": "+441632960999",
        "Direction": "inbound",
        "SequenceNumber": str(seq),
        "Timestamp": f"Wed, 25 Nov 2026 20:00:{10 + seq:02d} +0000",
        "CallbackSource": "call-progress-events",
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


async def post(
    app: FastAPI, params: dict[str, str], signature: str | None = None
) -> httpx.Response:
    # The platform called the public URL; the request reaches us through a proxy.
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + PATH, params)
    transport = httpx.ASGITransport(app=app.state.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as http:
        return await http.post(
            PATH,
            content=urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )


async def test_signed_callbacks_in_any_order_make_one_completed_call(twilio_app: FastAPI) -> None:
    order = [
        callback("completed", 3, CallDuration="42"),
        callback("initiated", 0),
        callback("in-progress", 2),
        callback("ringing", 1),
        callback("in-progress", 2),
    ]
    statuses = [(await post(twilio_app, p)).status_code for p in order]
    assert statuses == [202, 202, 202, 202, 200]
    async with twilio_app.state.resources.sessions() as session:
        call = (await session.scalars(select(Call))).one()
    assert (call.source, call.state, call.end_cause) == ("twilio", "ended", "completed")
    assert (call.caller_e164, call.presentation, call.called) == (
        "+447700900123", "allowed", "+441632960999",
    )  # fmt: skip
    assert call.answered_at is not None and call.answered_at.second == 12
    assert await count_rows(twilio_app, CallEventRow) == 4


async def test_one_changed_parameter_is_rejected(twilio_app: FastAPI) -> None:
    params = callback("ringing", 1)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + PATH, params)
    tampered = {**params, "From": "+447700900999"}
    response = await post(twilio_app, tampered, signature)
    assert response.status_code == 401
    assert response.json()["error"]["details"]["reason"] == "mismatch"
    # Signed for another URL (not the public one): rejected too.
    other = RequestValidator(AUTH_TOKEN).compute_signature("http://10.0.0.5:8000" + PATH, params)
    assert (await post(twilio_app, params, other)).status_code == 401
    # No signature at all.
    transport = httpx.ASGITransport(app=twilio_app.state.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        bare = await http.post(PATH, data=params)
    assert bare.status_code == 401
    assert await count_rows(twilio_app, CallEventRow) == 0


@pytest.mark.parametrize(
    ("number", "presentation"),
    [("+266696687", "withheld"), ("+7378742833", "withheld"), ("+2562533", "withheld"),
     ("+8656696", "unavailable"), ("anonymous", "withheld"), ("", "unavailable")],
)  # fmt: skip
async def test_withheld_sentinels(twilio_app: FastAPI, number: str, presentation: str) -> None:
    assert (await post(twilio_app, callback("ringing", 1, From=number))).status_code == 202
    async with twilio_app.state.resources.sessions() as session:
        call = (await session.scalars(select(Call))).one()
    assert (call.caller_e164, call.presentation) == (None, presentation)


async def test_bad_twilio_input_is_4xx(twilio_app: FastAPI) -> None:
    unknown = await post(twilio_app, callback("teleported", 1))
    assert unknown.status_code == 422
    no_sid = await post(twilio_app, callback("ringing", 1, CallSid=""))
    assert no_sid.status_code == 422
    nul = await post(twilio_app, callback("ringing", 1, From="+4477\x00"))
    assert nul.status_code == 422
    transport = httpx.ASGITransport(app=twilio_app.state.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        not_utf8 = await http.post(
            PATH, content=b"CallSid=\xff\xfe", headers={"X-Twilio-Signature": "x"}
        )
    assert not_utf8.status_code == 400
    assert await count_rows(twilio_app, CallEventRow) == 0


async def test_unconfigured_twilio_adapter_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, data=callback("ringing", 1))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "twilio_not_configured"


async def test_without_public_base_url_the_host_header_is_never_trusted(
    settings: Settings,
) -> None:
    """A callback signed for the URL the request claims (its Host header) is refused when
    PUBLIC_BASE_URL is unset: the adapter answers as not configured, whatever the signature."""
    application = create_app(Settings(**{**settings.model_dump(), "twilio_auth_token": AUTH_TOKEN}))
    params = callback("ringing", 1)
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://evil.example" + PATH, params)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as http:
            response = await http.post(PATH, data=params, headers={"X-Twilio-Signature": signature})
        assert await count_rows(application, CallEventRow) == 0
    assert response.status_code == 404
    assert response.json()["error"]["details"]["reason"] == "public_base_url_unset"
