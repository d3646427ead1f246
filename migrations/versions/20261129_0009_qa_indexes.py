"""QA report at scale (issue 12, bench/qa): an index of the calls graded more than once
(calibration), and the monthly table's running sums (`qa_month_tally`), derived here from
the reviews already stored

Revision ID: 0009_qa_indexes
Revises: 0008_qa
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_qa_indexes"
down_revision: str | None = "0008_qa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qa_month_tally",
        sa.Column("call_month", sa.String(7), primary_key=True),
        sa.Column("standard", sa.String(80), primary_key=True),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("met", sa.Integer(), nullable=False),
        sa.Column("applicable", sa.Integer(), nullable=False),
    )
    # The sums of what is stored: every first review's answers (the same rule as the report).
    op.execute(
        "INSERT INTO qa_month_tally (call_month, standard, answered, met, applicable) "
        "SELECT r.call_month, a.standard, count(*), "
        "sum(CASE WHEN a.met THEN 1 ELSE 0 END), sum(CASE WHEN a.applicable THEN 1 ELSE 0 END) "
        "FROM qa_answer a JOIN qa_review r ON r.id = a.review_id WHERE r.ordinal = 1 "
        "GROUP BY r.call_month, a.standard"
    )
    op.create_index(
        "ix_qa_review_calibration",
        "qa_review",
        ["call_month", "call_id"],
        postgresql_where=sa.text("ordinal > 1"),
        sqlite_where=sa.text("ordinal > 1"),
    )


def downgrade() -> None:
    op.drop_table("qa_month_tally")
    op.drop_index("ix_qa_review_calibration", table_name="qa_review")
