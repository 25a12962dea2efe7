from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from app import errors
from app.domain.enums import PlacementStatus
from app.routers.deps import ApiRoute, CurrentActor, IfMatch, Session, set_etag
from app.routers.pagination import ListQuery, PageQuery
from app.schemas.placements import (
    FollowUpCreate,
    Placement,
    PlacementCreate,
    PlacementPage,
    PlacementTransitionPage,
    PlacementTransitionRequest,
    PlacementUpdate,
    present,
    present_move,
)
from app.schemas.problems import problem_responses
from app.services import placements as service
from app.services.visibility import placement_fields

router = APIRouter(prefix="/v1/placements", tags=["placements"], route_class=ApiRoute)


class PlacementListQuery(ListQuery):
    candidate_id: uuid.UUID | None = None
    vacancy_id: uuid.UUID | None = None
    status: PlacementStatus | None = None
    follow_up_due: bool | None = Field(
        default=None,
        description="true: started jobs whose 6- or 12-month follow-up is due and not "
        "recorded; false: the others.",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="placements_create",
    summary="Propose a candidate for an open vacancy",
    responses=problem_responses(
        409,
        413,
        422,
        conflicts=(
            errors.DuplicateResource,
            service.VacancyNotOpen,
            service.ConsentMissing,
            service.PhaseMismatch,
        ),
    ),
)
async def create(
    body: PlacementCreate, session: Session, actor: CurrentActor, response: Response
) -> Placement:
    placement = await service.create(session, actor, body)
    set_etag(response, placement.version)
    response.headers["Location"] = f"{router.prefix}/{placement.id}"
    return present(placement, notes=placement_fields(actor).notes)


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
        follow_up_due=query.follow_up_due,
    )
    items, next_cursor = await service.list_(session, actor, filters, query.page())
    notes = placement_fields(actor).notes
    return PlacementPage(items=[present(p, notes=notes) for p in items], next_cursor=next_cursor)


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
    return present(placement, notes=placement_fields(actor).notes)


@router.patch(
    "/{placement_id}",
    name="placements_update",
    summary="Change the dates or notes of a placement",
    responses=problem_responses(404, 409, 412, 413, 422, conflicts=(errors.ConcurrentUpdate,)),
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
    return present(placement, notes=placement_fields(actor).notes)


@router.post(
    "/{placement_id}/transitions",
    name="placements_transition",
    summary="Move a placement: interview, accept, reject, withdraw, start, complete, end",
    description="Landlords schedule interviews, accept and reject; the insertion structure "
    "withdraws, records the start and the end. Accepting takes one of the vacancy's "
    "positions (409 `vacancy-full` when none is left) and re-checks the person's consent "
    "(409 `consent-missing` once withdrawn); starting a job moves the candidate "
    "to `employed` in the same transaction.",
    responses=problem_responses(
        404,
        409,
        412,
        413,
        422,
        conflicts=(
            service.PlacementTransitionNotAllowed,
            service.VacancyFull,
            service.VacancyNotOpen,
            service.ConsentMissing,
            service.PhaseMismatch,
            errors.Conflict,
            errors.ConcurrentUpdate,
        ),
    ),
)
async def transition(
    placement_id: uuid.UUID,
    body: PlacementTransitionRequest,
    session: Session,
    actor: CurrentActor,
    if_match: IfMatch,
    response: Response,
) -> Placement:
    placement = await service.transition(session, actor, placement_id, body, if_match)
    set_etag(response, placement.version)
    response.headers["Content-Location"] = f"{router.prefix}/{placement.id}"
    return present(placement, notes=placement_fields(actor).notes)


@router.get(
    "/{placement_id}/history",
    name="placements_history",
    summary="Every move of a placement",
    description="A landlord reads every move, its date and reason; the note and client id "
    "of a move it did not make are null.",
    responses=problem_responses(404, 422),
)
async def history(
    placement_id: uuid.UUID,
    query: Annotated[PageQuery, Query()],
    session: Session,
    actor: CurrentActor,
) -> PlacementTransitionPage:
    rows, next_cursor = await service.history(session, actor, placement_id, query.page())
    return PlacementTransitionPage(
        items=[present_move(r, note=shown.note, actor_id=shown.actor_id) for r, shown in rows],
        next_cursor=next_cursor,
    )


@router.post(
    "/{placement_id}/follow-ups",
    name="placements_follow_up",
    summary="Record whether a hire is still in post, 6 or 12 months after it started",
    responses=problem_responses(404, 409, 413, 422, conflicts=(service.FollowUpRefused,)),
)
async def follow_up(
    placement_id: uuid.UUID,
    body: FollowUpCreate,
    session: Session,
    actor: CurrentActor,
    response: Response,
) -> Placement:
    placement = await service.record_follow_up(session, actor, placement_id, body)
    set_etag(response, placement.version)
    response.headers["Content-Location"] = f"{router.prefix}/{placement.id}"
    return present(placement, notes=placement_fields(actor).notes)
