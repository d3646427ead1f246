"""calls and call events (telephony issue)

Revision ID: 0002_calls
Revises: 0001_foundation
Create Date: 2026-11-25

Reserved in the chain so that the domains can land in any order; filled by its issue.
"""

from collections.abc import Sequence

revision: str = "0002_calls"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
