"""THRIVE+ assessments (THRIVE+ issue)

Revision ID: 0005_thrive
Revises: 0004_realtime
Create Date: 2026-11-25

Reserved in the chain so that the domains can land in any order; filled by its issue.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JsonDoc, UTCDateTime

revision: str = "0005_thrive"
down_revision: str | None = "0004_realtime"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_thrive",
        sa.Column(
            "call_id",
            BigId,
            sa.ForeignKey("call.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("incident_type", sa.String(64), nullable=True),
        sa.Column("incident_type_set_at", UTCDateTime(), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("prompts_answered", JsonDoc, nullable=False),
        sa.Column("advice_given", JsonDoc, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "call_cue",
        sa.Column(
            "call_id",
            BigId,
            sa.ForeignKey("call.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("cue_id", sa.String(80), primary_key=True),
        sa.Column("strand", sa.String(64), nullable=False),
        sa.Column("matched", JsonDoc, nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "assessment",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("call_id", BigId, sa.ForeignKey("call.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.String(32), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("incident_type", sa.String(64), nullable=False),
        sa.Column("grade", sa.String(32), nullable=False),
        sa.Column("suggested_grade", sa.String(32), nullable=True),
        sa.Column("grade_reason", sa.Text(), nullable=True),
        sa.Column("elements", JsonDoc, nullable=False),
        sa.Column("advice_given", JsonDoc, nullable=False),
        sa.Column("prompts_answered", JsonDoc, nullable=False),
        sa.Column("repeat_victim_check", sa.String(16), nullable=True),
        sa.Column("victim", sa.Boolean(), nullable=False),
        sa.Column("domestic_abuse", sa.Boolean(), nullable=False),
        sa.Column("alert_kinds", JsonDoc, nullable=False),
        sa.UniqueConstraint("call_id", "version"),
        sa.CheckConstraint(
            "grade IN ('emergency', 'priority', 'scheduled', 'resolution_without_deployment')",
            name="grade",
        ),
        sa.CheckConstraint(
            "repeat_victim_check IS NULL OR repeat_victim_check IN ('yes', 'no', 'not_applicable')",
            name="repeat_victim_check",
        ),
    )
    op.create_index("ix_assessment_submitted_at", "assessment", ["submitted_at"])


def downgrade() -> None:
    op.drop_table("assessment")
    op.drop_table("call_cue")
    op.drop_table("call_thrive")
