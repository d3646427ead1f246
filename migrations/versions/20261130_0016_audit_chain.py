"""A tamper-evident audit log (issue 16 point 4): every audit row carries its place in a hash
chain (`seq`), the hash of the row before it and its own hash; `audit_chain_head` holds the
last link. Rows already stored are chained here in the order they were written (by id).

Revision ID: 0016_audit_chain
Revises: 0015_alert_acks_feedback
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.audit.chain import AUDIT, FIELDS, digest
from app.audit.models import GENESIS

revision: str = "0016_audit_chain"
down_revision: str | None = "0015_alert_acks_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("base_seq", sa.BigInteger(), nullable=False),
        sa.Column("base_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    # The rows written so far, chained in the order they were written. Read through the
    # model's table so times and JSON come back as the application reads them.
    seq, prev = 0, GENESIS
    ids = [r[0] for r in bind.execute(sa.select(AUDIT.c.id).order_by(AUDIT.c.id))]
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        rows = bind.execute(
            sa.select(AUDIT.c.id, *(AUDIT.c[n] for n in (*FIELDS, "records")))
            .where(AUDIT.c.id.in_(chunk))
            .order_by(AUDIT.c.id)
        )
        for row in rows:
            seq += 1
            linked = {**dict(row._mapping), "seq": seq}
            new = digest(prev, linked)
            bind.execute(
                sa.update(AUDIT)
                .where(AUDIT.c.id == row.id)
                .values(seq=seq, prev_hash=prev, hash=new)
            )
            prev = new
    bind.execute(
        sa.text(
            "INSERT INTO audit_chain_head (id, seq, hash, base_seq, base_hash) "
            "VALUES (1, :seq, :hash, 0, :genesis)"
        ),
        {"seq": seq, "hash": prev, "genesis": GENESIS},
    )
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
    op.create_index("uq_audit_log_seq", "audit_log", ["seq"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_audit_log_seq", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
    op.drop_table("audit_chain_head")
