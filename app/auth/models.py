from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UTCDateTime, utcnow


class Role(StrEnum):
    handler = "handler"
    supervisor = "supervisor"
    qa = "qa"
    admin = "admin"
    # Machines: telephony platforms and CTI connectors that post events.
    integration = "integration"


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint(
            "role IN ('handler', 'supervisor', 'qa', 'admin', 'integration')", name="role"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The identity provider's subject, for staff made by their first single sign-on login
    # (app.auth.sso): later logins find them by it, never by a name or an address.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)


class ApiToken(Base):
    """A bearer token, kept only as its SHA-256: a leaked table gives no usable credential."""

    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_staff_id", "staff_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, shown in listings so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Refused from then on (TOKEN_MAX_AGE_DAYS after issue); issue a new one.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SessionMethod(StrEnum):
    token = "token"
    oidc = "oidc"


class EndReason(StrEnum):
    """Why a browser session ended (kept on its row for whoever asks later)."""

    logout = "logout"
    expired = "expired"
    revoked = "revoked"  # the staff member's tokens were revoked
    deactivated = "deactivated"


class StaffSession(Base):
    """A browser session: one row per login, live until it ends or expires.

    The cookie carries a random secret; the row is keyed by the secret's SHA-256, so a copy of
    the table gives no usable cookie (as for tokens). A cookie is valid only while its row is
    live: not ended, not expired, its staff member active and the token it was opened with
    not revoked.
    """

    __tablename__ = "staff_session"
    __table_args__ = (
        CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('logout', 'expired', 'revoked', 'deactivated')",
            name="end_reason",
        ),
        CheckConstraint("method IN ('token', 'oidc')", name="method"),
        Index("ix_staff_session_staff_id", "staff_id"),
        # Each worker's periodic sweep marks the sessions past their lifetime as expired.
        Index("ix_staff_session_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    # The token the session was opened with; none for a single sign-on login.
    token_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("api_token.id", ondelete="CASCADE"), nullable=True
    )
    # How it was opened: `token` (the login form) or `oidc` (single sign-on, whose logout
    # also sends the browser to the provider's end of session).
    method: Mapped[str] = mapped_column(String(8), default="token", server_default="token")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
