from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import PlacementStatus, VacancyStatus
from app.errors import Conflict, DuplicateResource, ValidationFailed, field_error
from app.models import Candidate, Placement, Vacancy
from app.schemas.common import check_dates
from app.schemas.placements import PlacementCreate, PlacementUpdate
from app.services.common import (
    PageRequest,
    apply_changes,
    check_version,
    cross_field,
    flush,
    get_or_404,
    paginate,
)

_ALREADY_OPEN = DuplicateResource("This candidate already has an open placement on this vacancy.")
_CONFLICTS = {
    "uq_placements_open_candidate_vacancy": _ALREADY_OPEN,
    "unique:placements.candidate_id, placements.vacancy_id": _ALREADY_OPEN,
}


class VacancyNotOpen(Conflict):
    slug, title = "vacancy-not-open", "The vacancy is not open"


@dataclass(frozen=True, slots=True)
class PlacementFilters:
    candidate_id: uuid.UUID | None = None
    vacancy_id: uuid.UUID | None = None
    status: PlacementStatus | None = None
    updated_since: datetime | None = None


async def create(session: AsyncSession, data: PlacementCreate) -> Placement:
    missing = []
    if await session.get(Candidate, data.candidate_id) is None:
        missing.append(
            field_error(
                ["body", "candidate_id"], "no candidate with this id", "reference_not_found"
            )
        )
    vacancy = await session.get(Vacancy, data.vacancy_id)
    if vacancy is None:
        missing.append(
            field_error(["body", "vacancy_id"], "no vacancy with this id", "reference_not_found")
        )
    if missing:
        raise ValidationFailed(missing)
    assert vacancy is not None
    if vacancy.status is not VacancyStatus.OPEN:
        raise VacancyNotOpen(
            f"Candidates can be proposed only for open vacancies; "
            f"this one is {vacancy.status.value}."
        )
    placement = Placement(**data.model_dump(), status=PlacementStatus.PROPOSED)
    session.add(placement)
    await flush(session, _CONFLICTS)
    return placement


async def get(session: AsyncSession, placement_id: uuid.UUID) -> Placement:
    return await get_or_404(session, Placement, placement_id)


async def list_(
    session: AsyncSession, filters: PlacementFilters, page: PageRequest
) -> tuple[Sequence[Placement], str | None]:
    stmt = select(Placement)
    if filters.candidate_id is not None:
        stmt = stmt.where(Placement.candidate_id == filters.candidate_id)
    if filters.vacancy_id is not None:
        stmt = stmt.where(Placement.vacancy_id == filters.vacancy_id)
    if filters.status is not None:
        stmt = stmt.where(Placement.status == filters.status)
    return await paginate(session, Placement, stmt, page, filters.updated_since)


async def update(
    session: AsyncSession,
    placement_id: uuid.UUID,
    data: PlacementUpdate,
    expected_versions: frozenset[int] | None,
) -> Placement:
    placement = await get(session, placement_id)
    check_version(placement.version, expected_versions)
    changes = data.model_dump(exclude_unset=True)
    cross_field(
        lambda: check_dates(
            changes.get("start_date", placement.start_date),
            changes.get("end_date", placement.end_date),
        )
    )
    apply_changes(placement, changes)
    await flush(session)
    return placement
