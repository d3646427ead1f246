"""Staff records and their bearer tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.models import ApiToken, EndReason, Role, Staff, StaffSession
from app.db import utcnow
from app.errors import AppError

TOKEN_PREFIX = "fct_"
# TOKEN_MAX_AGE_DAYS's default (app.config), for callers without settings at hand.
DEFAULT_TOKEN_MAX_AGE_DAYS = 90
STAFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


class StaffExists(AppError):
    status, code = 409, "staff_exists"


class StaffNotFound(AppError):
    status, code = 404, "staff_not_found"


class InvalidStaff(AppError):
    status, code = 422, "invalid_staff"


@dataclass(frozen=True)
class Credential:
    """What a request or socket was authenticated with, so that it can be ended later.

    `token_id` is the bearer token's row (for a browser session: the token it was opened
    with, None for a single sign-on session); a browser session also has its id (the SHA-256
    of the cookie's secret, never the secret). `expires_at`: when it stops being valid (a
    session's end of life, a token's expiry); sockets opened with it close then.
    """

    token_id: int | None
    session_id: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who is making a request: the staff member behind a token or a session cookie."""

    id: str
    name: str
    role: Role
    # How they proved it (None for principals built by hand, e.g. in tools).
    credential: Credential | None = field(default=None, compare=False)

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


def token_unexpired() -> ColumnElement[bool]:
    """The filter that keeps tokens not past their expiry (none: issued before tokens
    expired and not yet given a date by the migration, which gives every one a date)."""
    return or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow())


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no dictionary to attack) and
    # lets us find the token by an indexed equality lookup.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_staff(
    session: AsyncSession, *, staff_id: str, name: str, role: Role, actor: str
) -> Staff:
    if not STAFF_ID.match(staff_id):
        raise InvalidStaff("staff id must be 1-32 letters, digits, '.', '_' or '-'")
    if not name.strip() or len(name) > 200:
        raise InvalidStaff("name must be 1-200 characters")
    if await session.get(Staff, staff_id) is not None:
        raise StaffExists(f"staff {staff_id} already exists")
    staff = Staff(id=staff_id, name=name.strip(), role=role.value, active=True)
    session.add(staff)
    audit.record(
        session, actor=actor, action="collection", subject_type="staff", subject_id=staff_id
    )
    await session.flush()
    return staff


async def issue_token(
    session: AsyncSession,
    staff_id: str,
    *,
    actor: str,
    max_age_days: int = DEFAULT_TOKEN_MAX_AGE_DAYS,
) -> str:
    """Create a token for `staff_id`, valid for `max_age_days` (TOKEN_MAX_AGE_DAYS), and
    return it in clear: the only time it exists so."""
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise StaffNotFound(f"no staff {staff_id}")
    token = new_token()
    session.add(
        ApiToken(
            staff_id=staff_id,
            token_hash=hash_token(token),
            prefix=token[:10],
            expires_at=utcnow() + timedelta(days=max_age_days),
        )
    )
    audit.record(
        session,
        actor=actor,
        action="alteration",
        subject_type="staff",
        subject_id=staff_id,
        justification="token issued",
    )
    await session.flush()
    return token


@dataclass(frozen=True)
class Ended:
    """Credentials that have just stopped being valid: every socket opened with one of them
    must close (app.realtime.revocation announces this to every worker after the commit)."""

    staff_id: str
    reason: EndReason
    token_ids: tuple[int, ...] = ()
    session_ids: tuple[str, ...] = ()
    # The account itself was deactivated: nothing of this person's may stay open.
    everything: bool = False

    def covers(self, principal: Principal) -> bool:
        """Whether `principal`'s credential is one of these (or the whole account ended)."""
        if principal.id != self.staff_id:
            return False
        if self.everything:
            return True
        credential = principal.credential
        if credential is None:
            return False
        return credential.token_id in self.token_ids or (
            credential.session_id is not None and credential.session_id in self.session_ids
        )


async def revoke(
    session: AsyncSession, staff_id: str, *, actor: str, deactivate: bool = False
) -> Ended:
    """Revoke every live token of `staff_id` and end their browser sessions; with
    `deactivate` the account too. Returns what ended, for the caller to announce."""
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise StaffNotFound(f"no staff {staff_id}")
    now = utcnow()
    token_ids = (
        await session.scalars(
            update(ApiToken)
            .where(ApiToken.staff_id == staff_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(ApiToken.id)
        )
    ).all()
    reason = EndReason.deactivated if deactivate else EndReason.revoked
    session_ids = (
        await session.scalars(
            update(StaffSession)
            .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason.value)
            .returning(StaffSession.id)
        )
    ).all()
    if deactivate:
        staff.active = False
    audit.record(
        session,
        actor=actor,
        action="alteration",
        subject_type="staff",
        subject_id=staff_id,
        justification="deactivated" if deactivate else "tokens revoked",
    )
    await session.flush()
    return Ended(
        staff_id=staff_id,
        reason=reason,
        token_ids=tuple(int(i) for i in token_ids),
        session_ids=tuple(session_ids),
        everything=deactivate,
    )


async def list_staff(session: AsyncSession) -> Sequence[Staff]:
    return (await session.scalars(select(Staff).order_by(Staff.id))).all()


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    """The active staff member behind a live token, or None."""
    found = await authenticate_token(session, token)
    return found[0] if found is not None else None


async def authenticate_token(session: AsyncSession, token: str) -> tuple[Principal, int] | None:
    """The active staff member behind a live token and the token's row id (a browser session
    remembers the id, so revoking the token ends the session), or None."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    row = (
        await session.execute(
            select(
                ApiToken.id,
                ApiToken.expires_at,
                Staff.id.label("staff_id"),
                Staff.name,
                Staff.role,
            )
            .join(Staff, Staff.id == ApiToken.staff_id)
            .where(
                ApiToken.token_hash == hash_token(token),
                ApiToken.revoked_at.is_(None),
                token_unexpired(),
                Staff.active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    token_id = int(row.id)
    principal = Principal(
        id=row.staff_id,
        name=row.name,
        role=Role(row.role),
        credential=Credential(token_id, expires_at=row.expires_at),
    )
    return principal, token_id


async def token_owner(session: AsyncSession, token: str) -> str | None:
    """The staff id a token was issued to, live or not (a failed login that names an
    account counts against that account too: app.auth.login_limits)."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    owner = await session.scalar(
        select(ApiToken.staff_id).where(ApiToken.token_hash == hash_token(token))
    )
    return None if owner is None else str(owner)
