"""realtime delivery (real-time issue)

Revision ID: 0004_realtime
Revises: 0003_history
Create Date: 2026-11-25

Reserved in the chain so that the domains can land in any order; filled by its issue.
"""

from collections.abc import Sequence

revision: str = "0004_realtime"
down_revision: str | None = "0003_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
