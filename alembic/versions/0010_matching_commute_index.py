"""matching: candidates indexed by commute and location

Revision ID: 0010_matching_commute_index
Revises: 0009_runtime
Create Date: 2026-12-02 09:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_matching_commute_index"
down_revision: str | None = "0009_runtime"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_candidates_commute_location",
            ["max_commute_km", "latitude", "longitude"],
            unique=False,
        )
        batch_op.drop_index("ix_candidates_max_commute_km")


def downgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.create_index("ix_candidates_max_commute_km", ["max_commute_km"], unique=False)
        batch_op.drop_index("ix_candidates_commute_location")
