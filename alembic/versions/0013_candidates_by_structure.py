"""candidates: a structure's people indexed in id order, for its list pages

Revision ID: 0013_candidates_by_structure
Revises: 0012_candidate_changes
Create Date: 2026-12-02 14:00:00.000000+00:00

The list is a keyset on the id within the caller's structure: with the structure alone
indexed, both databases read every person of the structure and sorted them (SQLite:
3.2 ms per page at 10,000 people); (structure_id, id) reads the page's rows only.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_candidates_by_structure"
down_revision: str | None = "0012_candidate_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.create_index("ix_candidates_structure_id_id", ["structure_id", "id"], unique=False)
        batch_op.drop_index("ix_candidates_structure_id")


def downgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.create_index("ix_candidates_structure_id", ["structure_id"], unique=False)
        batch_op.drop_index("ix_candidates_structure_id_id")
