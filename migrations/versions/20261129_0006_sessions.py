"""server-side browser sessions (Trust issue)

Revision ID: 0006_sessions
Revises: 0005_thrive
Create Date: 2026-11-29

A row per login; the signed cookie carries the session's secret, the row its SHA-256.
Cookies signed before this revision name a token instead and are refused: log in again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UTCDateTime

revision: str = "0006_sessions"
down_revision: str | None = "0005_thrive"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_session",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "staff_id", sa.String(32), sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "token_id", BigId, sa.ForeignKey("api_token.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('logout', 'expired', 'revoked', 'deactivated')",
            name="end_reason",
        ),
    )
    op.create_index("ix_staff_session_staff_id", "staff_session", ["staff_id"])
    op.create_index("ix_staff_session_expires_at", "staff_session", ["expires_at"])


def downgrade() -> None:
    op.drop_table("staff_session")
