from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.domain.enums import PlacementStatus
from app.routers.deps import ApiRoute, CurrentActor, IfMatch, Session, set_etag
from app.routers.pagination import ListQuery
from app.schemas.placements import Placement, PlacementCreate, PlacementPage, PlacementUpdate
from app.schemas.problems import problem_responses
from app.services import placements as service

router = APIRouter(prefix="/v1/placements", tags=["placements"], route_class=ApiRoute)


class PlacementListQuery(ListQuery):
    candidate_id: uuid.UUID | None = None
    vacancy_id: uuid.UUID | None = None
    status: PlacementStatus | None = None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="placements_create",
    summary="Propose a candidate for an open vacancy",
    responses=problem_responses(409, 413, 422),
)
async def create(
    body: PlacementCreate, session: Session, actor: CurrentActor, response: Response
) -> Placement:
    placement = await service.create(session, actor, body)
    set_etag(response, placement.version)
    response.headers["Location"] = f"{router.prefix}/{placement.id}"
    return Placement.model_validate(placement)


@router.get(
    "",
    name="placements_list",
    summary="List placements",
    responses=problem_responses(422),
)
async def list_(
    query: Annotated[PlacementListQuery, Query()], session: Session, actor: CurrentActor
) -> PlacementPage:
    filters = service.PlacementFilters(
        candidate_id=query.candidate_id,
        vacancy_id=query.vacancy_id,
        status=query.status,
        updated_since=query.updated_since,
    )
    items, next_cursor = await service.list_(session, actor, filters, query.page())
    return PlacementPage(
        items=[Placement.model_validate(p) for p in items], next_cursor=next_cursor
    )


@router.get(
    "/{placement_id}",
    name="placements_get",
    summary="Get a placement",
    responses=problem_responses(404, 422),
)
async def get(
    placement_id: uuid.UUID, session: Session, actor: CurrentActor, response: Response
) -> Placement:
    placement = await service.get(session, actor, placement_id)
    set_etag(response, placement.version)
    return Placement.model_validate(placement)


@router.patch(
    "/{placement_id}",
    name="placements_update",
    summary="Change the dates or notes of a placement",
    responses=problem_responses(404, 409, 412, 413, 422),
)
async def update(
    placement_id: uuid.UUID,
    body: PlacementUpdate,
    session: Session,
    actor: CurrentActor,
    if_match: IfMatch,
    response: Response,
) -> Placement:
    placement = await service.update(session, actor, placement_id, body, if_match)
    set_etag(response, placement.version)
    return Placement.model_validate(placement)
