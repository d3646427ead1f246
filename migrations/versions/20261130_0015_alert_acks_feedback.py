"""Acknowledgements per person and alert feedback (issue 15 points 3 and 5): each person's
acknowledgement of an alert in a row of its own (the handler's and a supervisor's kept apart;
those recorded so far copied in), handlers' verdicts on alerts, and an index on when alerts
were raised for the per-rule precision of the last 30 days

Revision ID: 0015_alert_acks_feedback
Revises: 0014_records_near_repeat
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UTCDateTime

revision: str = "0015_alert_acks_feedback"
down_revision: str | None = "0014_records_near_repeat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_acknowledgement",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("alert_id", BigId, sa.ForeignKey("alert.id", ondelete="CASCADE"), nullable=False),
        sa.Column("staff_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "alert_id", "staff_id", name="uq_alert_acknowledgement_alert_id_staff_id"
        ),
    )
    op.create_table(
        "alert_feedback",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("alert_id", BigId, sa.ForeignKey("alert.id", ondelete="CASCADE"), nullable=False),
        sa.Column("staff_id", sa.String(32), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("given_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("alert_id", "staff_id", name="uq_alert_feedback_alert_id_staff_id"),
        sa.CheckConstraint(
            "verdict IN ('helpful', 'not_relevant', 'wrong_person')", name="verdict_known"
        ),
    )
    op.create_index("ix_alert_raised_at", "alert", ["raised_at"])
    # The acknowledgements recorded so far (one per alert) become their person's row.
    op.execute(
        "INSERT INTO alert_acknowledgement (alert_id, staff_id, role, acknowledged_at) "
        "SELECT a.id, a.acknowledged_by, COALESCE(s.role, 'handler'), a.acknowledged_at "
        "FROM alert a LEFT JOIN staff s ON s.id = a.acknowledged_by "
        "WHERE a.acknowledged_at IS NOT NULL AND a.acknowledged_by IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_alert_raised_at", table_name="alert")
    op.drop_table("alert_feedback")
    op.drop_table("alert_acknowledgement")
