"""Who is opening a socket, and may this page open it.

Programs send `Authorization: Bearer <token>`; the browser pages use a session cookie
(`app.auth.cookie`), tried after the bearer token. A token in the URL is never accepted (it
would end up in logs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app.auth import cookie
from app.auth import service as auth
from app.auth.service import Principal
from app.config import Settings
from app.resources import Resources

PrincipalLookup = Callable[[HTTPConnection, AsyncSession], Awaitable[Principal | None]]


async def bearer_principal(conn: HTTPConnection, session: AsyncSession) -> Principal | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await auth.authenticate(session, token.strip())


async def connection_principal(conn: HTTPConnection, resources: Resources) -> Principal | None:
    """Bearer token first, then whatever lookups other domains registered (session cookie)."""
    lookups: tuple[PrincipalLookup, ...] = (bearer_principal, cookie.connection_principal)
    async with resources.sessions() as session:
        for lookup in lookups:
            principal = await lookup(conn, session)
            if principal is not None:
                return principal
    return None


def origin_allowed(conn: HTTPConnection, settings: Settings) -> bool:
    """No Origin: not a browser (programs authenticate with tokens). Otherwise the origin must
    be listed in ALLOWED_ORIGINS, or, when that is empty, be the host the socket was opened on
    (so another site's page cannot ride a handler's cookie)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    allowed = [o.strip().rstrip("/").lower() for o in settings.allowed_origins.split(",")]
    allowed = [o for o in allowed if o]
    if allowed:
        return origin in allowed
    host = conn.headers.get("host", "").lower()
    return bool(host) and urlsplit(origin).netloc == host
