"""integration: the change feed's positions and audiences, webhooks, job runs, external refs

Revision ID: 0008_integration
Revises: 0007_reporting
Create Date: 2026-12-02 05:51:27.462094+00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import app.models.base
from alembic import op

revision: str = "0008_integration"
down_revision: str | None = "0007_reporting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("period", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("job", "period", name=op.f("uq_job_runs_job_period")),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "owner_kind",
            sa.Enum(
                "client",
                "user",
                "system",
                name="webhook_owner_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "insertion",
                "landlord",
                "prescriber",
                "observer",
                name="webhook_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("structure_id", sa.Uuid(), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column(
            "event_types",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column(
            "previous_secret_expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "disabled",
                name="webhook_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("disabled_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("failing_since", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["structure_id"],
            ["structures.id"],
            name=op.f("fk_webhook_subscriptions_structure_id_structures"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_subscriptions_owner_id"), ["owner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_subscriptions_structure_id"), ["structure_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_subscriptions_updated_at"), ["updated_at"], unique=False
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "delivered",
                "failed",
                name="webhook_delivery_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("next_attempt_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_webhook_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "subscription_id",
            "event_id",
            name=op.f("uq_webhook_deliveries_subscription_id_event_id"),
        ),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "follow_up_reminders",
        sa.Column("placement_id", sa.Uuid(), nullable=False),
        sa.Column("milestone_months", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("reminded_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placements.id"],
            name=op.f("fk_follow_up_reminders_placement_id_placements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "placement_id", "milestone_months", name=op.f("pk_follow_up_reminders")
        ),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("started_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "in_progress",
                "succeeded",
                "failed",
                "abandoned",
                name="webhook_attempt_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
        sa.UniqueConstraint(
            "delivery_id", "number", name=op.f("uq_webhook_attempts_delivery_id_number")
        ),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_attempts_delivery_id"), ["delivery_id"], unique=False
        )

    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_ref", sa.String(length=100), nullable=True))
        batch_op.create_index(
            "uq_candidates_structure_id_external_ref",
            ["structure_id", "external_ref"],
            unique=True,
            postgresql_where=sa.text("external_ref IS NOT NULL"),
            sqlite_where=sa.text("external_ref IS NOT NULL"),
        )

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("structure_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("referrer_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("landlord_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            "ix_events_landlord_id_position", ["landlord_id", "position"], unique=False
        )
        batch_op.create_index(
            "ix_events_referrer_id_position", ["referrer_id", "position"], unique=False
        )
        batch_op.create_index(
            "ix_events_structure_id_position", ["structure_id", "position"], unique=False
        )
        batch_op.create_index(
            "ix_events_unsequenced",
            ["id"],
            unique=False,
            postgresql_where=sa.text("position IS NULL"),
            sqlite_where=sa.text("position IS NULL"),
        )
        batch_op.create_unique_constraint(batch_op.f("uq_events_position"), ["position"])

    _backfill_events()

    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_ref", sa.String(length=100), nullable=True))
        batch_op.create_index(
            "uq_vacancies_landlord_id_external_ref",
            ["landlord_id", "external_ref"],
            unique=True,
            postgresql_where=sa.text("external_ref IS NOT NULL"),
            sqlite_where=sa.text("external_ref IS NOT NULL"),
        )


def _backfill_events() -> None:
    """Events written before this revision: their audiences, and their payloads in the
    shapes app.schemas.events publishes (each names its subject's id). Positions are
    given by the sequencer on its first run, in creation order."""
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE events SET structure_id = (SELECT c.structure_id FROM candidates c "
            "WHERE c.id = events.subject_id) WHERE subject_type = 'candidate'"
        )
    )
    conn.execute(
        sa.text(
            "UPDATE events SET referrer_id = (SELECT c.referrer_id FROM candidates c "
            "WHERE c.id = events.subject_id) WHERE type LIKE 'candidate.%'"
        )
    )
    conn.execute(
        sa.text(
            "UPDATE events SET structure_id = (SELECT c.structure_id FROM placements p "
            "JOIN candidates c ON c.id = p.candidate_id WHERE p.id = events.subject_id), "
            "landlord_id = (SELECT v.landlord_id FROM placements p "
            "JOIN vacancies v ON v.id = p.vacancy_id WHERE p.id = events.subject_id) "
            "WHERE subject_type = 'placement'"
        )
    )
    events = sa.table(
        "events",
        sa.column("id", sa.Uuid()),
        sa.column("type", sa.String()),
        sa.column("subject_id", sa.Uuid()),
        sa.column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
    )
    rows = conn.execute(
        sa.select(
            events.c.id, events.c.type, events.c.subject_id, events.c.payload, events.c.occurred_at
        )
    )
    for row in rows.all():
        payload = dict(row.payload)
        subject = str(row.subject_id)
        if row.type == "activity.recorded":
            payload = {
                "candidate_id": subject,
                "activity_id": payload.get("activity_id"),
                "type": payload.get("type"),
            }
        elif row.type.startswith("candidate."):
            payload["candidate_id"] = subject
            if row.type == "candidate.phase_changed" and "at" not in payload:
                # Moves before effective dates took effect when they were written.
                occurred = row.occurred_at
                if isinstance(occurred, str):  # SQLite gives the stored text back
                    occurred = datetime.fromisoformat(occurred)
                if occurred.tzinfo is None:
                    occurred = occurred.replace(tzinfo=UTC)
                payload["at"] = occurred.isoformat()
        elif row.type.startswith("placement."):
            payload["placement_id"] = subject
        if row.type == "placement.status_changed":
            payload.setdefault("vacancy_status", "open")
        conn.execute(events.update().where(events.c.id == row.id).values(payload=payload))


def downgrade() -> None:
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_vacancies_landlord_id_external_ref",
            postgresql_where=sa.text("external_ref IS NOT NULL"),
            sqlite_where=sa.text("external_ref IS NOT NULL"),
        )
        batch_op.drop_column("external_ref")

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_events_position"), type_="unique")
        batch_op.drop_index(
            "ix_events_unsequenced",
            postgresql_where=sa.text("position IS NULL"),
            sqlite_where=sa.text("position IS NULL"),
        )
        batch_op.drop_index("ix_events_structure_id_position")
        batch_op.drop_index("ix_events_referrer_id_position")
        batch_op.drop_index("ix_events_landlord_id_position")
        batch_op.drop_column("published")
        batch_op.drop_column("landlord_id")
        batch_op.drop_column("referrer_id")
        batch_op.drop_column("structure_id")
        batch_op.drop_column("position")

    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_candidates_structure_id_external_ref",
            postgresql_where=sa.text("external_ref IS NOT NULL"),
            sqlite_where=sa.text("external_ref IS NOT NULL"),
        )
        batch_op.drop_column("external_ref")

    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_delivery_id"))

    op.drop_table("webhook_attempts")
    op.drop_table("follow_up_reminders")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_subscription_id"))
        batch_op.drop_index(
            "ix_webhook_deliveries_due",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_subscriptions_updated_at"))
        batch_op.drop_index(batch_op.f("ix_webhook_subscriptions_structure_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_subscriptions_owner_id"))

    op.drop_table("webhook_subscriptions")
    op.drop_table("job_runs")
