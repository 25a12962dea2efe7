from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import ContractType, MissionType, VacancyKind, VacancyStatus
from app.models.base import Entity, JSONType, enum_column_type


class Vacancy(Entity):
    """A lasting job or a mission during the path, posted by a landlord."""

    __tablename__ = "vacancies"

    landlord_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("structures.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[VacancyKind] = mapped_column(
        enum_column_type(VacancyKind, "vacancy_kind"), index=True
    )
    mission_type: Mapped[MissionType | None] = mapped_column(
        enum_column_type(MissionType, "vacancy_mission_type")
    )
    contract_type: Mapped[ContractType] = mapped_column(
        enum_column_type(ContractType, "vacancy_contract_type")
    )
    rome_code: Mapped[str] = mapped_column(String(5))
    appellation_code: Mapped[str] = mapped_column(String(6))
    weekly_hours: Mapped[float] = mapped_column(Float)
    positions: Mapped[int]
    # Placements accepted or started; kept by the placement service under a row lock,
    # and bounded by the CHECK below on both databases.
    filled_positions: Mapped[int] = mapped_column(default=0)

    address_line: Mapped[str | None] = mapped_column(String(250))
    postcode: Mapped[str] = mapped_column(String(5))
    commune_insee: Mapped[str] = mapped_column(String(5))
    commune_name: Mapped[str | None] = mapped_column(String(100))
    departement: Mapped[str] = mapped_column(String(3), index=True)
    region: Mapped[str] = mapped_column(String(2))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)

    onsite_housing: Mapped[bool] = mapped_column(default=False)
    driving_licence_required: Mapped[bool] = mapped_column(default=False)
    # {competency code: minimum level 1-3}
    required_competencies: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    required_certification: Mapped[str | None] = mapped_column(String(12))

    start_date: Mapped[date]
    end_date: Mapped[date | None]
    status: Mapped[VacancyStatus] = mapped_column(
        enum_column_type(VacancyStatus, "vacancy_status"), default=VacancyStatus.DRAFT, index=True
    )

    # The partner's own reference for the record, unique per landlord: bulk sync
    # upserts by it.
    external_ref: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        CheckConstraint("positions >= 1", name="positions_positive"),
        CheckConstraint(
            "filled_positions >= 0 AND filled_positions <= positions",
            name="filled_within_positions",
        ),
        CheckConstraint("weekly_hours > 0 AND weekly_hours <= 60", name="weekly_hours_range"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_after_start"),
        CheckConstraint(
            "(kind = 'mission') = (contract_type = 'mission')", name="mission_contract"
        ),
        CheckConstraint(
            "(kind = 'mission') = (mission_type IS NOT NULL)", name="mission_type_for_missions"
        ),
        CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="coordinates_complete"),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        Index("ix_vacancies_latitude_longitude", "latitude", "longitude"),
        Index(
            "uq_vacancies_landlord_id_external_ref",
            "landlord_id",
            "external_ref",
            unique=True,
            postgresql_where=text("external_ref IS NOT NULL"),
            sqlite_where=text("external_ref IS NOT NULL"),
        ),
    )
