"""calls and call events (telephony issue)

Revision ID: 0002_calls
Revises: 0001_foundation
Create Date: 2026-11-25

Reserved in the chain so that the domains can land in any order; filled by its issue.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JsonDoc, UTCDateTime

revision: str = "0002_calls"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("caller_e164", sa.String(32), nullable=True),
        sa.Column("presentation", sa.String(16), nullable=False),
        sa.Column("called", sa.String(64), nullable=True),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("handler_id", sa.String(32), nullable=True),
        sa.Column("handlers", JsonDoc, nullable=False),
        sa.Column("offered_at", UTCDateTime(), nullable=True),
        sa.Column("ringing_at", UTCDateTime(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("end_cause", sa.String(64), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("marks", JsonDoc, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("source", "external_id"),
    )
    op.create_index("ix_call_offered_at", "call", ["offered_at"])
    op.create_index("ix_call_handler_id", "call", ["handler_id"])
    op.create_index("ix_call_state", "call", ["state"])
    op.create_table(
        "call_event",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("call_id", BigId, sa.ForeignKey("call.id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("seq", BigId, nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("canonical", JsonDoc, nullable=False),
        sa.Column("state_before", sa.String(16), nullable=True),
        sa.Column("state_after", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.UniqueConstraint("source", "event_id"),
    )
    op.create_index("ix_call_event_call_id", "call_event", ["call_id"])
    op.create_index("ix_call_event_pending", "call_event", ["processed_at", "claimed_until"])


def downgrade() -> None:
    op.drop_table("call_event")
    op.drop_table("call")
