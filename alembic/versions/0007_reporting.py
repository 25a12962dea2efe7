"""reporting: history with effective and recorded dates, objectives, erasure, observer territories

Every figure is computed from the history, so the path's start becomes a history row
(the entry, with no from_phase) and each row says when it took effect (`at`), when the
database learnt it (`recorded_at`), and when the phase it opened ended (`ended_at`,
`ended_recorded_at`). Existing rows were recorded as they took effect, so the backfill
copies `at`; each existing candidate gets its entry row, dated at its creation.

Revision ID: 0007_reporting
Revises: 0006_visibility
Create Date: 2026-12-02 05:52:53.570954+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op
from app.domain.ids import uuid7

revision: str = "0007_reporting"
down_revision: str | None = "0006_visibility"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


UTC = app.models.base.UTCDateTime(timezone=True)

FOLLOW_UP_CHECKS = {
    f"follow_up_{m}m_recorded": f"(follow_up_{m}m_on IS NULL) = (follow_up_{m}m_recorded_at IS NULL)"
    for m in (6, 12)
}
TRANSITION_CHECKS = {
    "ended_complete": "(ended_at IS NULL) = (ended_recorded_at IS NULL)",
    "ended_after_start": "ended_at IS NULL OR ended_at >= at",
    "recorded_after_effect": "recorded_at >= at",
    "entry_first": "from_phase IS NOT NULL OR first_reach",
    "entered_before": "entered_at <= at",
}
CLIENT_CHECKS = {
    "observer_territory": "(role = 'observer') = (territory IS NOT NULL)",
    "territory_form": "territory IS NULL OR territory = 'national' OR territory LIKE 'region:%' "
    "OR territory LIKE 'departement:%'",
}

FIRST_REACH = """
UPDATE candidate_transitions SET first_reach = TRUE WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY candidate_id, to_phase ORDER BY at, id) AS n
        FROM candidate_transitions
    ) ranked WHERE n = 1
)
"""
ENDED = """
UPDATE candidate_transitions SET ended_at = nxt.next_at, ended_recorded_at = nxt.next_recorded_at
FROM (
    SELECT id,
        LEAD(at) OVER (PARTITION BY candidate_id ORDER BY at, id) AS next_at,
        LEAD(recorded_at) OVER (PARTITION BY candidate_id ORDER BY at, id) AS next_recorded_at
    FROM candidate_transitions
) nxt
WHERE nxt.id = candidate_transitions.id AND nxt.next_at IS NOT NULL
"""
ENTERED = """
UPDATE candidate_transitions SET entered_at = (
    SELECT entry.at FROM candidate_transitions entry
    WHERE entry.candidate_id = candidate_transitions.candidate_id AND entry.from_phase IS NULL
)
"""


def _entry_rows() -> None:
    """Each existing candidate's entry into the path, dated at its creation."""
    candidates = sa.table("candidates", sa.column("id", sa.Uuid()), sa.column("created_at", UTC))
    transitions = sa.table(
        "candidate_transitions",
        sa.column("id", sa.Uuid()),
        sa.column("candidate_id", sa.Uuid()),
        sa.column("from_phase", sa.String()),
        sa.column("to_phase", sa.String()),
        sa.column("at", UTC),
        sa.column("recorded_at", UTC),
        sa.column("actor_kind", sa.String()),
        sa.column("actor_id", sa.String()),
        sa.column("actor_role", sa.String()),
        sa.column("forced", sa.Boolean()),
        sa.column("first_reach", sa.Boolean()),
    )
    bind = op.get_bind()
    rows = [
        {
            "id": uuid7(created_at),
            "candidate_id": candidate_id,
            "from_phase": None,
            "to_phase": "recruitment",
            "at": created_at,
            "recorded_at": created_at,
            "actor_kind": "system",
            "actor_id": "system",
            "actor_role": "admin",
            "forced": False,
            "first_reach": False,
        }
        for candidate_id, created_at in bind.execute(
            sa.select(candidates.c.id, candidates.c.created_at)
        )
    ]
    for start in range(0, len(rows), 1000):
        bind.execute(sa.insert(transitions), rows[start : start + 1000])


def upgrade() -> None:
    op.create_table(
        "objectives",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column(
            "scope",
            sa.Enum(
                "national",
                "region",
                "departement",
                "landlord",
                "structure",
                name="objective_scope",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("region", sa.String(length=2), nullable=True),
        sa.Column("departement", sa.String(length=3), nullable=True),
        sa.Column("landlord_id", sa.Uuid(), nullable=True),
        sa.Column("structure_id", sa.Uuid(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(scope = 'national' AND region IS NULL AND departement IS NULL AND landlord_id IS NULL AND structure_id IS NULL) OR (scope = 'region' AND region IS NOT NULL AND departement IS NULL AND landlord_id IS NULL AND structure_id IS NULL) OR (scope = 'departement' AND region IS NULL AND departement IS NOT NULL AND landlord_id IS NULL AND structure_id IS NULL) OR (scope = 'landlord' AND region IS NULL AND departement IS NULL AND landlord_id IS NOT NULL AND structure_id IS NULL) OR (scope = 'structure' AND region IS NULL AND departement IS NULL AND landlord_id IS NULL AND structure_id IS NOT NULL)",
            name=op.f("ck_objectives_scope_reference"),
        ),
        sa.CheckConstraint("target >= 1", name=op.f("ck_objectives_target_positive")),
        sa.CheckConstraint("year BETWEEN 2000 AND 2100", name=op.f("ck_objectives_year_range")),
        sa.ForeignKeyConstraint(
            ["landlord_id"],
            ["structures.id"],
            name=op.f("fk_objectives_landlord_id_structures"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["structure_id"],
            ["structures.id"],
            name=op.f("fk_objectives_structure_id_structures"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objectives")),
    )
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_objectives_landlord_id"), ["landlord_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_objectives_structure_id"), ["structure_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_objectives_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(
            "uq_objectives_departement_year",
            ["year", "departement"],
            unique=True,
            postgresql_where=sa.text("scope = 'departement'"),
            sqlite_where=sa.text("scope = 'departement'"),
        )
        batch_op.create_index(
            "uq_objectives_landlord_year",
            ["year", "landlord_id"],
            unique=True,
            postgresql_where=sa.text("scope = 'landlord'"),
            sqlite_where=sa.text("scope = 'landlord'"),
        )
        batch_op.create_index(
            "uq_objectives_national_year",
            ["year"],
            unique=True,
            postgresql_where=sa.text("scope = 'national'"),
            sqlite_where=sa.text("scope = 'national'"),
        )
        batch_op.create_index(
            "uq_objectives_region_year",
            ["year", "region"],
            unique=True,
            postgresql_where=sa.text("scope = 'region'"),
            sqlite_where=sa.text("scope = 'region'"),
        )
        batch_op.create_index(
            "uq_objectives_structure_year",
            ["year", "structure_id"],
            unique=True,
            postgresql_where=sa.text("scope = 'structure'"),
            sqlite_where=sa.text("scope = 'structure'"),
        )

    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("territory", sa.String(length=20), nullable=True))
    op.execute("UPDATE api_clients SET territory = 'national' WHERE role = 'observer'")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        for name, condition in CLIENT_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_api_clients_{name}"), condition)

    with op.batch_alter_table("candidate_transitions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_reach", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("ended_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("ended_recorded_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("recorded_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("entered_at", UTC, nullable=True))
        batch_op.alter_column("from_phase", existing_type=sa.VARCHAR(length=32), nullable=True)
    op.execute("UPDATE candidate_transitions SET recorded_at = at")
    _entry_rows()
    op.execute(FIRST_REACH)
    op.execute(ENDED)
    op.execute(ENTERED)
    with op.batch_alter_table("candidate_transitions", schema=None) as batch_op:
        batch_op.alter_column("recorded_at", existing_type=UTC, nullable=False)
        batch_op.alter_column("entered_at", existing_type=UTC, nullable=False)
        batch_op.alter_column("first_reach", existing_type=sa.Boolean(), server_default=None)
        for name, condition in TRANSITION_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_candidate_transitions_{name}"), condition)
        batch_op.create_index(
            "ix_candidate_transitions_to_phase_at", ["to_phase", "at"], unique=False
        )
        batch_op.create_index(
            "uq_candidate_transitions_open_span",
            ["candidate_id"],
            unique=True,
            postgresql_where=sa.text("ended_at IS NULL"),
            sqlite_where=sa.text("ended_at IS NULL"),
        )

    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anonymised_at", UTC, nullable=True))

    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_activities_type_occurred_on",
            ["type", "occurred_on"],
            postgresql_include=["candidate_id", "hours", "outcome", "created_at"],
        )

    with op.batch_alter_table("placement_transitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_at", UTC, nullable=True))
    op.execute("UPDATE placement_transitions SET recorded_at = at")
    with op.batch_alter_table("placement_transitions", schema=None) as batch_op:
        batch_op.alter_column("recorded_at", existing_type=UTC, nullable=False)
        batch_op.create_check_constraint(
            op.f("ck_placement_transitions_recorded_after_effect"), "recorded_at >= at"
        )
        batch_op.create_index(
            "ix_placement_transitions_to_status_at", ["to_status", "at"], unique=False
        )

    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follow_up_6m_recorded_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("follow_up_12m_recorded_at", UTC, nullable=True))
    # The last change of the row is the closest record there is of when each was written.
    op.execute(
        "UPDATE placements SET follow_up_6m_recorded_at = updated_at "
        "WHERE follow_up_6m_on IS NOT NULL"
    )
    op.execute(
        "UPDATE placements SET follow_up_12m_recorded_at = updated_at "
        "WHERE follow_up_12m_on IS NOT NULL"
    )
    with op.batch_alter_table("placements", schema=None) as batch_op:
        for name, condition in FOLLOW_UP_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_placements_{name}"), condition)


def downgrade() -> None:
    with op.batch_alter_table("placements", schema=None) as batch_op:
        for name in FOLLOW_UP_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_placements_{name}"), type_="check")
        batch_op.drop_column("follow_up_12m_recorded_at")
        batch_op.drop_column("follow_up_6m_recorded_at")

    with op.batch_alter_table("placement_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_transitions_to_status_at")
        batch_op.drop_constraint(
            op.f("ck_placement_transitions_recorded_after_effect"), type_="check"
        )
        batch_op.drop_column("recorded_at")

    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_type_occurred_on")

    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_column("anonymised_at")

    # Entry rows did not exist before; the moves keep their effective date only.
    op.execute("DELETE FROM candidate_transitions WHERE from_phase IS NULL")
    with op.batch_alter_table("candidate_transitions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_candidate_transitions_open_span",
            postgresql_where=sa.text("ended_at IS NULL"),
            sqlite_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index("ix_candidate_transitions_to_phase_at")
        for name in TRANSITION_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_candidate_transitions_{name}"), type_="check")
        batch_op.alter_column("from_phase", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("recorded_at")
        batch_op.drop_column("entered_at")
        batch_op.drop_column("ended_recorded_at")
        batch_op.drop_column("ended_at")
        batch_op.drop_column("first_reach")

    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        for name in CLIENT_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_api_clients_{name}"), type_="check")
        batch_op.drop_column("territory")

    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_objectives_structure_year",
            postgresql_where=sa.text("scope = 'structure'"),
            sqlite_where=sa.text("scope = 'structure'"),
        )
        batch_op.drop_index(
            "uq_objectives_region_year",
            postgresql_where=sa.text("scope = 'region'"),
            sqlite_where=sa.text("scope = 'region'"),
        )
        batch_op.drop_index(
            "uq_objectives_national_year",
            postgresql_where=sa.text("scope = 'national'"),
            sqlite_where=sa.text("scope = 'national'"),
        )
        batch_op.drop_index(
            "uq_objectives_landlord_year",
            postgresql_where=sa.text("scope = 'landlord'"),
            sqlite_where=sa.text("scope = 'landlord'"),
        )
        batch_op.drop_index(
            "uq_objectives_departement_year",
            postgresql_where=sa.text("scope = 'departement'"),
            sqlite_where=sa.text("scope = 'departement'"),
        )
        batch_op.drop_index(batch_op.f("ix_objectives_updated_at"))
        batch_op.drop_index(batch_op.f("ix_objectives_structure_id"))
        batch_op.drop_index(batch_op.f("ix_objectives_landlord_id"))

    op.drop_table("objectives")
