from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import Phase
from app.models.base import Base, Entity, JSONType, enum_column_type, same_as_created, utcnow


class Candidate(Entity):
    """A person on an insertion path. Deliberately holds no NIR and no health data."""

    __tablename__ = "candidates"

    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date]
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(16))
    postcode: Mapped[str] = mapped_column(String(5))
    commune_insee: Mapped[str] = mapped_column(String(5))
    commune_name: Mapped[str | None] = mapped_column(String(100))
    departement: Mapped[str] = mapped_column(String(3), index=True)
    region: Mapped[str] = mapped_column(String(2))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)

    # Indexed with the id (ix_candidates_structure_id_id, below).
    structure_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("structures.id", ondelete="RESTRICT")
    )
    referrer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("structures.id", ondelete="RESTRICT"), index=True
    )

    # Indexed with the coordinates (below): matching searches each commute band's box.
    max_commute_km: Mapped[int] = mapped_column(default=30)
    has_driving_licence: Mapped[bool] = mapped_column(default=False)
    accepts_onsite_housing: Mapped[bool] = mapped_column(default=False)
    available_from: Mapped[date | None]

    # {competency code: level 0-3}; codes from app.domain.competencies.
    competencies: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # [{rncp_code, status, date}]
    certifications: Mapped[list[Any]] = mapped_column(JSONType, default=list)

    # Preferences: contract types wanted (empty: any) and the most weekly hours.
    preferred_contract_types: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    max_weekly_hours: Mapped[float | None] = mapped_column(Float)

    # Kept in step with the activities by the activities service, in the same
    # transaction: matching reads them without aggregating activities per request.
    training_hours: Mapped[float] = mapped_column(Float, default=0)
    positive_skills_assessments: Mapped[int] = mapped_column(default=0)

    consent_to_share: Mapped[bool] = mapped_column(default=False)
    consent_given_at: Mapped[datetime | None]

    phase: Mapped[Phase] = mapped_column(
        enum_column_type(Phase, "candidate_phase"), default=Phase.RECRUITMENT, index=True
    )
    phase_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the path began (the entry row's date: a history import gives a past one), kept
    # here so matching reads how long someone has waited without reading the history.
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by erasure (or the retention job): the identifying fields are gone, the path's
    # dates and outcomes stay for the figures, and the person answers 404 to everyone.
    anonymised_at: Mapped[datetime | None]

    # The partial views (reduced for landlords, referral for prescribers) have their own
    # version and stamp, moved only when a field of that view changes (the rule is in
    # app.services.visibility): a change to a field a view hides shows in neither.
    # (Placed after created_at, whose value their default copies.)
    reduced_version: Mapped[int] = mapped_column(default=1, sort_order=101)
    reduced_updated_at: Mapped[datetime] = mapped_column(
        default=same_as_created, index=True, sort_order=101
    )
    referral_version: Mapped[int] = mapped_column(default=1, sort_order=101)
    referral_updated_at: Mapped[datetime] = mapped_column(
        default=same_as_created, index=True, sort_order=101
    )
    # The partner's own reference for the record, unique per structure: bulk sync
    # upserts by it.
    external_ref: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="coordinates_complete"),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        CheckConstraint("max_commute_km BETWEEN 0 AND 300", name="max_commute_range"),
        CheckConstraint("consent_to_share = (consent_given_at IS NOT NULL)", name="consent_dated"),
        # Matching's geographic prefilter: a bounding box on the coordinates, and for
        # rankings one box per commute (searched value by value: commutes are whole km),
        # so that a vacancy reads the people its box reaches for their own commute only.
        # Its first column also gives the largest commute.
        Index("ix_candidates_latitude_longitude", "latitude", "longitude"),
        Index("ix_candidates_commute_location", "max_commute_km", "latitude", "longitude"),
        # A structure's people in id order: its list pages (keyset on the id) read 50
        # entries, not all of the structure's people sorted.
        Index("ix_candidates_structure_id_id", "structure_id", "id"),
        Index(
            "uq_candidates_structure_id_external_ref",
            "structure_id",
            "external_ref",
            unique=True,
            postgresql_where=text("external_ref IS NOT NULL"),
            sqlite_where=text("external_ref IS NOT NULL"),
        ),
    )


class CandidateChange(Base):
    """Who was written last by which transaction: one row per person, rewritten by a
    trigger on every insert, update or delete of a candidate (PostgreSQL only; empty on
    SQLite). Matching's candidate store finds the people changed since its last read from
    these small rows' xmin instead of scanning every candidate. No foreign key: a row
    outlives the person, so that a deletion is seen too."""

    __tablename__ = "candidate_changes"

    candidate_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
