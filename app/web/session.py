"""Browser sessions: a staff token exchanged once for a signed, short-lived cookie.

The cookie names the token it was opened with (its row id, never the token), signed with
SESSION_SECRET and timestamped, so revoking the staff member's tokens or deactivating them
ends their browser sessions too, and a cookie older than `session_max_age_seconds` is refused.
It is HttpOnly (no script can read it) and SameSite=Strict (no other site's page can make the
browser send it); state-changing requests made with it must also come from our own origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.responses import Response

from app.auth import service as auth
from app.auth.models import ApiToken, Role, Staff
from app.auth.service import Principal
from app.config import Settings

COOKIE_NAME = "fc_session"
_SALT = "firstcontact.browser-session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_secret.get_secret_value(), salt=_SALT)


def encode(settings: Settings, *, token_id: int, staff_id: str) -> str:
    """The cookie value for a session opened with the token row `token_id`."""
    return _serializer(settings).dumps({"t": token_id, "s": staff_id})


def decode(settings: Settings, value: str) -> tuple[int, str] | None:
    """(token id, staff id) of a cookie we signed that has not expired, else None."""
    try:
        payload = _serializer(settings).loads(value, max_age=settings.session_max_age_seconds)
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict):
        return None
    token_id, staff_id = payload.get("t"), payload.get("s")
    if not isinstance(token_id, int) or not isinstance(staff_id, str):
        return None
    return token_id, staff_id


async def open_session(session: AsyncSession, token: str) -> tuple[Principal, int] | None:
    """The staff member behind a live staff token, and the token's row id; None otherwise."""
    return await auth.authenticate_token(session, token)


async def principal_from_cookie(
    session: AsyncSession, settings: Settings, cookies: Mapping[str, str]
) -> Principal | None:
    """The staff member of a valid session cookie whose token is still live, else None."""
    value = cookies.get(COOKIE_NAME)
    if not value:
        return None
    decoded = decode(settings, value)
    if decoded is None:
        return None
    token_id, staff_id = decoded
    row = (
        await session.execute(
            select(Staff.id, Staff.name, Staff.role)
            .join(ApiToken, ApiToken.staff_id == Staff.id)
            .where(
                ApiToken.id == token_id,
                Staff.id == staff_id,
                ApiToken.revoked_at.is_(None),
                Staff.active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(id=row.id, name=row.name, role=Role(row.role))


def set_cookie(response: Response, conn: HTTPConnection, settings: Settings, value: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=settings.session_max_age_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=conn.url.scheme in ("https", "wss"),
    )


def clear_cookie(response: Response, conn: HTTPConnection) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=conn.url.scheme in ("https", "wss"),
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
    """The session-cookie lookup the WebSocket hub tries after the bearer token
    (registered in `resources.extras["principal_lookups"]`; the hub checks Origin first)."""
    settings: Settings = conn.state.settings
    return await principal_from_cookie(session, settings, conn.cookies)
