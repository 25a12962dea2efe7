"""matching

Revision ID: 0004_matching
Revises: 0003_path_machine
Create Date: 2026-11-28 12:51:57.358147+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0004_matching"
down_revision: str | None = "0003_path_machine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "preferred_contract_types",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )
        batch_op.add_column(sa.Column("max_weekly_hours", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("training_hours", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "positive_skills_assessments", sa.Integer(), nullable=False, server_default="0"
            )
        )
        batch_op.create_index(
            "ix_candidates_latitude_longitude", ["latitude", "longitude"], unique=False
        )
        batch_op.create_index("ix_candidates_max_commute_km", ["max_commute_km"], unique=False)
    # Existing candidates: their activities so far.
    op.execute(
        "UPDATE candidates SET "
        "training_hours = COALESCE((SELECT SUM(hours) FROM activities a "
        "WHERE a.candidate_id = candidates.id AND a.type = 'training'), 0), "
        "positive_skills_assessments = (SELECT COUNT(*) FROM activities a "
        "WHERE a.candidate_id = candidates.id AND a.type = 'skills_assessment' "
        "AND a.outcome = 'positive')"
    )
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        for column, type_ in (
            ("preferred_contract_types", sa.JSON()),
            ("training_hours", sa.Float()),
            ("positive_skills_assessments", sa.Integer()),
        ):
            batch_op.alter_column(column, existing_type=type_, server_default=None)

    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vacancies_latitude_longitude", ["latitude", "longitude"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.drop_index("ix_vacancies_latitude_longitude")

    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_index("ix_candidates_max_commute_km")
        batch_op.drop_index("ix_candidates_latitude_longitude")
        batch_op.drop_column("positive_skills_assessments")
        batch_op.drop_column("training_hours")
        batch_op.drop_column("max_weekly_hours")
        batch_op.drop_column("preferred_contract_types")
