"""Assessment drafts and idempotent writes (issue 11, "Trust")

Revision ID: 0007_drafts
Revises: 0006_sessions (re-chained onto 0006_sessions when the branches merge)
Create Date: 2026-11-29

`assessment_draft`: the assessment form as typed, per call and handler, with a revision for
optimistic concurrency and the "deferred" choice. `idempotent_request`: the stored outcome of
each write sent with an `Idempotency-Key` (unique per staff member and key).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JsonDoc, UTCDateTime

revision: str = "0007_drafts"
down_revision: str | None = "0006_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessment_draft",
        sa.Column(
            "call_id",
            BigId,
            sa.ForeignKey("call.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column(
            "staff_id",
            sa.String(32),
            sa.ForeignKey("staff.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("form", JsonDoc, nullable=False),
        sa.Column("deferred", sa.Boolean(), nullable=False),
        sa.Column("deferred_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "idempotent_request",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "staff_id",
            sa.String(32),
            sa.ForeignKey("staff.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", JsonDoc, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("staff_id", "key"),
    )
    op.create_index("ix_idempotent_request_created_at", "idempotent_request", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotent_request")
    op.drop_table("assessment_draft")
