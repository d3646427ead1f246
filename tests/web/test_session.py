"""The browser session: staff token -> signed cookie, its flags and expiry, revocation,
CSRF (SameSite=Strict + same-origin checks), redirects and no caching. In-process (ASGI)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.auth import cookie as browser_session
from app.auth import sessions
from app.auth.models import Role, StaffSession
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from tests.conftest import MakeStaff
from tests.support.servers import ServiceProcess

ORIGIN = "http://testserver"


async def login(client: httpx.AsyncClient, token: str, next_path: str = "") -> httpx.Response:
    return await client.post(
        "/login", data={"token": token, "next": next_path}, headers={"Origin": ORIGIN}
    )


def cookie_header(response: httpx.Response) -> str:
    headers = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert len(headers) == 1, headers
    return headers[0]


async def test_login_sets_a_strict_httponly_cookie_and_lands_on_the_role_page(
    client: httpx.AsyncClient, make_staff: MakeStaff, settings: Settings
) -> None:
    token = await make_staff("H1", Role.handler)
    response = await login(client, token)
    assert response.status_code == 303
    assert response.headers["location"] == "/handler"
    cookie = cookie_header(response)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(browser_session.COOKIE_NAME + "=")
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert f"max-age={settings.session_max_age_seconds}" in cookie.lower()
    assert "secure" not in attributes  # plain http here; https gets Secure (next test)
    assert token not in cookie  # the cookie names a session, never the token

    me = await client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["id"] == "H1"
    page = await client.get("/handler")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert 'data-staff="H1"' in page.text


async def test_cookie_is_secure_over_https(
    app: FastAPI, make_staff: MakeStaff, settings: Settings
) -> None:
    token = await make_staff("S1", Role.supervisor)
    transport = httpx.ASGITransport(app=app.state.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        response = await http.post(
            "/login", data={"token": token}, headers={"Origin": "https://testserver"}
        )
    assert response.status_code == 303 and response.headers["location"] == "/supervisor"
    assert "secure" in cookie_header(response).lower()


async def test_next_is_honoured_only_for_local_paths(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    ok = await login(client, token, "/handler/calls/7")
    assert ok.headers["location"] == "/handler/calls/7"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        response = await login(client, token, evil)
        assert response.headers["location"] == "/handler", evil


async def test_bad_token_is_refused_without_echo(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await make_staff("H1", Role.handler)
    guess = "fct_" + "x" * 43
    response = await login(client, guess)
    assert response.status_code == 401
    assert guess not in response.text
    assert "set-cookie" not in response.headers
    assert "not valid" in response.text


async def test_machine_roles_get_no_browser_session(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("T1", Role.integration)
    response = await login(client, token)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_login_and_logout_refuse_other_origins(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    for headers in ({"Origin": "http://evil.example"}, {}, {"Referer": "http://evil.example/"}):
        response = await client.post("/login", data={"token": token}, headers=headers)
        assert response.status_code == 403, headers
        assert "set-cookie" not in response.headers
    # Referer from our own page stands in for a missing Origin.
    same = await client.post(
        "/login", data={"token": token}, headers={"Referer": ORIGIN + "/login"}
    )
    assert same.status_code == 303
    assert (
        await client.post("/logout", headers={"Origin": "http://evil.example"})
    ).status_code == 403
    assert (await client.get("/api/v1/me")).status_code == 200  # still logged in


async def test_state_changing_requests_with_the_cookie_need_our_origin(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    await login(client, token)
    # A cross-origin write carried by the cookie is refused before anything happens.
    forged = await client.post("/api/v1/alerts/1/ack", headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403
    assert forged.json()["error"]["message"] == "cross-origin request refused"
    no_origin = await client.post("/api/v1/alerts/1/ack")
    assert no_origin.status_code == 403
    # Same origin passes authentication (and reaches the alert lookup: there is no alert 1).
    same = await client.post("/api/v1/alerts/1/ack", headers={"Origin": ORIGIN})
    assert same.status_code == 404
    # A bearer client is not a browser: no Origin needed.
    client.cookies.clear()
    bearer = await client.post("/api/v1/alerts/1/ack", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 404


async def test_revoked_token_ends_the_browser_session(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    admin = await make_staff("A1", Role.admin)
    await login(client, token)
    assert (await client.get("/api/v1/me")).status_code == 200
    revoked = await client.post(
        "/api/v1/staff/H1/revoke", headers={"Authorization": f"Bearer {admin}"}
    )
    assert revoked.status_code == 200, revoked.text
    assert (await client.get("/api/v1/me")).status_code == 401
    page = await client.get("/handler")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/handler"


async def session_rows(settings: Settings) -> list[StaffSession]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            found = await session.scalars(select(StaffSession).order_by(StaffSession.created_at))
            return list(found)
    finally:
        await engine.dispose()


async def test_a_login_opens_a_session_row_that_the_cookie_names(
    client: httpx.AsyncClient, make_staff: MakeStaff, settings: Settings
) -> None:
    token = await make_staff("H1", Role.handler)
    before = datetime.now(UTC)
    await login(client, token)
    [row] = await session_rows(settings)
    secret = browser_session.decode(settings, client.cookies[browser_session.COOKIE_NAME])
    assert secret is not None and secret not in row.id  # only the secret's hash is stored
    assert row.id == sessions.session_id(secret)
    assert row.staff_id == "H1" and row.token_id > 0
    assert row.ended_at is None and row.end_reason is None
    lifetime = (row.expires_at - row.created_at).total_seconds()
    assert lifetime == settings.session_max_age_seconds and row.created_at >= before
    # A cookie signed by us but naming no session (or a made-up one) is refused.
    client.cookies.set(browser_session.COOKIE_NAME, browser_session.encode(settings, "made-up"))
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_logout_ends_the_session_for_every_copy_of_the_cookie(
    client: httpx.AsyncClient, make_staff: MakeStaff, settings: Settings
) -> None:
    token = await make_staff("H1", Role.handler)
    await login(client, token)
    copied = client.cookies[browser_session.COOKIE_NAME]
    client.cookies.clear()
    await login(client, token)  # a second session of the same person (another desk)
    second = client.cookies[browser_session.COOKIE_NAME]
    client.cookies.set(browser_session.COOKIE_NAME, copied)
    assert (await client.post("/logout", headers={"Origin": ORIGIN})).status_code == 303

    cookie = {"Cookie": f"{browser_session.COOKIE_NAME}={copied}"}
    client.cookies.clear()
    for path in ("/api/v1/me", "/web/api/handler/calls", "/web/api/calls/1/screen"):
        response = await client.get(path, headers=cookie)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"
    assert (await client.get("/handler", headers=cookie)).status_code == 303
    # Logging out twice with the copy is harmless.
    again = await client.post("/logout", headers={"Origin": ORIGIN, **cookie})
    assert again.status_code == 303
    other = {"Cookie": f"{browser_session.COOKIE_NAME}={second}"}
    assert (await client.get("/api/v1/me", headers=other)).status_code == 200
    rows = await session_rows(settings)
    assert [(r.end_reason, r.ended_at is not None) for r in rows] == [
        ("logout", True),
        (None, False),
    ]


@pytest.mark.parametrize("deactivate", [False, True])
async def test_revoking_ends_every_session_with_its_reason(
    client: httpx.AsyncClient, make_staff: MakeStaff, settings: Settings, deactivate: bool
) -> None:
    token = await make_staff("H1", Role.handler)
    admin = await make_staff("A1", Role.admin)
    cookies = []
    for _ in range(2):
        client.cookies.clear()
        await login(client, token)
        cookies.append(client.cookies[browser_session.COOKIE_NAME])
    client.cookies.clear()
    revoked = await client.post(
        "/api/v1/staff/H1/revoke",
        params={"deactivate": str(deactivate).lower()},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert revoked.status_code == 200, revoked.text
    reason = "deactivated" if deactivate else "revoked"
    assert [r.end_reason for r in await session_rows(settings)] == [reason, reason]
    for value in cookies:
        me = await client.get(
            "/api/v1/me", headers={"Cookie": f"{browser_session.COOKIE_NAME}={value}"}
        )
        assert me.status_code == 401


async def test_an_expired_session_is_refused_then_recorded_as_expired(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, settings: Settings
) -> None:
    token = await make_staff("H1", Role.handler)
    await login(client, token)
    assert (await client.get("/api/v1/me")).status_code == 200
    past = datetime.now(UTC) - timedelta(seconds=1)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(update(StaffSession).values(expires_at=past))
    finally:
        await engine.dispose()
    # Refused from its expiry on, before anything records it...
    assert (await client.get("/api/v1/me")).status_code == 401
    assert (await session_rows(settings))[0].ended_at is None
    # ... and the workers' periodic pass writes down why and when it ended.
    watch = app.state.resources.credential_watch
    assert watch is not None
    await watch.recheck()
    [row] = await session_rows(settings)
    assert row.end_reason == "expired" and row.ended_at == row.expires_at


async def test_tampered_and_expired_cookies_are_refused(
    client: httpx.AsyncClient, make_staff: MakeStaff, settings: Settings
) -> None:
    token = await make_staff("H1", Role.handler)
    response = await login(client, token)
    value = client.cookies[browser_session.COOKIE_NAME]
    secret = browser_session.decode(settings, value)
    assert secret is not None

    # The payload altered: the signature no longer matches.
    tampered = value.replace(value.split(".")[0], value.split(".")[0][::-1], 1)
    client.cookies.set(browser_session.COOKIE_NAME, tampered)
    assert (await client.get("/api/v1/me")).status_code == 401

    # Signed with another secret.
    forged = URLSafeTimedSerializer("another-secret-of-sufficient-length", salt="x").dumps(
        {"sid": secret}
    )
    client.cookies.set(browser_session.COOKIE_NAME, forged)
    assert (await client.get("/api/v1/me")).status_code == 401

    # A cookie older than the session lifetime: signed with a clock set back by that much.
    class Past(URLSafeTimedSerializer):
        default_signer = type(
            "PastSigner",
            (URLSafeTimedSerializer.default_signer,),
            {"get_timestamp": lambda self: int(time.time()) - settings.session_max_age_seconds - 5},
        )

    old = Past(settings.session_secret.get_secret_value(), salt=browser_session._SALT).dumps(
        {"sid": secret}
    )
    client.cookies.set(browser_session.COOKIE_NAME, old)
    assert (await client.get("/api/v1/me")).status_code == 401
    assert response.status_code == 303


async def test_logged_out_pages_redirect_and_roles_stay_on_their_pages(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    for path in ("/", "/handler", "/supervisor", "/handler/calls/3", "/supervisor/calls/3"):
        response = await client.get(path)
        assert response.status_code == 303, path
        location = urlsplit(response.headers["location"])
        assert location.path == "/login", path
    token = await make_staff("H1", Role.handler)
    await login(client, token)
    forbidden = await client.get("/supervisor")
    assert forbidden.status_code == 403 and "403 Forbidden" in forbidden.text
    assert (await client.get("/handler/calls/424242")).status_code == 404
    board = await client.get("/web/api/board")
    assert board.status_code == 403 and board.json()["error"]["code"] == "forbidden"
    assert (await client.get("/")).headers["location"] == "/handler"


async def test_logout_clears_the_cookie(client: httpx.AsyncClient, make_staff: MakeStaff) -> None:
    token = await make_staff("S1", Role.supervisor)
    await login(client, token)
    assert (await client.get("/supervisor")).status_code == 200
    response = await client.post("/logout", headers={"Origin": ORIGIN})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "max-age=0" in cookie_header(response).lower()
    assert browser_session.COOKIE_NAME not in client.cookies
    assert (await client.get("/supervisor")).status_code == 303


async def test_static_files_are_cacheable_and_pages_are_not(client: httpx.AsyncClient) -> None:
    static = await client.get("/static/handler.js")
    assert static.status_code == 200
    assert static.headers["cache-control"] == "no-cache"  # kept, revalidated by ETag
    assert static.headers["etag"]
    assert "javascript" in static.headers["content-type"]
    login_page = await client.get("/login")
    assert login_page.headers["cache-control"] == "no-store"
    assert (await client.get("/healthz")).headers["cache-control"] == "no-store"


@pytest.mark.parametrize("value", ["", "garbage", "a.b.c", "fct_" + "y" * 200])
async def test_junk_cookies_and_tokens_never_500(
    client: httpx.AsyncClient, settings: Settings, value: str
) -> None:
    client.cookies.set(browser_session.COOKIE_NAME, value or "x")
    assert (await client.get("/handler")).status_code == 303
    response = await client.post("/login", data={"token": value}, headers={"Origin": ORIGIN})
    assert response.status_code == 401


async def test_allowed_origins_count_as_ours_behind_a_proxy(
    settings: Settings, make_staff: MakeStaff
) -> None:
    """Behind a proxy that rewrites Host, the page's origin is listed in ALLOWED_ORIGINS."""
    proxied = create_app(settings.model_copy(update={"allowed_origins": "https://cc.example"}))
    token = await make_staff("H1", Role.handler)
    async with LifespanManager(proxied) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5") as http:
            listed = await http.post(
                "/login", data={"token": token}, headers={"Origin": "https://cc.example"}
            )
            assert listed.status_code == 303
            other = await http.post(
                "/api/v1/alerts/1/ack", headers={"Origin": "https://other.example"}
            )
            assert other.status_code == 403


async def test_the_socket_accepts_the_cookie_from_our_pages_only(
    settings: Settings, make_staff: MakeStaff, live_service: Callable[..., ServiceProcess]
) -> None:
    """The browser's socket: authenticated by the session cookie, and only from our pages."""
    token = await make_staff("H1", Role.handler)
    service = live_service()
    async with httpx.AsyncClient(base_url=service.url) as http:
        opened = await http.post("/login", data={"token": token}, headers={"Origin": service.url})
        assert opened.status_code == 303
        cookie = f"{browser_session.COOKIE_NAME}={http.cookies[browser_session.COOKIE_NAME]}"

    headers = {"Cookie": cookie, "Origin": service.url}
    async with connect(service.ws_url + "/ws", additional_headers=headers) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["data"]["staff_id"] == "H1"

    for extra, code in (({"Origin": "http://evil.example"}, 4003), ({"Cookie": "x=y"}, 4001)):
        async with connect(service.ws_url + "/ws", additional_headers={**headers, **extra}) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == code, extra
