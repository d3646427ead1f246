"""THRIVE+ assessments (THRIVE+ issue)

Revision ID: 0005_thrive
Revises: 0004_realtime
Create Date: 2026-11-25

Reserved in the chain so that the domains can land in any order; filled by its issue.
"""

from collections.abc import Sequence

revision: str = "0005_thrive"
down_revision: str | None = "0004_realtime"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
