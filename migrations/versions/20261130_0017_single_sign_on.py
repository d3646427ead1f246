"""Single sign-on (issue 16): a staff member made by their first OpenID Connect login keeps
the provider's subject (`staff.oidc_subject`), and a browser session opened through the
provider has no token behind it (`staff_session.token_id` nullable, `staff_session.method`
saying how it was opened: its logout also ends the provider's session); tokens expire
(`api_token.expires_at`; tokens issued before get TOKEN_MAX_AGE_DAYS's default from their
creation)

Revision ID: 0017_single_sign_on
Revises: 0016_audit_chain
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from app.db import BigId, UTCDateTime

# The default of TOKEN_MAX_AGE_DAYS, given to the tokens that exist when this runs.
EXISTING_TOKEN_DAYS = 90

revision: str = "0017_single_sign_on"
down_revision: str | None = "0016_audit_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("oidc_subject", sa.String(255), nullable=True))
        batch.create_unique_constraint("uq_staff_oidc_subject", ["oidc_subject"])
    with op.batch_alter_table("staff_session") as batch:
        batch.alter_column("token_id", existing_type=BigId, nullable=True)
        batch.add_column(sa.Column("method", sa.String(8), nullable=False, server_default="token"))
        batch.create_check_constraint("method", "method IN ('token', 'oidc')")
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
    bind = op.get_bind()
    tokens = sa.table(
        "api_token",
        sa.column("id", BigId),
        sa.column("created_at", UTCDateTime()),
        sa.column("expires_at", UTCDateTime()),
    )
    # Staff tokens are few (one or two per person): row by row keeps the date arithmetic
    # the same on both databases.
    for token_id, created_at in bind.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        bind.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(expires_at=created_at + timedelta(days=EXISTING_TOKEN_DAYS))
        )


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
    op.execute("DELETE FROM staff_session WHERE token_id IS NULL")
    with op.batch_alter_table("staff_session") as batch:
        batch.drop_constraint("method", type_="check")
        batch.drop_column("method")
        batch.alter_column("token_id", existing_type=BigId, nullable=False)
    with op.batch_alter_table("staff") as batch:
        batch.drop_constraint("uq_staff_oidc_subject", type_="unique")
        batch.drop_column("oidc_subject")
