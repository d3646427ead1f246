"""Qualifiers on a call (issue 13 point 2): domestic_abuse, hate_crime (with its strands),
child_involved, adult_at_risk, weapons, whatever the incident type; NULL until set

Revision ID: 0011_qualifiers
Revises: 0009_qa_indexes
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import JsonDoc

revision: str = "0011_qualifiers"
down_revision: str | None = "0009_qa_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("qualifiers", JsonDoc, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.drop_column("qualifiers")
