"""visibility: per-view versions of candidates, the operation of each audit row

Revision ID: 0006_visibility
Revises: 0005_job_ended_reason
Create Date: 2026-11-29 08:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = "0006_visibility"
down_revision: str | None = "0005_job_ended_reason"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEWS = ("reduced", "referral")


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        for view in VIEWS:
            batch_op.add_column(
                sa.Column(f"{view}_version", sa.Integer(), nullable=False, server_default="1")
            )
            batch_op.add_column(
                sa.Column(
                    f"{view}_updated_at",
                    app.models.base.UTCDateTime(timezone=True),
                    nullable=False,
                    server_default="1970-01-01 00:00:00",
                )
            )
    # Existing people: each view was last changed, at the latest, with the record.
    op.execute(
        "UPDATE candidates SET reduced_updated_at = updated_at, referral_updated_at = updated_at"
    )
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        for view in VIEWS:
            batch_op.alter_column(
                f"{view}_version", existing_type=sa.Integer(), server_default=None
            )
            batch_op.alter_column(
                f"{view}_updated_at",
                existing_type=app.models.base.UTCDateTime(timezone=True),
                server_default=None,
            )
            batch_op.create_index(
                batch_op.f(f"ix_candidates_{view}_updated_at"), [f"{view}_updated_at"], unique=False
            )

    # A column added in place: SQLite keeps the append-only trigger (no table copy), and
    # PostgreSQL's trigger fires on row updates, which adding a column is not.
    with op.batch_alter_table("audit_events", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("operation", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("operation")
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        for view in VIEWS:
            batch_op.drop_index(batch_op.f(f"ix_candidates_{view}_updated_at"))
            batch_op.drop_column(f"{view}_updated_at")
            batch_op.drop_column(f"{view}_version")
