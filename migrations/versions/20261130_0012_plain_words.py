"""Plain words and marker categories (issue 13, points 5 and 6)

Revision ID: 0012_plain_words
Revises: 0011_qualifiers (the lead re-chains the issue 13 revisions when the branches merge)
Create Date: 2026-11-30

`person_household.relationship`: how a member relates to the household's reference person
(memberships.csv's optional `relationship` column), so alerts can say "Jo Demo (partner, 41)".
`alert.category`: officer_safety, safeguarding, orders, needs or history, for the screens'
headings; `alert.evidence_lines`: the evidence in plain words (`evidence` keeps the ids).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import JsonDoc

revision: str = "0012_plain_words"
down_revision: str | None = "0011_qualifiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("person_household", sa.Column("relationship", sa.String(20), nullable=True))
    op.add_column("alert", sa.Column("category", sa.String(20), nullable=True))
    # Alerts raised before this revision have no plain-words evidence: an empty list, so
    # readers need not tell "none" from "not computed".
    op.add_column(
        "alert",
        sa.Column("evidence_lines", JsonDoc, nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("evidence_lines")
        batch.drop_column("category")
    with op.batch_alter_table("person_household") as batch:
        batch.drop_column("relationship")
