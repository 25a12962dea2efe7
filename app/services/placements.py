from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, SQLColumnExpression, exists, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import PlacementStatus, Role, VacancyStatus
from app.errors import Conflict, DuplicateResource, NotFound, ValidationFailed, field_error
from app.models import Candidate, Placement, Vacancy
from app.schemas.common import check_dates
from app.schemas.placements import PlacementCreate, PlacementUpdate
from app.services.auth import Actor
from app.services.common import (
    PageRequest,
    apply_changes,
    check_version,
    cross_field,
    flush,
    paginate,
)

# A landlord sees a person's full profile once one of these is reached.
ACCEPTED_STATUSES = (
    PlacementStatus.ACCEPTED,
    PlacementStatus.STARTED,
    PlacementStatus.COMPLETED,
    PlacementStatus.ENDED,
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


def proposed_to_landlord(
    candidate_id: SQLColumnExpression[uuid.UUID] | uuid.UUID,
    landlord_id: uuid.UUID,
    statuses: Sequence[PlacementStatus] | None = None,
) -> ColumnElement[bool]:
    """Whether the candidate has a placement on one of the landlord's vacancies."""
    condition = (
        select(Placement.id)
        .join(Vacancy, Vacancy.id == Placement.vacancy_id)
        .where(Placement.candidate_id == candidate_id, Vacancy.landlord_id == landlord_id)
    )
    if statuses is not None:
        condition = condition.where(Placement.status.in_(statuses))
    return exists(condition)


async def accepted_by_landlord(
    session: AsyncSession, candidate_ids: Sequence[uuid.UUID], landlord_id: uuid.UUID
) -> set[uuid.UUID]:
    if not candidate_ids:
        return set()
    rows = await session.scalars(
        select(Placement.candidate_id)
        .join(Vacancy, Vacancy.id == Placement.vacancy_id)
        .where(
            Placement.candidate_id.in_(candidate_ids),
            Vacancy.landlord_id == landlord_id,
            Placement.status.in_(ACCEPTED_STATUSES),
        )
    )
    return set(rows)


def visible_to(actor: Actor) -> ColumnElement[bool]:
    match actor.role:
        case Role.ADMIN:
            return true()
        case Role.INSERTION:
            return exists(
                select(Candidate.id).where(
                    Candidate.id == Placement.candidate_id,
                    Candidate.structure_id == actor.structure_id,
                )
            )
        case Role.LANDLORD:
            return exists(
                select(Vacancy.id).where(
                    Vacancy.id == Placement.vacancy_id, Vacancy.landlord_id == actor.structure_id
                )
            )
        case _:
            return false()


async def create(session: AsyncSession, actor: Actor, data: PlacementCreate) -> Placement:
    candidate_query = select(Candidate.id).where(Candidate.id == data.candidate_id)
    vacancy_query = select(Vacancy).where(Vacancy.id == data.vacancy_id)
    if actor.role is Role.INSERTION:
        candidate_query = candidate_query.where(Candidate.structure_id == actor.structure_id)
        vacancy_query = vacancy_query.where(Vacancy.status != VacancyStatus.DRAFT)
    missing = []
    if await session.scalar(candidate_query) is None:
        missing.append(
            field_error(
                ["body", "candidate_id"], "no candidate with this id", "reference_not_found"
            )
        )
    vacancy = await session.scalar(vacancy_query)
    if vacancy is None:
        missing.append(
            field_error(["body", "vacancy_id"], "no vacancy with this id", "reference_not_found")
        )
    if missing or vacancy is None:
        raise ValidationFailed(missing)
    if vacancy.status is not VacancyStatus.OPEN:
        raise VacancyNotOpen(
            f"Candidates can be proposed only for open vacancies; this one is "
            f"{vacancy.status.value}."
        )
    placement = Placement(**data.model_dump(), status=PlacementStatus.PROPOSED)
    session.add(placement)
    await flush(session, _CONFLICTS)
    return placement


async def get(session: AsyncSession, actor: Actor, placement_id: uuid.UUID) -> Placement:
    placement = await session.scalar(
        select(Placement).where(Placement.id == placement_id, visible_to(actor))
    )
    if placement is None:
        raise NotFound("No placement with this id.")
    return placement


async def list_(
    session: AsyncSession, actor: Actor, filters: PlacementFilters, page: PageRequest
) -> tuple[Sequence[Placement], str | None]:
    stmt = select(Placement).where(visible_to(actor))
    if filters.candidate_id is not None:
        stmt = stmt.where(Placement.candidate_id == filters.candidate_id)
    if filters.vacancy_id is not None:
        stmt = stmt.where(Placement.vacancy_id == filters.vacancy_id)
    if filters.status is not None:
        stmt = stmt.where(Placement.status == filters.status)
    return await paginate(session, Placement, stmt, page, filters.updated_since)


async def update(
    session: AsyncSession,
    actor: Actor,
    placement_id: uuid.UUID,
    data: PlacementUpdate,
    expected_versions: frozenset[int] | None,
) -> Placement:
    placement = await get(session, actor, placement_id)
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
