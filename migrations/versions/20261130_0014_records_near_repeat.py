"""Records kept current and near repeat (issue 13 points 7 and 9): households may carry
British National Grid coordinates and their grid cell; contacts carry the location of their
household, with an index on (grid cell, time) so the near-repeat lookup reads only the recent
contacts of the cells around a caller's household, whatever the size of the history

Revision ID: 0014_records_near_repeat
Revises: 0013_call_subjects
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_records_near_repeat"
down_revision: str | None = "0013_call_subjects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("household", "contact"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("easting", sa.Float(), nullable=True))
            batch.add_column(sa.Column("northing", sa.Float(), nullable=True))
            batch.add_column(sa.Column("grid_cell", sa.BigInteger(), nullable=True))
    op.create_index("ix_household_grid_cell", "household", ["grid_cell"])
    op.create_index("ix_contact_grid_cell_occurred_at", "contact", ["grid_cell", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_contact_grid_cell_occurred_at", table_name="contact")
    op.drop_index("ix_household_grid_cell", table_name="household")
    for table in ("contact", "household"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("grid_cell")
            batch.drop_column("northing")
            batch.drop_column("easting")
