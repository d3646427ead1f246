"""The transactional outbox (issue 18): `outbox_message` holds every message a transaction
publishes, written in that transaction and marked sent once the broker has it; `call.frame_seq`
numbers each call's messages so that frames carry their order

Revision ID: 0018_outbox
Revises: 0017_single_sign_on
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JsonDoc, UTCDateTime

revision: str = "0018_outbox"
down_revision: str | None = "0017_single_sign_on"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("frame_seq", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "outbox_message",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.BigInteger(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("channels", JsonDoc, nullable=False),
        sa.Column("bodies", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_message"),
    )
    op.create_index(
        "ix_outbox_message_unsent",
        "outbox_message",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.create_index("ix_outbox_message_sent_at", "outbox_message", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message_sent_at", "outbox_message")
    op.drop_index("ix_outbox_message_unsent", "outbox_message")
    op.drop_table("outbox_message")
    with op.batch_alter_table("call") as batch:
        batch.drop_column("frame_seq")
