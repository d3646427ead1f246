"""history, contacts, markers, alerts (history issue)

Revision ID: 0003_history
Revises: 0002_calls
Create Date: 2026-11-25

Reserved in the chain so that the domains can land in any order; filled by its issue.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JsonDoc, UTCDateTime

revision: str = "0003_history"
down_revision: str | None = "0002_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "household",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("uprn", sa.String(12), nullable=True),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_household_uprn", "household", ["uprn"])
    op.create_table(
        "phone",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("e164", sa.String(20), nullable=False),
        sa.Column(
            "person_id",
            sa.String(64),
            sa.ForeignKey("person.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_date", sa.Date(), nullable=True),
        sa.Column("to_date", sa.Date(), nullable=True),
        sa.UniqueConstraint("person_id", "e164", name="uq_phone_person_id_e164"),
    )
    op.create_index("ix_phone_e164", "phone", ["e164"])
    op.create_table(
        "person_household",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "person_id",
            sa.String(64),
            sa.ForeignKey("person.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "household_id",
            sa.String(64),
            sa.ForeignKey("household.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_date", sa.Date(), nullable=True),
        sa.Column("to_date", sa.Date(), nullable=True),
        sa.UniqueConstraint(
            "person_id", "household_id", name="uq_person_household_person_id_household_id"
        ),
    )
    op.create_index("ix_person_household_household_id", "person_household", ["household_id"])
    op.create_table(
        "contact",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("number", sa.String(20), nullable=True),
        sa.Column("person_id", sa.String(64), nullable=True),
        sa.Column("household_id", sa.String(64), nullable=True),
        sa.Column("incident_type", sa.String(64), nullable=True),
        sa.Column("victim", sa.Boolean(), nullable=False),
        sa.Column("domestic_abuse", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.Column("call_id", BigId, sa.ForeignKey("call.id", ondelete="SET NULL"), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("call_id", name="uq_contact_call_id"),
    )
    op.create_index("ix_contact_number_occurred_at", "contact", ["number", "occurred_at"])
    op.create_index("ix_contact_person_id_occurred_at", "contact", ["person_id", "occurred_at"])
    op.create_index(
        "ix_contact_household_id_occurred_at", "contact", ["household_id", "occurred_at"]
    )
    op.create_table(
        "marker",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=True),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("subject_type IN ('person', 'household')", name="subject_type"),
    )
    op.create_index("ix_marker_subject", "marker", ["subject_type", "subject_id"])
    op.create_table(
        "alert",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("call_id", BigId, sa.ForeignKey("call.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("reasons", JsonDoc, nullable=False),
        sa.Column("evidence", JsonDoc, nullable=False),
        sa.Column("rule", sa.String(120), nullable=False),
        sa.Column("tags", JsonDoc, nullable=False),
        sa.Column("suggested_grade", sa.String(40), nullable=True),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(32), nullable=True),
    )
    op.create_index("ix_alert_call_id", "alert", ["call_id"])
    op.create_table(
        "call_context",
        sa.Column(
            "call_id",
            BigId,
            sa.ForeignKey("call.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("context", JsonDoc, nullable=False),
        sa.Column("looked_up_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "history_version",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "history_version",
        "call_context",
        "alert",
        "marker",
        "contact",
        "person_household",
        "phone",
        "household",
        "person",
    ):
        op.drop_table(table)
