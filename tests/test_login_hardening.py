"""Issue 16, points 3 and 6 for logins and transport: the login lockout (per address and per
account, 429 with Retry-After), logins audited without their token, tokens that expire,
ended sessions purged, integration tokens refused on staff routes, Secure cookies, HSTS,
FORWARDED_ALLOW_IPS, and the API documents (behind a login, no outside CDN, off in
production)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit.models import AuditLog
from app.auth.models import ApiToken, EndReason, Role, StaffSession
from app.config import Settings
from app.db import utcnow
from app.housekeeping import Housekeeping
from app.main import create_app
from tests.conftest import MakeStaff
from tests.support.servers import ServiceProcess

ORIGIN = "http://testserver"


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with a lockout after 3 failed logins."""
    strict = settings.model_copy(update={"login_max_failures": 3, "login_window_seconds": 600})
    application = create_app(strict)
    async with LifespanManager(application) as manager:
        application.state.asgi = manager.app
        yield application


def _from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app.state.asgi, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=ORIGIN)


async def _login(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/login", data={"token": token}, headers={"Origin": ORIGIN})


async def _audit(app: FastAPI) -> list[AuditLog]:
    async with app.state.resources.sessions() as session:
        query = select(AuditLog).where(AuditLog.action == "authentication").order_by(AuditLog.id)
        return list((await session.scalars(query)).all())


async def test_failed_logins_lock_out_the_address_with_retry_after(
    limited: FastAPI, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    async with _from(limited, "203.0.113.7") as guesser, _from(limited, "198.51.100.2") as other:
        for guess in range(3):
            assert (await _login(guesser, f"fct_wrong{guess}")).status_code == 401
        locked = await _login(guesser, "fct_wrong3")
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["Retry-After"]) <= 600
        assert "Too many failed logins" in locked.text
        # Locked means locked: the right token from that address waits too.
        assert (await _login(guesser, token)).status_code == 429
        # Another address is not affected.
        assert (await _login(other, token)).status_code == 303

    rows = await _audit(limited)
    outcomes = [(r.actor, r.justification, r.records.get("address")) for r in rows]
    assert outcomes == [
        *[("anonymous", "token login: refused", "203.0.113.7")] * 3,
        ("anonymous", "token login: locked out", "203.0.113.7"),
        ("staff:H1", "token login: locked out", "203.0.113.7"),
        ("staff:H1", "token login: signed in", "198.51.100.2"),
    ]
    # No token in the audit, not even a wrong one.
    assert not any("fct_" in repr((r.justification, r.records)) for r in rows)


async def test_failed_logins_naming_an_account_lock_it_out_from_every_address(
    limited: FastAPI, make_staff: MakeStaff
) -> None:
    old = await make_staff("H2", Role.handler)
    admin = await make_staff("A1", Role.admin)
    async with _from(limited, "192.0.2.1") as http:
        revoked = await http.post(
            "/api/v1/staff/H2/revoke", headers={"Authorization": f"Bearer {admin}"}
        )
        assert revoked.status_code == 200
    # The revoked token tried from three addresses: the account is locked, not just one
    # address; a fourth address gets 429.
    for n in range(3):
        async with _from(limited, f"192.0.2.{10 + n}") as http:
            assert (await _login(http, old)).status_code == 401
    async with _from(limited, "192.0.2.99") as http:
        response = await _login(http, old)
    assert response.status_code == 429 and "Retry-After" in response.headers


async def test_integration_tokens_are_refused_on_staff_routes_with_a_reason(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    machine = await make_staff("T1", Role.integration)
    headers = {"Authorization": f"Bearer {machine}"}
    for path in ("/api/v1/me", "/api/v1/rules", "/web/api/handler/calls", "/openapi.json"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 403, path
        assert "integration tokens are refused on staff routes" in response.text, path


async def _expire_tokens(app: FastAPI) -> None:
    async with app.state.resources.sessions() as session, session.begin():
        await session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))


async def test_tokens_expire_and_end_the_sessions_opened_with_them(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200
    assert (await _login(client, token)).status_code == 303
    assert (await client.get("/web/api/handler/calls")).status_code == 200  # the cookie

    await _expire_tokens(app)
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
    assert (await client.get("/web/api/handler/calls")).status_code == 401
    assert (await _login(client, token)).status_code == 401


async def test_a_token_lasts_token_max_age_days(settings: Settings, make_staff: MakeStaff) -> None:
    admin = await make_staff("A1", Role.admin)
    application = create_app(settings.model_copy(update={"token_max_age_days": 2}))
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            created = await http.post(
                "/api/v1/staff",
                json={"id": "H9", "name": "New Starter", "role": "handler"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert created.status_code == 201
            assert (await _login(http, created.json()["token"])).status_code == 303
        async with application.state.resources.sessions() as session:
            expires = await session.scalar(
                select(ApiToken.expires_at).where(ApiToken.staff_id == "H9")
            )
            session_end = await session.scalar(select(StaffSession.expires_at))
    assert expires is not None and session_end is not None
    assert timedelta(days=2) - timedelta(minutes=1) < expires - utcnow() <= timedelta(days=2)
    assert session_end <= expires


async def test_housekeeping_purges_ended_sessions_after_their_retention(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, settings: Settings
) -> None:
    token = await make_staff("H1", Role.handler)
    for _ in range(3):
        assert (await _login(client, token)).status_code == 303
    resources = app.state.resources
    async with resources.sessions() as session, session.begin():
        ids = list(await session.scalars(select(StaffSession.id).order_by(StaffSession.created_at)))
        long_ago = utcnow() - timedelta(days=settings.session_retention_days + 1)
        await session.execute(
            update(StaffSession)
            .where(StaffSession.id == ids[0])
            .values(ended_at=long_ago, end_reason=EndReason.logout.value)
        )
        await session.execute(
            update(StaffSession)
            .where(StaffSession.id == ids[1])
            .values(ended_at=utcnow(), end_reason=EndReason.logout.value)
        )
    await Housekeeping(resources.sessions, settings).run_once()
    async with resources.sessions() as session:
        left = set(await session.scalars(select(StaffSession.id)))
    # The long-ended one is gone; the one that just ended and the live one stay.
    assert left == {ids[1], ids[2]}


def _cookie_flags(response: httpx.Response) -> str:
    return response.headers["set-cookie"].lower()


async def test_cookie_secure_forces_the_secure_flag(
    settings: Settings, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    for value, secure in ((True, True), (None, False)):
        application = create_app(settings.model_copy(update={"cookie_secure": value}))
        async with LifespanManager(application) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
                response = await _login(http, token)
        assert response.status_code == 303
        assert ("; secure" in _cookie_flags(response)) is secure, value


def test_cookies_are_secure_in_production_unless_turned_off() -> None:
    base = Settings(env="development")
    production = base.model_copy(update={"env": "production"})
    assert production.secure_cookies("http") is True
    assert base.secure_cookies("http") is False and base.secure_cookies("https") is True
    off = production.model_copy(update={"cookie_secure": False})
    assert off.secure_cookies("https") is False


async def test_production_sends_hsts_and_serves_no_api_documents(
    settings: Settings, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    bearer = {"Authorization": f"Bearer {token}"}
    production = create_app(settings.model_copy(update={"env": "production"}))
    async with LifespanManager(production) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            health = await http.get("/healthz")
            assert health.headers["strict-transport-security"].startswith("max-age=31536000")
            for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css"):
                assert (await http.get(path, headers=bearer)).status_code == 404, path


async def test_api_documents_need_a_login_and_load_nothing_from_outside(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    assert "strict-transport-security" not in (await client.get("/healthz")).headers
    assert (await client.get("/openapi.json")).status_code == 401
    docs = await client.get("/docs")
    assert docs.status_code == 303 and docs.headers["location"].startswith("/login")
    assert (await client.get("/redoc")).status_code == 404

    assert (await _login(client, token)).status_code == 303
    page = await client.get("/docs")
    assert page.status_code == 200
    # What the page loads: its scripts and linked files (links to other pages aside).
    sources = re.findall(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"', page.text)
    assert sources and all(s.startswith(("/", "data:")) for s in sources), sources
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for source in sources:
        if not source.startswith("data:"):
            assert (await client.get(source)).status_code == 200, source
    schema = await client.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "firstcontact"


LiveService = Callable[..., ServiceProcess]


@pytest.mark.parametrize(("trusted", "secure"), [("127.0.0.1", True), ("10.9.9.9", False)])
async def test_forwarded_allow_ips_decides_whose_forwarded_headers_count(
    live_service: LiveService, make_staff: MakeStaff, trusted: str, secure: bool
) -> None:
    """`firstcontact serve` passes FORWARDED_ALLOW_IPS to uvicorn: a proxy it trusts says
    the browser came over https (the cookie gets Secure); an untrusted peer cannot."""
    token = await make_staff("H1", Role.handler)
    service = live_service(FORWARDED_ALLOW_IPS=trusted)
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        response = await http.post(
            "/login",
            data={"token": token},
            headers={
                "Origin": service.url,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-For": "203.0.113.50",
            },
        )
    assert response.status_code == 303, response.text
    assert ("; secure" in _cookie_flags(response)) is secure
