"""Server-side browser sessions: a `staff_session` row per login, ended by logout, expiry,
revocation of the staff member's tokens or deactivation of the account.

The browser's cookie carries the session's secret (signed, see app.auth.cookie); the row is
keyed by the secret's SHA-256, which is also the id that names the session everywhere else
(credentials, the control messages that close sockets). Nothing here commits.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiToken, EndReason, Role, SessionMethod, Staff, StaffSession
from app.auth.service import Credential, Ended, Principal, token_unexpired
from app.db import utcnow

# Ids per IN (...) list when many credentials are checked at once (a worker's sockets).
CHECK_CHUNK = 500

# SQLAlchemy's Select is generic over its row's columns; this filter takes a select of any row.
_Q = TypeVar("_Q", bound="Select[*tuple[Any, ...]]")


def session_id(secret: str) -> str:
    """The row id of the session whose cookie carries `secret`. The secret has 256 random
    bits, so a fast hash is enough (as for tokens)."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def open_session(
    session: AsyncSession,
    principal: Principal,
    *,
    max_age_seconds: int,
    method: SessionMethod = SessionMethod.token,
) -> tuple[str, Principal]:
    """Start a session for `principal`, authenticated just now by a token (the login form)
    or by the identity provider (`SessionMethod.oidc`): the secret for the cookie, shown
    only here, and the principal with the session as its credential. A session opened with
    a token ends no later than the token."""
    token_id: int | None = None
    now = utcnow()
    expires_at = now + timedelta(seconds=max_age_seconds)
    if method is SessionMethod.token:
        if principal.credential is None or principal.credential.token_id is None:
            raise ValueError("a token session is opened with a token")
        token_id = principal.credential.token_id
        token_expiry = principal.credential.expires_at
        if token_expiry is not None:
            expires_at = min(expires_at, token_expiry)
    secret = secrets.token_urlsafe(32)
    row = StaffSession(
        id=session_id(secret),
        staff_id=principal.id,
        token_id=token_id,
        method=method.value,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    credential = Credential(token_id, row.id, row.expires_at)
    return secret, Principal(principal.id, principal.name, principal.role, credential)


def _live_only(query: _Q) -> _Q:
    """`query` (on staff_session) restricted to live sessions: not ended, not expired, of an
    active staff member, and, when opened with a token, that token neither revoked nor
    expired (a single sign-on session has none)."""
    return (
        query.join(Staff, Staff.id == StaffSession.staff_id)
        .outerjoin(ApiToken, ApiToken.id == StaffSession.token_id)
        .where(
            StaffSession.ended_at.is_(None),
            StaffSession.expires_at > utcnow(),
            Staff.active.is_(True),
            or_(
                StaffSession.token_id.is_(None),
                and_(ApiToken.revoked_at.is_(None), token_unexpired()),
            ),
        )
    )


async def principal_for(session: AsyncSession, secret: str) -> Principal | None:
    """The staff member of the live session whose cookie carries `secret`, else None."""
    query = select(
        StaffSession.id,
        StaffSession.token_id,
        StaffSession.expires_at,
        Staff.id.label("staff_id"),
        Staff.name,
        Staff.role,
    ).where(StaffSession.id == session_id(secret))
    row = (await session.execute(_live_only(query))).first()
    if row is None:
        return None
    token_id = None if row.token_id is None else int(row.token_id)
    credential = Credential(token_id, row.id, row.expires_at)
    return Principal(row.staff_id, row.name, Role(row.role), credential)


async def end(
    session: AsyncSession, secret: str, reason: EndReason
) -> tuple[Ended, SessionMethod] | None:
    """End the session whose cookie carries `secret` (logout): what ended and how the
    session had been opened. None when it was not live (an expired one stays to be recorded
    as expired: its sockets closed at its expiry)."""
    sid = session_id(secret)
    now = utcnow()
    row = (
        await session.execute(
            update(StaffSession)
            .where(
                StaffSession.id == sid,
                StaffSession.ended_at.is_(None),
                StaffSession.expires_at > now,
            )
            .values(ended_at=now, end_reason=reason.value)
            .returning(StaffSession.staff_id, StaffSession.method)
        )
    ).first()
    if row is None:
        return None
    ended = Ended(staff_id=row.staff_id, reason=reason, session_ids=(sid,))
    return ended, SessionMethod(row.method)


async def end_expired(session: AsyncSession) -> int:
    """Mark the sessions past their lifetime as ended (`expired`, at their expiry time).

    Only bookkeeping: an expired session is refused from its expiry on whether or not this
    ran, and its sockets close at that moment (each socket has its own deadline)."""
    result = await session.execute(
        update(StaffSession)
        .where(StaffSession.ended_at.is_(None), StaffSession.expires_at <= utcnow())
        .values(ended_at=StaffSession.expires_at, end_reason=EndReason.expired.value)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def live(session: AsyncSession, credentials: Iterable[Credential]) -> set[Credential]:
    """Which of `credentials` are still valid, in a few queries whatever their number: a
    token not revoked of an active staff member; a session live as `principal_for` says."""
    wanted = set(credentials)
    tokens = sorted({c.token_id for c in wanted if c.session_id is None and c.token_id})
    sessions = sorted({c.session_id for c in wanted if c.session_id is not None})
    live_tokens: set[int] = set()
    live_sessions: set[str] = set()
    for start in range(0, len(tokens), CHECK_CHUNK):
        chunk = tokens[start : start + CHECK_CHUNK]
        found = await session.scalars(
            select(ApiToken.id)
            .join(Staff, Staff.id == ApiToken.staff_id)
            .where(
                ApiToken.id.in_(chunk),
                ApiToken.revoked_at.is_(None),
                token_unexpired(),
                Staff.active.is_(True),
            )
        )
        live_tokens.update(int(i) for i in found)
    for start in range(0, len(sessions), CHECK_CHUNK):
        chunk_ids = sessions[start : start + CHECK_CHUNK]
        query = select(StaffSession.id).where(StaffSession.id.in_(chunk_ids))
        live_sessions.update(await session.scalars(_live_only(query)))
    return {
        c
        for c in wanted
        if (c.session_id in live_sessions) or (c.session_id is None and c.token_id in live_tokens)
    }


async def purge_ended(session: AsyncSession, ended_before: datetime) -> int:
    """Delete the rows of sessions that ended before `ended_before` (housekeeping): an ended
    session can never be live again, its row only says when and why it ended."""
    result = await session.execute(
        delete(StaffSession)
        .where(StaffSession.ended_at.is_not(None), StaffSession.ended_at < ended_before)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
