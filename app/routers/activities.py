from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from app import errors
from app.domain.enums import ActivityType
from app.routers.deps import ApiRoute, CurrentActor, IfMatch, Session, set_etag
from app.routers.pagination import PageQuery
from app.schemas.activities import Activity, ActivityCreate, ActivityPage, ActivityUpdate
from app.schemas.problems import problem_responses
from app.services import activities as service

router = APIRouter(
    prefix="/v1/candidates/{candidate_id}/activities", tags=["activities"], route_class=ApiRoute
)

_EXAMPLES = {
    "training": {
        "summary": "35 hours of external certifying training",
        "value": {
            "type": "training",
            "occurred_on": "2026-10-05",
            "end_on": "2026-10-09",
            "hours": 35,
            "training_mode": "external",
            "certifying": True,
            "rncp_code": "RNCP40892",
        },
    },
    "skills_assessment": {
        "summary": "A positive skills assessment",
        "value": {
            "type": "skills_assessment",
            "occurred_on": "2026-11-02",
            "competency_levels": {"cleaning_hygiene": 3, "tenant_welcome": 2},
            "outcome": "positive",
        },
    },
    "work_trial": {
        "summary": "A work-situation trial (PMSMP) that went well",
        "value": {
            "type": "work_trial",
            "occurred_on": "2026-06-01",
            "end_on": "2026-06-12",
            "outcome": "positive",
        },
    },
}


class ActivityListQuery(PageQuery):
    type: ActivityType | None = None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="activities_create",
    summary="Record an activity on the candidate's path",
    description="Each type has its own fields. An activity of a phase the candidate has not "
    "reached answers 409 (`phase-not-reached`). A skills assessment updates the candidate's "
    "competencies; a certification exam updates their certifications.",
    responses=problem_responses(
        404,
        409,
        413,
        422,
        conflicts=(
            service.PhaseNotReached,
            errors.WrongReferenceKind,
        ),
    ),
)
async def create(
    candidate_id: uuid.UUID,
    body: Annotated[ActivityCreate, Body(openapi_examples=_EXAMPLES)],
    session: Session,
    actor: CurrentActor,
    response: Response,
) -> Activity:
    activity = await service.create(session, actor, candidate_id, body)
    set_etag(response, activity.version)
    response.headers["Location"] = f"/v1/candidates/{candidate_id}/activities/{activity.id}"
    return Activity.model_validate(activity)


@router.get(
    "",
    name="activities_list",
    summary="List a candidate's activities",
    responses=problem_responses(404, 422),
)
async def list_(
    candidate_id: uuid.UUID,
    query: Annotated[ActivityListQuery, Query()],
    session: Session,
    actor: CurrentActor,
) -> ActivityPage:
    rows, next_cursor = await service.list_(session, actor, candidate_id, query.type, query.page())
    return ActivityPage(items=[Activity.model_validate(a) for a in rows], next_cursor=next_cursor)


@router.get(
    "/{activity_id}",
    name="activities_get",
    summary="Get an activity",
    responses=problem_responses(404, 422),
)
async def get(
    candidate_id: uuid.UUID,
    activity_id: uuid.UUID,
    session: Session,
    actor: CurrentActor,
    response: Response,
) -> Activity:
    activity = await service.get(session, actor, candidate_id, activity_id)
    set_etag(response, activity.version)
    return Activity.model_validate(activity)


@router.patch(
    "/{activity_id}",
    name="activities_update",
    summary="Correct an activity (fields of its own type only)",
    responses=problem_responses(
        404,
        409,
        412,
        413,
        422,
        conflicts=(
            errors.WrongReferenceKind,
            errors.ConcurrentUpdate,
        ),
    ),
)
async def update(
    candidate_id: uuid.UUID,
    activity_id: uuid.UUID,
    body: ActivityUpdate,
    session: Session,
    actor: CurrentActor,
    if_match: IfMatch,
    response: Response,
) -> Activity:
    activity = await service.update(session, actor, candidate_id, activity_id, body, if_match)
    set_etag(response, activity.version)
    return Activity.model_validate(activity)
