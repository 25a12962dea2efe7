"""What the database knows of pairs beyond the two rows: placements and past missions.

Read for the candidates and landlords at hand only, each as one statement whose
parameter count does not grow with them (see sql.one_of).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import (
    OPEN_PLACEMENT_STATUSES,
    POSITION_HOLDING_STATUSES,
    ActivityOutcome,
    ActivityType,
    PlacementStatus,
    VacancyKind,
)
from app.models import Activity, Placement, Vacancy
from app.services.common import one_of


@dataclass(slots=True)
class PlacementFacts:
    busy: set[uuid.UUID] = field(default_factory=set)  # hold an accepted or started job
    with_open: set[uuid.UUID] = field(default_factory=set)  # any open placement
    open_pairs: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)  # (c, v)

    def update(self, other: PlacementFacts) -> None:
        self.busy |= other.busy
        self.with_open |= other.with_open
        self.open_pairs |= other.open_pairs


async def placement_facts(
    session: AsyncSession, candidate_ids: Collection[uuid.UUID] | None
) -> PlacementFacts:
    """The open placements of these candidates (None: of everyone), in one statement."""
    facts = PlacementFacts()
    if candidate_ids is not None and not candidate_ids:
        return facts
    stmt = select(
        Placement.candidate_id, Placement.vacancy_id, Placement.vacancy_kind, Placement.status
    ).where(Placement.status.in_(OPEN_PLACEMENT_STATUSES))
    if candidate_ids is not None:
        stmt = stmt.where(one_of(session, Placement.candidate_id, candidate_ids))
    rows = await session.execute(stmt)
    for candidate_id, vacancy_id, kind, status in rows:
        facts.with_open.add(candidate_id)
        facts.open_pairs.add((candidate_id, vacancy_id))
        if kind is VacancyKind.JOB and status in POSITION_HOLDING_STATUSES:
            facts.busy.add(candidate_id)
    return facts


async def history(
    session: AsyncSession,
    candidate_ids: Collection[uuid.UUID] | None,
    landlord_ids: Collection[uuid.UUID],
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(candidate, landlord) pairs with a mission completed together: a completed
    placement on one of the landlord's vacancies, or a positive work mission with it.
    `candidate_ids` None: anyone's."""
    if (candidate_ids is not None and not candidate_ids) or not landlord_ids:
        return set()
    completed = (
        select(Placement.candidate_id, Vacancy.landlord_id)
        .join(Vacancy, Vacancy.id == Placement.vacancy_id)
        .where(
            one_of(session, Vacancy.landlord_id, landlord_ids),
            Placement.status == PlacementStatus.COMPLETED,
        )
    )
    missions = select(Activity.candidate_id, Activity.landlord_id).where(
        one_of(session, Activity.landlord_id, landlord_ids),
        Activity.type == ActivityType.WORK_MISSION,
        Activity.outcome == ActivityOutcome.POSITIVE,
    )
    if candidate_ids is not None:
        completed = completed.where(one_of(session, Placement.candidate_id, candidate_ids))
        missions = missions.where(one_of(session, Activity.candidate_id, candidate_ids))
    result: Any = await session.execute(union(completed, missions))
    return {(row.candidate_id, row.landlord_id) for row in result.all()}
