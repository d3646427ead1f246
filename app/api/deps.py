"""Dependencies shared by the routers, as `Annotated` aliases.

The session dependency is the unit of work: one transaction per request, committed before the
response is sent, then the side effects the request queued with `app.db.after_commit`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import cookie as browser_session
from app.auth import policy
from app.auth import service as auth
from app.auth.policy import Capability
from app.auth.service import Principal
from app.cache import Cache
from app.config import Settings
from app.db import unit_of_work
from app.errors import Forbidden, NotAuthenticated
from app.resources import Resources

log = logging.getLogger(__name__)


def get_resources(request: Request) -> Resources:
    resources: Resources = request.state.resources
    return resources


def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def get_cache(request: Request) -> Cache:
    cache: Cache = request.state.cache
    return cache


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.state.sessions
    async with unit_of_work(sessions) as session:
        yield session


# FastAPI runs a plain `def` dependency in a worker thread: a thread hop on every request for
# an attribute read. These async twins run on the event loop.
async def _resources(request: Request) -> Resources:
    return get_resources(request)


async def _settings(request: Request) -> Settings:
    return get_settings(request)


async def _cache(request: Request) -> Cache:
    return get_cache(request)


ResourcesDep = Annotated[Resources, Depends(_resources)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CacheDep = Annotated[Cache, Depends(_cache)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticated(request: Request, session: SessionDep) -> Principal:
    """Whoever the request authenticates as (a person or a machine), else 401."""
    token = bearer_token(request)
    if token is None:
        principal = await cookie_principal(request, session)
        if principal is None:
            raise NotAuthenticated("a bearer token is required")
        request.state.principal = principal
        return principal
    principal = await auth.authenticate(session, token)
    if principal is None:
        raise NotAuthenticated("unknown or revoked token")
    request.state.principal = principal
    return principal


async def cookie_principal(request: Request, session: AsyncSession) -> Principal | None:
    """The browser path (issue 7): the staff member of a session cookie (app.auth.cookie).

    A cookie is sent by the browser on its own, so a state-changing request made with one
    must also say it comes from our own pages (Origin/Referer): SameSite=Strict already keeps
    other sites' requests cookie-less, this is the second lock.
    """
    principal = await browser_session.principal_from_cookie(
        session, get_settings(request), request.cookies
    )
    if principal is None:
        return None
    if request.method not in browser_session.SAFE_METHODS and not browser_session.same_origin(
        request
    ):
        raise Forbidden("cross-origin request refused")
    return principal


# Machines' tokens (telephony and records connectors) are refused on routes for people.
MACHINE_REFUSED = "integration tokens are refused on staff routes: log in as a member of staff"


async def get_principal(
    principal: Annotated[Principal, Depends(authenticated)],
) -> Principal:
    """The staff member making the request: any principal except a machine's (403)."""
    if not policy.allows(principal, Capability.staff_routes):
        raise Forbidden(MACHINE_REFUSED)
    return principal


CurrentStaff = Annotated[Principal, Depends(get_principal)]


def require(capability: Capability) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through the principals whose role holds `capability`
    (app.auth.policy); call-bound checks happen where the call is loaded."""

    async def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not policy.allows(principal, capability):
            if not policy.allows(principal, Capability.staff_routes):
                raise Forbidden(MACHINE_REFUSED)
            roles = policy.roles_with(capability)
            raise Forbidden("this needs the role " + " or ".join(sorted(r.value for r in roles)))
        return principal

    return check


def holding(capability: Capability) -> object:
    """`Annotated[Principal, holding(Capability.x)]`: the current staff member, if they hold x."""
    return Depends(require(capability))


Auditor = Annotated[Principal, holding(Capability.read_audit)]
StaffManager = Annotated[Principal, holding(Capability.manage_staff)]
BoardWatcher = Annotated[Principal, holding(Capability.watch_board)]
IntegrationClient = Annotated[Principal, holding(Capability.post_call_events)]
