"""candidates: when the path began, for matching's waiting criterion

Revision ID: 0011_candidate_entered_at
Revises: 0010_matching_commute_index
Create Date: 2026-12-02 10:30:00.000000+00:00

The entry row of the history holds it (a history import dates it in the past); the
column copies it so that matching reads how long someone has waited without the history.
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = "0011_candidate_entered_at"
down_revision: str | None = "0010_matching_commute_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("entered_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE candidates SET entered_at = COALESCE("
        "(SELECT min(t.at) FROM candidate_transitions t "
        "WHERE t.candidate_id = candidates.id AND t.from_phase IS NULL), created_at)"
    )
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.alter_column(
            "entered_at",
            existing_type=app.models.base.UTCDateTime(timezone=True),
            nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_column("entered_at")
