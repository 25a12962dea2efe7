"""job_ended: the reason recorded when a started job ends and the person returns to securing

Revision ID: 0005_job_ended_reason
Revises: 0004_matching
Create Date: 2026-11-28 13:50:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_job_ended_reason"
down_revision: str | None = "0004_matching"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "other_job", "other_training", "moved_away", "personal_circumstances", "dropped_out",
    "not_suited", "failed_exam", "mission_broke_down", "re_entry", "job_started", "other",
)  # fmt: skip
AFTER = (*BEFORE[:-1], "job_ended", "other")
NAME = "ck_candidate_transitions_transition_reason"


def _allow(values: tuple[str, ...]) -> None:
    listed = ", ".join(f"'{v}'" for v in values)
    with op.batch_alter_table("candidate_transitions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(NAME), type_="check")
        batch_op.create_check_constraint(op.f(NAME), f"reason IN ({listed})")


def upgrade() -> None:
    _allow(AFTER)


def downgrade() -> None:
    # The moves recorded with the new reason keep their history, without it.
    op.execute("UPDATE candidate_transitions SET reason = 'other' WHERE reason = 'job_ended'")
    _allow(BEFORE)
