"""QA report indexes: the calls graded more than once (calibration), found without reading
every review of the months (issue 12, bench/qa)

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
    op.create_index(
        "ix_qa_review_calibration",
        "qa_review",
        ["call_month", "call_id"],
        postgresql_where=sa.text("ordinal > 1"),
        sqlite_where=sa.text("ordinal > 1"),
    )


def downgrade() -> None:
    op.drop_index("ix_qa_review_calibration", table_name="qa_review")
