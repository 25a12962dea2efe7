"""path machine

Revision ID: 0003_path_machine
Revises: 0002_partner_access
Create Date: 2026-11-28 12:33:58.588495+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import app.models.base
from alembic import op

revision: str = "0003_path_machine"
down_revision: str | None = "0002_partner_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("occurred_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_occurred_at"), ["occurred_at"], unique=False)
        batch_op.create_index("ix_events_subject", ["subject_type", "subject_id"], unique=False)

    op.create_table(
        "activities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("candidate_id", sa.Uuid(), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "work_trial",
                "test_mission",
                "replacement",
                "project_evaluation",
                "training",
                "work_mission",
                "tutoring",
                "work_study_contract",
                "skills_assessment",
                "interview_simulation",
                "certification_exam",
                "hiring_support",
                "onboarding_support",
                name="activity_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "phase",
            sa.Enum(
                "recruitment",
                "support",
                "securing",
                "employed",
                "exited",
                name="activity_phase",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "positive",
                "negative",
                "pending",
                name="activity_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("landlord_id", sa.Uuid(), nullable=True),
        sa.Column(
            "training_mode",
            sa.Enum(
                "internal",
                "external",
                name="activity_training_mode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("certifying", sa.Boolean(), nullable=True),
        sa.Column("rncp_code", sa.String(length=12), nullable=True),
        sa.Column(
            "competency_levels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "end_on IS NULL OR end_on >= occurred_on", name=op.f("ck_activities_end_after_start")
        ),
        sa.CheckConstraint(
            "hours IS NULL OR (hours >= 0 AND hours <= 2000)",
            name=op.f("ck_activities_hours_range"),
        ),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_activities_candidate_id_candidates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["landlord_id"],
            ["structures.id"],
            name=op.f("fk_activities_landlord_id_structures"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activities_candidate_id"), ["candidate_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_activities_landlord_id"), ["landlord_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_activities_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "candidate_transitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("candidate_id", sa.Uuid(), nullable=False),
        sa.Column(
            "from_phase",
            sa.Enum(
                "recruitment",
                "support",
                "securing",
                "employed",
                "exited",
                name="transition_from_phase",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "to_phase",
            sa.Enum(
                "recruitment",
                "support",
                "securing",
                "employed",
                "exited",
                name="transition_to_phase",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "reason",
            sa.Enum(
                "other_job",
                "other_training",
                "moved_away",
                "personal_circumstances",
                "dropped_out",
                "not_suited",
                "failed_exam",
                "mission_broke_down",
                "re_entry",
                "job_started",
                "other",
                name="transition_reason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "actor_kind",
            sa.Enum(
                "client",
                "user",
                "system",
                name="transition_actor_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.String(length=255), nullable=False),
        sa.Column(
            "actor_role",
            sa.Enum(
                "admin",
                "insertion",
                "landlord",
                "prescriber",
                "observer",
                name="transition_actor_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_candidate_transitions_candidate_id_candidates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate_transitions")),
    )
    with op.batch_alter_table("candidate_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_candidate_transitions_candidate_id"), ["candidate_id"], unique=False
        )

    op.create_table(
        "placement_transitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("placement_id", sa.Uuid(), nullable=False),
        sa.Column(
            "from_status",
            sa.Enum(
                "proposed",
                "interview",
                "accepted",
                "started",
                "completed",
                "ended",
                "rejected",
                "withdrawn",
                "expired",
                name="placement_transition_from",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "to_status",
            sa.Enum(
                "proposed",
                "interview",
                "accepted",
                "started",
                "completed",
                "ended",
                "rejected",
                "withdrawn",
                "expired",
                name="placement_transition_to",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "reason",
            sa.Enum(
                "resigned",
                "dismissed",
                "trial_period_ended",
                "contract_ended",
                "not_suited",
                "candidate_declined",
                "position_filled",
                "other",
                name="placement_transition_reason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "actor_kind",
            sa.Enum(
                "client",
                "user",
                "system",
                name="transition_actor_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.String(length=255), nullable=False),
        sa.Column(
            "actor_role",
            sa.Enum(
                "admin",
                "insertion",
                "landlord",
                "prescriber",
                "observer",
                name="transition_actor_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placements.id"],
            name=op.f("fk_placement_transitions_placement_id_placements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_transitions")),
    )
    with op.batch_alter_table("placement_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placement_transitions_placement_id"), ["placement_id"], unique=False
        )

    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "vacancy_kind",
                sa.Enum(
                    "job",
                    "mission",
                    name="placement_vacancy_kind",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "status_changed_at", app.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("started_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("ended_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "closing_reason",
                sa.Enum(
                    "resigned",
                    "dismissed",
                    "trial_period_ended",
                    "contract_ended",
                    "not_suited",
                    "candidate_declined",
                    "position_filled",
                    "other",
                    name="placement_closing_reason",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("follow_up_6m_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("follow_up_6m_in_post", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("follow_up_12m_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("follow_up_12m_in_post", sa.Boolean(), nullable=True))

    # Existing rows: the kind comes from the vacancy, the last change is the proposal.
    op.execute(
        "UPDATE placements SET vacancy_kind = "
        "(SELECT kind FROM vacancies WHERE vacancies.id = placements.vacancy_id), "
        "status_changed_at = proposed_at"
    )
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.alter_column("vacancy_kind", existing_type=sa.String(32), nullable=False)
        batch_op.alter_column(
            "status_changed_at",
            existing_type=app.models.base.UTCDateTime(timezone=True),
            nullable=False,
        )
        batch_op.create_index(
            "uq_placements_started_job_candidate",
            ["candidate_id"],
            unique=True,
            postgresql_where=sa.text("status = 'started' AND vacancy_kind = 'job'"),
            sqlite_where=sa.text("status = 'started' AND vacancy_kind = 'job'"),
        )

    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("filled_positions", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE vacancies SET filled_positions = (SELECT count(*) FROM placements "
        "WHERE placements.vacancy_id = vacancies.id "
        "AND placements.status IN ('accepted', 'started'))"
    )
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.alter_column("filled_positions", existing_type=sa.Integer(), server_default=None)
        batch_op.drop_constraint(op.f("ck_vacancies_vacancy_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_vacancies_vacancy_status"),
            "status IN ('draft', 'open', 'filled', 'closed', 'cancelled')",
        )
        batch_op.create_check_constraint(
            op.f("ck_vacancies_filled_within_positions"),
            "filled_positions >= 0 AND filled_positions <= positions",
        )
    op.execute(
        "UPDATE vacancies SET status = 'filled' "
        "WHERE status = 'open' AND filled_positions >= positions"
    )


def downgrade() -> None:
    op.execute("UPDATE vacancies SET status = 'open' WHERE status = 'filled'")
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_vacancies_filled_within_positions"), type_="check")
        batch_op.drop_constraint(op.f("ck_vacancies_vacancy_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_vacancies_vacancy_status"),
            "status IN ('draft', 'open', 'closed', 'cancelled')",
        )
        batch_op.drop_column("filled_positions")

    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_placements_started_job_candidate",
            postgresql_where=sa.text("status = 'started' AND vacancy_kind = 'job'"),
            sqlite_where=sa.text("status = 'started' AND vacancy_kind = 'job'"),
        )
        # The enum CHECKs name the columns: they go first, or SQLite cannot rebuild.
        batch_op.drop_constraint(op.f("ck_placements_placement_closing_reason"), type_="check")
        batch_op.drop_constraint(op.f("ck_placements_placement_vacancy_kind"), type_="check")
        batch_op.drop_column("follow_up_12m_in_post")
        batch_op.drop_column("follow_up_12m_on")
        batch_op.drop_column("follow_up_6m_in_post")
        batch_op.drop_column("follow_up_6m_on")
        batch_op.drop_column("closing_reason")
        batch_op.drop_column("ended_on")
        batch_op.drop_column("started_on")
        batch_op.drop_column("status_changed_at")
        batch_op.drop_column("vacancy_kind")

    with op.batch_alter_table("placement_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_transitions_placement_id"))

    op.drop_table("placement_transitions")
    with op.batch_alter_table("candidate_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_candidate_transitions_candidate_id"))

    op.drop_table("candidate_transitions")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_updated_at"))
        batch_op.drop_index(batch_op.f("ix_activities_landlord_id"))
        batch_op.drop_index(batch_op.f("ix_activities_candidate_id"))

    op.drop_table("activities")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_subject")
        batch_op.drop_index(batch_op.f("ix_events_occurred_at"))

    op.drop_table("events")
