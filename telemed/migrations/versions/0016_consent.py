"""the patient's consent to share and to call

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 07:30:00

Reserved in the chain so that work on several branches lands in one straight line; until
its change lands, this revision changes nothing.
"""

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
