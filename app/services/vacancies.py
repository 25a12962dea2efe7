from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import (
    OPEN_PLACEMENT_STATUSES,
    Role,
    StructureKind,
    VacancyKind,
    VacancyStatus,
)
from app.errors import (
    Conflict,
    DuplicateResource,
    Forbidden,
    NotFound,
    ResourceInUse,
    ValidationFailed,
    field_error,
)
from app.models import Placement, Vacancy
from app.schemas.common import check_coordinates, check_dates
from app.schemas.events import VacancyCreated, VacancyDeleted, VacancyUpdated
from app.schemas.vacancies import VacancyCreate, VacancyUpdate, check_vacancy_kind
from app.services import events, structures, tenancy
from app.services.auth import Actor
from app.services.common import (
    PageRequest,
    apply_changes,
    check_version,
    cross_field,
    find_or_create,
    flush,
    for_update,
    paginate,
    referred_by,
    territory,
)


@dataclass(frozen=True, slots=True)
class VacancyFilters:
    landlord_id: uuid.UUID | None = None
    kind: VacancyKind | None = None
    status: VacancyStatus | None = None
    departement: str | None = None
    updated_since: datetime | None = None
    external_ref: str | None = None


visible_to = tenancy.vacancies
writable_by = tenancy.vacancies_writable


# Status moves a landlord makes by hand; `filled` comes and goes with the positions held.
MANUAL_MOVES: dict[VacancyStatus, frozenset[VacancyStatus]] = {
    VacancyStatus.DRAFT: frozenset({VacancyStatus.OPEN, VacancyStatus.CANCELLED}),
    VacancyStatus.OPEN: frozenset({VacancyStatus.CLOSED, VacancyStatus.CANCELLED}),
    VacancyStatus.FILLED: frozenset({VacancyStatus.CLOSED, VacancyStatus.CANCELLED}),
    VacancyStatus.CLOSED: frozenset({VacancyStatus.OPEN, VacancyStatus.CANCELLED}),
    VacancyStatus.CANCELLED: frozenset(),
}


class VacancyStatusNotAllowed(Conflict):
    slug, title = "vacancy-status-not-allowed", "The vacancy cannot move to this status"


class ExternalRefTaken(DuplicateResource):
    slug, title = "external-ref-taken", "This external reference is already used"


def _ref_taken() -> ExternalRefTaken:
    return ExternalRefTaken("The landlord already has a vacancy with this external_ref.")


_CONFLICTS = {
    "uq_vacancies_landlord_id_external_ref": _ref_taken,
    "unique:vacancies.landlord_id, vacancies.external_ref": _ref_taken,
}


class PositionsTaken(Conflict):
    slug, title = "positions-taken", "Fewer positions than placements holding them"


def refresh_status(vacancy: Vacancy) -> None:
    """open <-> filled follows the positions held; the other statuses are set by hand."""
    if vacancy.status in (VacancyStatus.OPEN, VacancyStatus.FILLED):
        full = vacancy.filled_positions >= vacancy.positions
        vacancy.status = VacancyStatus.FILLED if full else VacancyStatus.OPEN


async def _find(
    session: AsyncSession,
    vacancy_id: uuid.UUID,
    condition: ColumnElement[bool],
    *,
    lock: bool = False,
) -> Vacancy:
    stmt = select(Vacancy).where(Vacancy.id == vacancy_id, condition)
    if lock:
        # Placements change filled_positions under this same lock.
        stmt = for_update(stmt)
    vacancy = await session.scalar(stmt)
    if vacancy is None:
        raise NotFound("No vacancy with this id.")
    return vacancy


async def create(session: AsyncSession, actor: Actor, data: VacancyCreate) -> Vacancy:
    if actor.role is Role.LANDLORD and data.landlord_id != actor.structure_id:
        raise Forbidden("Landlord staff post vacancies for their own structure only.")
    await structures.require_kind(session, data.landlord_id, StructureKind.LANDLORD, "landlord_id")
    values = data.model_dump(exclude={"required_competencies"})
    values["required_competencies"] = data.required_competencies.model_dump()
    vacancy = Vacancy(**values, **territory(data.commune_insee))
    session.add(vacancy)
    await flush(session, _CONFLICTS)
    events.emit(
        session,
        VacancyCreated(
            vacancy_id=vacancy.id,
            landlord_id=vacancy.landlord_id,
            kind=vacancy.kind,
            status=vacancy.status,
        ),
        events.vacancy_audience(vacancy),
    )
    return vacancy


async def get(session: AsyncSession, actor: Actor, vacancy_id: uuid.UUID) -> Vacancy:
    return await _find(session, vacancy_id, visible_to(actor))


async def list_(
    session: AsyncSession, actor: Actor, filters: VacancyFilters, page: PageRequest
) -> tuple[Sequence[Vacancy], str | None]:
    stmt = select(Vacancy).where(visible_to(actor))
    if filters.landlord_id is not None:
        stmt = stmt.where(Vacancy.landlord_id == filters.landlord_id)
    if filters.kind is not None:
        stmt = stmt.where(Vacancy.kind == filters.kind)
    if filters.status is not None:
        stmt = stmt.where(Vacancy.status == filters.status)
    if filters.departement is not None:
        stmt = stmt.where(Vacancy.departement == filters.departement)
    if filters.external_ref is not None:
        stmt = stmt.where(Vacancy.external_ref == filters.external_ref)
    return await paginate(session, Vacancy, stmt, page, filters.updated_since)


async def update(
    session: AsyncSession,
    actor: Actor,
    vacancy_id: uuid.UUID,
    data: VacancyUpdate,
    expected_versions: frozenset[int] | None,
) -> Vacancy:
    cancels = data.status is VacancyStatus.CANCELLED
    if cancels:
        # Cancelling closes the placements not yet started: their rows are locked first,
        # in the order every placement move takes (placement, vacancy, then candidate).
        await session.execute(
            for_update(
                select(Placement)
                .where(
                    Placement.vacancy_id == vacancy_id,
                    Placement.status.in_(OPEN_PLACEMENT_STATUSES),
                )
                .order_by(Placement.id)
            )
        )
    vacancy = await _find(session, vacancy_id, writable_by(actor), lock=True)
    check_version(vacancy.version, expected_versions)
    was_cancelled = vacancy.status is VacancyStatus.CANCELLED
    changes = data.model_dump(exclude_unset=True)
    if changes.get("positions", vacancy.positions) < vacancy.filled_positions:
        raise PositionsTaken(
            f"{vacancy.filled_positions} placements hold positions on this vacancy; "
            "withdraw or end some first.",
            filled_positions=vacancy.filled_positions,
        )
    target = changes.get("status")
    if target is not None and target is not vacancy.status:
        allowed = MANUAL_MOVES[vacancy.status]
        if target not in allowed:
            raise VacancyStatusNotAllowed(
                # No article before the status: "A open vacancy" read badly.
                f"This vacancy is {vacancy.status.value} and cannot become {target.value}.",
                current=vacancy.status.value,
                allowed=sorted(s.value for s in allowed),
            )
    if data.required_competencies is not None:
        changes["required_competencies"] = data.required_competencies.model_dump()

    contract_type = changes.get("contract_type", vacancy.contract_type)
    mission_type = changes.get("mission_type", vacancy.mission_type)
    latitude = changes.get("latitude", vacancy.latitude)
    longitude = changes.get("longitude", vacancy.longitude)
    start_date = changes.get("start_date", vacancy.start_date)
    end_date = changes.get("end_date", vacancy.end_date)
    cross_field(lambda: check_vacancy_kind(vacancy.kind, contract_type, mission_type))
    cross_field(lambda: check_coordinates(latitude, longitude))
    cross_field(lambda: check_dates(start_date, end_date))
    if "commune_insee" in changes:
        changes.update(territory(changes["commune_insee"]))
    before = vacancy.version
    apply_changes(vacancy, changes)
    refresh_status(vacancy)
    await flush(session, _CONFLICTS)
    if cancels and not was_cancelled:
        # A cycle: placement moves refresh a vacancy's status.
        from app.services import placements

        # The offer is gone: nobody waits on it, and no position stays held by a
        # placement that can no longer start.
        await placements.reject_open(session, actor, vacancy.id)
    if vacancy.version != before:
        events.emit(
            session,
            VacancyUpdated(
                vacancy_id=vacancy.id,
                landlord_id=vacancy.landlord_id,
                status=vacancy.status,
                version=vacancy.version,
            ),
            events.vacancy_audience(vacancy),
        )
    return vacancy


async def delete(
    session: AsyncSession,
    actor: Actor,
    vacancy_id: uuid.UUID,
    expected_versions: frozenset[int] | None,
) -> None:
    """Only a vacancy nobody was proposed for can be deleted; otherwise close or cancel it."""
    vacancy = await _find(session, vacancy_id, writable_by(actor))
    check_version(vacancy.version, expected_versions)
    if await referred_by(session, vacancy):
        raise ResourceInUse(
            "Placements refer to this vacancy: close or cancel it instead (PATCH status)."
        )
    audience = events.vacancy_audience(vacancy)
    await session.delete(vacancy)
    await flush(session)
    events.emit(
        session, VacancyDeleted(vacancy_id=vacancy_id, landlord_id=vacancy.landlord_id), audience
    )


async def upsert(session: AsyncSession, actor: Actor, data: VacancyCreate) -> tuple[Vacancy, str]:
    """Create the vacancy, or update the landlord's one with this external_ref (the
    fields given only). Returns the record and `created`, `updated` or `unchanged`."""

    async def by_ref() -> Vacancy | None:
        return await session.scalar(
            select(Vacancy).where(
                Vacancy.landlord_id == data.landlord_id,
                Vacancy.external_ref == data.external_ref,
                writable_by(actor),
            )
        )

    async def made() -> Vacancy:
        return await create(session, actor, data)

    existing, created = await find_or_create(session, by_ref, made, ExternalRefTaken)
    if created:
        return existing, "created"
    if data.kind is not existing.kind:
        raise ValidationFailed(
            [field_error(["body", "kind"], "a vacancy's kind is fixed at creation", "value_error")]
        )
    values = data.model_dump(exclude_unset=True, exclude={"landlord_id", "kind"})
    if values.get("status") is VacancyStatus.OPEN and existing.status is VacancyStatus.FILLED:
        values.pop("status")  # open and full: `filled` is what open becomes when full
    before = existing.version
    vacancy = await update(session, actor, existing.id, VacancyUpdate.model_validate(values), None)
    return vacancy, "unchanged" if vacancy.version == before else "updated"
