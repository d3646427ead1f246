"""Identification mid-call (issue 13 points 3 and 4): the persons and households a handler
links to a call (`call_subject`), the caller recorded apart from the victim on a written-back
contact (`contact.caller_person_id`, `contact.caller_role`), the victim and location on the
assessment, and trigram indexes for the name and address search on PostgreSQL (pg_trgm; on
SQLite the same indexes are plain ones and the search is a simpler LIKE match)

Revision ID: 0013_call_subjects
Revises: 0012_plain_words
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UTCDateTime

revision: str = "0013_call_subjects"
down_revision: str | None = "0012_plain_words"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "'victim', 'caller', 'suspect', 'witness', 'subject'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "call_subject",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("call_id", BigId, sa.ForeignKey("call.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("linked_by", sa.String(32), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "call_id",
            "subject_type",
            "subject_id",
            "role",
            name="uq_call_subject_call_id_subject_type_subject_id_role",
        ),
        sa.CheckConstraint(f"role IN ({ROLES})", name="role"),
        sa.CheckConstraint("subject_type IN ('person', 'household')", name="subject_type"),
    )
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("caller_person_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("caller_role", sa.String(16), nullable=True))
    with op.batch_alter_table("assessment") as batch:
        batch.add_column(sa.Column("victim_person_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("location_household_id", sa.String(64), nullable=True))
    op.create_index(
        "ix_person_name_trgm",
        "person",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_household_address_trgm",
        "household",
        ["address"],
        postgresql_using="gin",
        postgresql_ops={"address": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_household_address_trgm", table_name="household")
    op.drop_index("ix_person_name_trgm", table_name="person")
    with op.batch_alter_table("assessment") as batch:
        batch.drop_column("location_household_id")
        batch.drop_column("victim_person_id")
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("caller_role")
        batch.drop_column("caller_person_id")
    op.drop_table("call_subject")
    # pg_trgm stays: other objects (or other services in the database) may use it.
