from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import (
    OPEN_PLACEMENT_STATUSES,
    PlacementEndReason,
    PlacementStatus,
    VacancyKind,
)
from app.models.base import Entity, enum_column_type, utcnow

_OPEN_STATUSES_SQL = "status IN ({})".format(
    ", ".join(f"'{s.value}'" for s in OPEN_PLACEMENT_STATUSES)
)

_STARTED_JOB_SQL = "status = 'started' AND vacancy_kind = 'job'"


class Placement(Entity):
    """A candidate put forward for a vacancy."""

    __tablename__ = "placements"

    candidate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("candidates.id", ondelete="RESTRICT"), index=True
    )
    vacancy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vacancies.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[PlacementStatus] = mapped_column(
        enum_column_type(PlacementStatus, "placement_status"),
        default=PlacementStatus.PROPOSED,
        index=True,
    )
    # Copied from the vacancy at proposal (a vacancy's kind never changes): the
    # one-started-job-per-candidate index needs it on this row.
    vacancy_kind: Mapped[VacancyKind] = mapped_column(
        enum_column_type(VacancyKind, "placement_vacancy_kind")
    )
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    started_on: Mapped[date | None]
    ended_on: Mapped[date | None]
    closing_reason: Mapped[PlacementEndReason | None] = mapped_column(
        enum_column_type(PlacementEndReason, "placement_closing_reason")
    )
    notes: Mapped[str | None] = mapped_column(Text)
    # Retention follow-ups of a hire, 6 and 12 months after it started.
    follow_up_6m_on: Mapped[date | None]
    follow_up_6m_in_post: Mapped[bool | None]
    follow_up_12m_on: Mapped[date | None]
    follow_up_12m_in_post: Mapped[bool | None]
    # When each follow-up was recorded (written once), for figures as of a past instant.
    follow_up_6m_recorded_at: Mapped[datetime | None]
    follow_up_12m_recorded_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date",
            name="end_after_start",
        ),
        CheckConstraint(
            "(follow_up_6m_on IS NULL) = (follow_up_6m_recorded_at IS NULL)",
            name="follow_up_6m_recorded",
        ),
        CheckConstraint(
            "(follow_up_12m_on IS NULL) = (follow_up_12m_recorded_at IS NULL)",
            name="follow_up_12m_recorded",
        ),
        # One open placement per candidate and vacancy, whatever the concurrency.
        Index(
            "uq_placements_open_candidate_vacancy",
            "candidate_id",
            "vacancy_id",
            unique=True,
            postgresql_where=text(_OPEN_STATUSES_SQL),
            sqlite_where=text(_OPEN_STATUSES_SQL),
        ),
        # At most one started job per candidate, whatever the concurrency.
        Index(
            "uq_placements_started_job_candidate",
            "candidate_id",
            unique=True,
            postgresql_where=text(_STARTED_JOB_SQL),
            sqlite_where=text(_STARTED_JOB_SQL),
        ),
    )
