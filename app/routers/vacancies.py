from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app import errors
from app.domain.enums import VacancyKind, VacancyStatus
from app.routers.deps import ApiRoute, CurrentActor, IfMatch, Session, set_etag
from app.routers.pagination import ListQuery
from app.schemas.bulk import BulkResult, VacancyBulk, bulk_description, result_of
from app.schemas.common import Departement, ExternalRef
from app.schemas.problems import problem_responses
from app.schemas.vacancies import Vacancy, VacancyCreate, VacancyPage, VacancyUpdate
from app.services import bulk as bulk_service
from app.services import vacancies as service

router = APIRouter(prefix="/v1/vacancies", tags=["vacancies"], route_class=ApiRoute)


_BULK = bulk_description()


class VacancyListQuery(ListQuery):
    landlord_id: uuid.UUID | None = None
    kind: VacancyKind | None = None
    status: VacancyStatus | None = None
    departement: Departement | None = None
    external_ref: ExternalRef | None = None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="vacancies_create",
    summary="Post a job or a mission",
    responses=problem_responses(
        409, 413, 422, conflicts=(errors.WrongReferenceKind, service.ExternalRefTaken)
    ),
)
async def create(
    body: VacancyCreate, session: Session, actor: CurrentActor, response: Response
) -> Vacancy:
    vacancy = await service.create(session, actor, body)
    set_etag(response, vacancy.version)
    response.headers["Location"] = f"{router.prefix}/{vacancy.id}"
    return Vacancy.model_validate(vacancy)


@router.post(
    "/bulk",
    name="vacancies_bulk",
    summary="Create or update up to 1,000 vacancies by your own reference",
    description=_BULK,
    responses=problem_responses(413, 422),
)
async def bulk(body: VacancyBulk, session: Session, actor: CurrentActor) -> BulkResult:
    return result_of(await bulk_service.vacancies_bulk(session, actor, body.items))


@router.get("", name="vacancies_list", summary="List vacancies", responses=problem_responses(422))
async def list_(
    query: Annotated[VacancyListQuery, Query()], session: Session, actor: CurrentActor
) -> VacancyPage:
    filters = service.VacancyFilters(
        landlord_id=query.landlord_id,
        kind=query.kind,
        status=query.status,
        departement=query.departement,
        updated_since=query.updated_since,
        external_ref=query.external_ref,
    )
    items, next_cursor = await service.list_(session, actor, filters, query.page())
    return VacancyPage(items=[Vacancy.model_validate(v) for v in items], next_cursor=next_cursor)


@router.get(
    "/{vacancy_id:record_id}",
    name="vacancies_get",
    summary="Get a vacancy",
    responses=problem_responses(404, 422),
)
async def get(
    vacancy_id: uuid.UUID, session: Session, actor: CurrentActor, response: Response
) -> Vacancy:
    vacancy = await service.get(session, actor, vacancy_id)
    set_etag(response, vacancy.version)
    return Vacancy.model_validate(vacancy)


@router.patch(
    "/{vacancy_id:record_id}",
    name="vacancies_update",
    summary="Change some fields of a vacancy",
    description="`status` moves by hand between draft, open, closed and cancelled "
    "(`filled` follows the positions held). Cancelling rejects, in the same transaction, "
    "the placements not yet started (reason `other`), freeing their positions; started "
    "ones stay.",
    responses=problem_responses(
        404,
        409,
        412,
        413,
        422,
        conflicts=(
            service.VacancyStatusNotAllowed,
            service.PositionsTaken,
            service.ExternalRefTaken,
            errors.ConcurrentUpdate,
        ),
    ),
)
async def update(
    vacancy_id: uuid.UUID,
    body: VacancyUpdate,
    session: Session,
    actor: CurrentActor,
    if_match: IfMatch,
    response: Response,
) -> Vacancy:
    vacancy = await service.update(session, actor, vacancy_id, body, if_match)
    set_etag(response, vacancy.version)
    return Vacancy.model_validate(vacancy)


@router.delete(
    "/{vacancy_id:record_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="vacancies_delete",
    summary="Delete a vacancy nobody was proposed for (otherwise close or cancel it)",
    responses=problem_responses(
        404,
        409,
        412,
        422,
        conflicts=(
            errors.ResourceInUse,
            errors.ConcurrentUpdate,
        ),
    ),
)
async def delete(
    vacancy_id: uuid.UUID, session: Session, actor: CurrentActor, if_match: IfMatch
) -> None:
    await service.delete(session, actor, vacancy_id, if_match)
