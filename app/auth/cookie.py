"""Browser sessions: a staff token (or a single sign-on login, app.web.login) exchanged once
for a server-side session and its cookie.

Each login opens a `staff_session` row (app.auth.sessions); the cookie carries the session's
random secret, signed with SESSION_SECRET and timestamped. A cookie is valid only while its
row is live: logout, expiry (SESSION_MAX_AGE_SECONDS), revoking the staff member's tokens or
deactivating them ends it, so a copied cookie stops working too, and the sockets opened with
it close (app.realtime.revocation). The cookie is HttpOnly (no script can read it),
SameSite=Strict (no other site's page can make the browser send it) and Secure per
COOKIE_SECURE (on in production); state-changing requests made with it must also come from
our own origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.responses import Response

from app.auth import service as auth
from app.auth import sessions
from app.auth.models import EndReason, SessionMethod
from app.auth.service import Ended, Principal
from app.config import Settings

COOKIE_NAME = "fc_session"
_SALT = "firstcontact.browser-session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A secret from secrets.token_urlsafe(32) is 43 characters; anything much longer is not ours.
_MAX_SECRET = 64


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_secret.get_secret_value(), salt=_SALT)


def encode(settings: Settings, secret: str) -> str:
    """The cookie value for the session whose secret is `secret`."""
    return _serializer(settings).dumps({"sid": secret})


def decode(settings: Settings, value: str) -> str | None:
    """The session secret in a cookie we signed that has not expired, else None. (The row
    decides whether the session is live; the signature's age is a second lock.)"""
    try:
        payload = _serializer(settings).loads(value, max_age=settings.session_max_age_seconds)
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict):
        return None
    secret = payload.get("sid")
    if not isinstance(secret, str) or not secret or len(secret) > _MAX_SECRET:
        return None
    return secret


async def authenticate_token(session: AsyncSession, token: str) -> Principal | None:
    """The staff member behind a live staff token (the login form's), else None."""
    return await auth.authenticate(session, token)


async def open_session(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    method: SessionMethod = SessionMethod.token,
) -> str:
    """Start a server-side session for `principal` (just authenticated by a token, or by
    the identity provider): the cookie value that names it."""
    secret, _ = await sessions.open_session(
        session, principal, max_age_seconds=settings.session_max_age_seconds, method=method
    )
    return encode(settings, secret)


async def principal_from_cookie(
    session: AsyncSession, settings: Settings, cookies: Mapping[str, str]
) -> Principal | None:
    """The staff member of a valid cookie whose session is live, else None."""
    value = cookies.get(COOKIE_NAME)
    if not value:
        return None
    secret = decode(settings, value)
    if secret is None:
        return None
    return await sessions.principal_for(session, secret)


async def end_session(
    session: AsyncSession, settings: Settings, cookies: Mapping[str, str]
) -> tuple[Ended, SessionMethod] | None:
    """Logout: end the session of this cookie (whoever holds a copy of it is out too); what
    ended and how it had been opened."""
    value = cookies.get(COOKIE_NAME)
    secret = decode(settings, value) if value else None
    if secret is None:
        return None
    return await sessions.end(session, secret, EndReason.logout)


def set_cookie(response: Response, conn: HTTPConnection, settings: Settings, value: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=settings.session_max_age_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies(conn.url.scheme),
    )


def clear_cookie(response: Response, conn: HTTPConnection, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies(conn.url.scheme),
    )


def same_origin(conn: HTTPConnection) -> bool:
    """Whether the request says it comes from a page of this very host (or of an origin in
    ALLOWED_ORIGINS, the list the WebSocket accepts too: behind a proxy that rewrites Host).

    Browsers send `Origin` on every cross-origin request and on same-origin POSTs; when it is
    missing (some older browsers on same-origin requests) `Referer` stands in. A request with
    neither is refused: a browser always sends one of them for a fetch or a form post unless a
    page asked it not to, and ours do not (Referrer-Policy: same-origin).
    """
    source = conn.headers.get("origin") or conn.headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    if not parts.netloc:
        return False
    settings: Settings | None = getattr(conn.state, "settings", None)
    if settings is not None and settings.allowed_origins:
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        allowed = {o.strip().rstrip("/").lower() for o in settings.allowed_origins.split(",")}
        if origin in allowed:
            return True
    return parts.netloc.lower() == conn.headers.get("host", "").lower()


async def connection_principal(conn: HTTPConnection, session: AsyncSession) -> Principal | None:
    """The session-cookie lookup the WebSocket hub tries after the bearer token (the hub
    checks Origin first)."""
    settings: Settings = conn.state.settings
    return await principal_from_cookie(session, settings, conn.cookies)
