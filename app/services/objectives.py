"""Yearly recruitment objectives: national administrators set them, everybody reads those
of their scope, and their progress is a figure (app.services.stats)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.enums import ObjectiveScope, Role, StructureKind
from app.domain.geography import DEPARTEMENT_REGION
from app.domain.territory import TerritoryLevel
from app.errors import DuplicateResource, NotFound
from app.models import Objective, Structure
from app.models.base import utcnow
from app.schemas.objectives import ObjectiveCreate, ObjectiveUpdate
from app.services import stats, structures
from app.services.auth import Actor
from app.services.common import PageRequest, apply_changes, check_version, flush, paginate


def _taken() -> DuplicateResource:
    return DuplicateResource("An objective for this year and scope already exists.")


_CONFLICTS = {
    **{f"uq_objectives_{scope.value}_year": _taken for scope in ObjectiveScope},
    "unique:objectives.year": _taken,
    "unique:objectives.year, objectives.region": _taken,
    "unique:objectives.year, objectives.departement": _taken,
    "unique:objectives.year, objectives.landlord_id": _taken,
    "unique:objectives.year, objectives.structure_id": _taken,
}


@dataclass(frozen=True, slots=True)
class ObjectiveFilters:
    year: int | None = None
    scope: ObjectiveScope | None = None
    updated_since: datetime | None = None


def _located_in(column: Any, code: str | None) -> ColumnElement[bool]:
    """Objectives of a landlord or a structure located where the column says."""
    return or_(
        Objective.landlord_id.in_(select(Structure.id).where(column == code)),
        Objective.structure_id.in_(select(Structure.id).where(column == code)),
    )


def visible_to(actor: Actor) -> ColumnElement[bool]:
    """National objectives concern everyone; the others, those they are about."""
    if actor.role is Role.ADMIN:
        return true()
    national = Objective.scope == ObjectiveScope.NATIONAL
    if actor.role is Role.OBSERVER:
        territory = actor.territory
        if territory is None or territory.level is TerritoryLevel.NATIONAL:
            return true()
        region = territory.region
        if territory.level is TerritoryLevel.REGION:
            deps = [d for d, r in DEPARTEMENT_REGION.items() if r == region]
            return or_(
                national,
                Objective.region == region,
                Objective.departement.in_(deps),
                _located_in(Structure.region, region),
            )
        return or_(
            national,
            Objective.region == region,
            Objective.departement == territory.code,
            _located_in(Structure.departement, territory.code),
        )
    own = select(Structure).where(Structure.id == actor.structure_id).subquery()
    return or_(
        national,
        Objective.region.in_(select(own.c.region)),
        Objective.departement.in_(select(own.c.departement)),
        Objective.landlord_id == actor.structure_id,
        Objective.structure_id == actor.structure_id,
    )


async def create(session: AsyncSession, data: ObjectiveCreate) -> Objective:
    if data.landlord_id is not None:
        await structures.require_kind(
            session, data.landlord_id, StructureKind.LANDLORD, "landlord_id"
        )
    if data.structure_id is not None:
        await structures.require_kind(
            session, data.structure_id, StructureKind.INSERTION, "structure_id"
        )
    objective = Objective(**data.model_dump())
    session.add(objective)
    await flush(session, _CONFLICTS)
    return objective


async def get(session: AsyncSession, actor: Actor, objective_id: uuid.UUID) -> Objective:
    objective = await session.scalar(
        select(Objective).where(Objective.id == objective_id, visible_to(actor))
    )
    if objective is None:
        raise NotFound("No objective with this id.")
    return objective


async def list_(
    session: AsyncSession, actor: Actor, filters: ObjectiveFilters, page: PageRequest
) -> tuple[Sequence[Objective], str | None]:
    stmt = select(Objective).where(visible_to(actor))
    if filters.year is not None:
        stmt = stmt.where(Objective.year == filters.year)
    if filters.scope is not None:
        stmt = stmt.where(Objective.scope == filters.scope)
    return await paginate(session, Objective, stmt, page, filters.updated_since)


async def update(
    session: AsyncSession,
    actor: Actor,
    objective_id: uuid.UUID,
    data: ObjectiveUpdate,
    expected_versions: frozenset[int] | None,
) -> Objective:
    objective = await get(session, actor, objective_id)
    check_version(objective.version, expected_versions)
    apply_changes(objective, data.model_dump(exclude_unset=True))
    await flush(session)
    return objective


async def delete(
    session: AsyncSession,
    actor: Actor,
    objective_id: uuid.UUID,
    expected_versions: frozenset[int] | None,
) -> None:
    objective = await get(session, actor, objective_id)
    check_version(objective.version, expected_versions)
    await session.delete(objective)
    await flush(session)


@dataclass(frozen=True, slots=True)
class Progress:
    objective: Objective
    hires: int | None
    share: float | None
    projected: int | None
    as_of: datetime
    masked: list[str]


async def progress(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    objective_id: uuid.UUID,
    as_of: datetime | None,
) -> Progress:
    """Hires so far against the target, over the objective's whole scope (a shared
    steering figure: anyone who may read the objective reads its progress, masked below
    the threshold for every role but admins)."""
    objective = await get(session, actor, objective_id)
    when = as_of or utcnow()
    filters = stats.Filters(
        structure_id=objective.structure_id,
        landlord_id=objective.landlord_id,
        departement=objective.departement,
        region=objective.region,
    )
    hires, masked = await stats.hires_in_year(
        session, masked=actor.role is not Role.ADMIN, settings=settings,
        year=objective.year, filters=filters, as_of=when,
    )  # fmt: skip
    if hires is None:
        masked = [*masked, "share", "projected"]
        return Progress(objective, None, None, None, when, masked)
    return Progress(
        objective,
        hires,
        round(hires / objective.target, 4),
        stats.projected(hires, objective.year, when),
        when,
        masked,
    )
