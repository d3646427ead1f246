"""history, contacts, markers, alerts (history issue)

Revision ID: 0003_history
Revises: 0002_calls
Create Date: 2026-11-25

Reserved in the chain so that the domains can land in any order; filled by its issue.
"""

from collections.abc import Sequence

revision: str = "0003_history"
down_revision: str | None = "0002_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
