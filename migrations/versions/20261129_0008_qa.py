"""Quality assurance: samples, reviews and their answers, the training register (issue 12)

Revision ID: 0008_qa
Revises: 0007_drafts
Create Date: 2026-11-29

Chained onto 0005 on its branch; re-chained after the revisions that land before it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JsonDoc, UTCDateTime

revision: str = "0008_qa"
down_revision: str | None = "0007_drafts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qa_sample",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("per_handler", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("criteria", JsonDoc, nullable=False),
        sa.Column("drawn_by", sa.String(32), nullable=False),
        sa.Column("drawn_at", UTCDateTime(), nullable=False),
        sa.Column("shortfalls", JsonDoc, nullable=False),
    )
    op.create_index("ix_qa_sample_month", "qa_sample", ["month"])
    op.create_table(
        "qa_sample_call",
        sa.Column(
            "sample_id",
            BigId,
            sa.ForeignKey("qa_sample.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("call_id", BigId, sa.ForeignKey("call.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("handler_id", sa.String(32), nullable=False),
    )
    op.create_index("ix_qa_sample_call_call_id", "qa_sample_call", ["call_id"])
    op.create_table(
        "qa_review",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("call_id", BigId, sa.ForeignKey("call.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.String(32), nullable=False),
        sa.Column("reviewer_role", sa.String(16), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(), nullable=False),
        sa.Column(
            "sample_id", BigId, sa.ForeignKey("qa_sample.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("form", sa.String(130), nullable=False),
        sa.Column("handler_id", sa.String(32), nullable=True),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("call_month", sa.String(7), nullable=False),
        sa.Column("offered_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("call_id", "ordinal"),
        sa.UniqueConstraint("call_id", "reviewer_id", name="reviewer"),
    )
    op.create_index("ix_qa_review_call_month", "qa_review", ["call_month", "ordinal"])
    op.create_index("ix_qa_review_handler_id", "qa_review", ["handler_id"])
    op.create_index("ix_qa_review_sample_id", "qa_review", ["sample_id"])
    op.create_table(
        "qa_answer",
        sa.Column(
            "review_id",
            BigId,
            sa.ForeignKey("qa_review.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("standard", sa.String(80), primary_key=True),
        sa.Column("answer", sa.String(80), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=False),
        sa.Column("applicable", sa.Boolean(), nullable=False),
        sa.Column("feedback", sa.Text(), nullable=True),
    )
    op.create_table(
        "training_record",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "staff_id", sa.String(32), sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("module", sa.String(80), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("staff_id", "module", "completed_on"),
    )
    op.create_index("ix_training_record_module", "training_record", ["module"])


def downgrade() -> None:
    op.drop_table("training_record")
    op.drop_table("qa_answer")
    op.drop_table("qa_review")
    op.drop_table("qa_sample_call")
    op.drop_table("qa_sample")
