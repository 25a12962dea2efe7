from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import OPEN_PLACEMENT_STATUSES, PlacementStatus
from app.models.base import Entity, enum_column_type, utcnow

_OPEN_STATUSES_SQL = "status IN ({})".format(
    ", ".join(f"'{s.value}'" for s in OPEN_PLACEMENT_STATUSES)
)


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
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date",
            name="end_after_start",
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
    )
