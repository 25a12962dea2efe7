"""core resources

Revision ID: 0001_core_resources
Revises:
Create Date: 2026-11-28 12:09:59.305125+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import app.models.base
from alembic import op

revision: str = "0001_core_resources"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "structures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "insertion",
                "landlord",
                "partner",
                name="structure_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("sub_kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("siret", sa.String(length=14), nullable=False),
        sa.Column("address_line", sa.String(length=250), nullable=True),
        sa.Column("postcode", sa.String(length=5), nullable=False),
        sa.Column("commune_insee", sa.String(length=5), nullable=False),
        sa.Column("commune_name", sa.String(length=100), nullable=True),
        sa.Column("departement", sa.String(length=3), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'insertion' AND sub_kind IN ('ACI', 'AI', 'EI', 'EITI', 'ETTI', 'GEIQ')) OR (kind = 'landlord' AND sub_kind IN ('COOP_HLM', 'ESH', 'OPH', 'SEM', 'other')) OR (kind = 'partner' AND sub_kind IN ('cap_emploi', 'departement', 'france_travail', 'hlm_association', 'mission_locale', 'opco', 'other', 'plie', 'state_service', 'training_body'))",
            name=op.f("ck_structures_sub_kind_matches_kind"),
        ),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL)",
            name=op.f("ck_structures_coordinates_complete"),
        ),
        sa.CheckConstraint(
            "latitude BETWEEN -90 AND 90", name=op.f("ck_structures_latitude_range")
        ),
        sa.CheckConstraint(
            "longitude BETWEEN -180 AND 180", name=op.f("ck_structures_longitude_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_structures")),
        sa.UniqueConstraint("siret", name=op.f("uq_structures_siret")),
    )
    with op.batch_alter_table("structures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_structures_departement"), ["departement"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_structures_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_structures_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "candidates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("postcode", sa.String(length=5), nullable=False),
        sa.Column("commune_insee", sa.String(length=5), nullable=False),
        sa.Column("commune_name", sa.String(length=100), nullable=True),
        sa.Column("departement", sa.String(length=3), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("structure_id", sa.Uuid(), nullable=False),
        sa.Column("referrer_id", sa.Uuid(), nullable=True),
        sa.Column("max_commute_km", sa.Integer(), nullable=False),
        sa.Column("has_driving_licence", sa.Boolean(), nullable=False),
        sa.Column("accepts_onsite_housing", sa.Boolean(), nullable=False),
        sa.Column("available_from", sa.Date(), nullable=True),
        sa.Column(
            "competencies",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "certifications",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("consent_to_share", sa.Boolean(), nullable=False),
        sa.Column("consent_given_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "phase",
            sa.Enum(
                "recruitment",
                "support",
                "securing",
                "employed",
                "exited",
                name="candidate_phase",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("phase_changed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL)",
            name=op.f("ck_candidates_coordinates_complete"),
        ),
        sa.CheckConstraint(
            "consent_to_share = (consent_given_at IS NOT NULL)",
            name=op.f("ck_candidates_consent_dated"),
        ),
        sa.CheckConstraint(
            "latitude BETWEEN -90 AND 90", name=op.f("ck_candidates_latitude_range")
        ),
        sa.CheckConstraint(
            "longitude BETWEEN -180 AND 180", name=op.f("ck_candidates_longitude_range")
        ),
        sa.CheckConstraint(
            "max_commute_km BETWEEN 0 AND 300", name=op.f("ck_candidates_max_commute_range")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"],
            ["structures.id"],
            name=op.f("fk_candidates_referrer_id_structures"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["structure_id"],
            ["structures.id"],
            name=op.f("fk_candidates_structure_id_structures"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidates")),
    )
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_candidates_departement"), ["departement"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_candidates_phase"), ["phase"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_candidates_referrer_id"), ["referrer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_candidates_structure_id"), ["structure_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_candidates_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "vacancies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("landlord_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "job",
                "mission",
                name="vacancy_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "mission_type",
            sa.Enum(
                "test_mission",
                "replacement",
                "work_mission",
                name="vacancy_mission_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "contract_type",
            sa.Enum(
                "cdi",
                "cdd",
                "professionalisation",
                "apprenticeship",
                "mission",
                name="vacancy_contract_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("rome_code", sa.String(length=5), nullable=False),
        sa.Column("appellation_code", sa.String(length=6), nullable=False),
        sa.Column("weekly_hours", sa.Float(), nullable=False),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("address_line", sa.String(length=250), nullable=True),
        sa.Column("postcode", sa.String(length=5), nullable=False),
        sa.Column("commune_insee", sa.String(length=5), nullable=False),
        sa.Column("commune_name", sa.String(length=100), nullable=True),
        sa.Column("departement", sa.String(length=3), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("onsite_housing", sa.Boolean(), nullable=False),
        sa.Column("driving_licence_required", sa.Boolean(), nullable=False),
        sa.Column(
            "required_competencies",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("required_certification", sa.String(length=12), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "open",
                "closed",
                "cancelled",
                name="vacancy_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'mission') = (contract_type = 'mission')",
            name=op.f("ck_vacancies_mission_contract"),
        ),
        sa.CheckConstraint(
            "(kind = 'mission') = (mission_type IS NOT NULL)",
            name=op.f("ck_vacancies_mission_type_for_missions"),
        ),
        sa.CheckConstraint(
            "(latitude IS NULL) = (longitude IS NULL)",
            name=op.f("ck_vacancies_coordinates_complete"),
        ),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name=op.f("ck_vacancies_end_after_start")
        ),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_vacancies_latitude_range")),
        sa.CheckConstraint(
            "longitude BETWEEN -180 AND 180", name=op.f("ck_vacancies_longitude_range")
        ),
        sa.CheckConstraint("positions >= 1", name=op.f("ck_vacancies_positions_positive")),
        sa.CheckConstraint(
            "weekly_hours > 0 AND weekly_hours <= 60", name=op.f("ck_vacancies_weekly_hours_range")
        ),
        sa.ForeignKeyConstraint(
            ["landlord_id"],
            ["structures.id"],
            name=op.f("fk_vacancies_landlord_id_structures"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vacancies")),
    )
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vacancies_departement"), ["departement"], unique=False)
        batch_op.create_index(batch_op.f("ix_vacancies_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_vacancies_landlord_id"), ["landlord_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_vacancies_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_vacancies_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "placements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("candidate_id", sa.Uuid(), nullable=False),
        sa.Column("vacancy_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
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
                name="placement_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("proposed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date",
            name=op.f("ck_placements_end_after_start"),
        ),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_placements_candidate_id_candidates"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["vacancy_id"],
            ["vacancies.id"],
            name=op.f("fk_placements_vacancy_id_vacancies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
    )
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placements_candidate_id"), ["candidate_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_placements_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_placements_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_placements_vacancy_id"), ["vacancy_id"], unique=False)
        batch_op.create_index(
            "uq_placements_open_candidate_vacancy",
            ["candidate_id", "vacancy_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('proposed', 'interview', 'accepted', 'started')"),
            sqlite_where=sa.text("status IN ('proposed', 'interview', 'accepted', 'started')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_placements_open_candidate_vacancy",
            postgresql_where=sa.text("status IN ('proposed', 'interview', 'accepted', 'started')"),
            sqlite_where=sa.text("status IN ('proposed', 'interview', 'accepted', 'started')"),
        )
        batch_op.drop_index(batch_op.f("ix_placements_vacancy_id"))
        batch_op.drop_index(batch_op.f("ix_placements_updated_at"))
        batch_op.drop_index(batch_op.f("ix_placements_status"))
        batch_op.drop_index(batch_op.f("ix_placements_candidate_id"))

    op.drop_table("placements")
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vacancies_updated_at"))
        batch_op.drop_index(batch_op.f("ix_vacancies_status"))
        batch_op.drop_index(batch_op.f("ix_vacancies_landlord_id"))
        batch_op.drop_index(batch_op.f("ix_vacancies_kind"))
        batch_op.drop_index(batch_op.f("ix_vacancies_departement"))

    op.drop_table("vacancies")
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_candidates_updated_at"))
        batch_op.drop_index(batch_op.f("ix_candidates_structure_id"))
        batch_op.drop_index(batch_op.f("ix_candidates_referrer_id"))
        batch_op.drop_index(batch_op.f("ix_candidates_phase"))
        batch_op.drop_index(batch_op.f("ix_candidates_departement"))

    op.drop_table("candidates")
    with op.batch_alter_table("structures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_structures_updated_at"))
        batch_op.drop_index(batch_op.f("ix_structures_kind"))
        batch_op.drop_index(batch_op.f("ix_structures_departement"))

    op.drop_table("structures")
