from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import Field

from app import errors
from app.domain.enums import ObjectiveScope
from app.routers.deps import ApiRoute, AppSettings, CurrentActor, IfMatch, Session, set_etag
from app.routers.pagination import ListQuery
from app.routers.stats import figure_rows, render_csv
from app.schemas.common import QueryModel
from app.schemas.objectives import (
    Objective,
    ObjectiveCreate,
    ObjectivePage,
    ObjectiveProgress,
    ObjectiveUpdate,
)
from app.schemas.problems import problem_responses
from app.schemas.stats import FIGURE_COLUMNS, FIGURES_CSV_EXAMPLE, PastInstant, csv_response
from app.services import objectives as service
from app.services import stats

router = APIRouter(prefix="/v1/objectives", tags=["objectives"], route_class=ApiRoute)

_SCOPE = (
    "National administrators set objectives; everybody else reads the national ones and "
    "those about their territory or their own structure (observers: their client's "
    "territory). One objective per year and scope (409 `duplicate`)."
)


class ObjectiveListQuery(ListQuery):
    year: int | None = Field(default=None, ge=2000, le=2100)
    scope: ObjectiveScope | None = None


class ProgressQuery(QueryModel):
    as_of: PastInstant | None = Field(
        default=None, description="The progress as the database knew it then (default now)."
    )
    format: Literal["json", "csv"] | None = Field(
        default=None, description="`csv` answers text/csv (as does `Accept: text/csv`)."
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="objectives_create",
    summary="Set a yearly recruitment objective",
    description=_SCOPE,
    responses=problem_responses(
        409, 413, 422, conflicts=(errors.DuplicateResource, errors.WrongReferenceKind)
    ),
)
async def create(body: ObjectiveCreate, session: Session, response: Response) -> Objective:
    objective = await service.create(session, body)
    set_etag(response, objective.version)
    response.headers["Location"] = f"{router.prefix}/{objective.id}"
    return Objective.model_validate(objective)


@router.get(
    "",
    name="objectives_list",
    summary="List the objectives the caller may read",
    description=_SCOPE,
    responses=problem_responses(422),
)
async def list_(
    query: Annotated[ObjectiveListQuery, Query()], session: Session, actor: CurrentActor
) -> ObjectivePage:
    filters = service.ObjectiveFilters(
        year=query.year, scope=query.scope, updated_since=query.updated_since
    )
    rows, next_cursor = await service.list_(session, actor, filters, query.page())
    return ObjectivePage(items=[Objective.model_validate(o) for o in rows], next_cursor=next_cursor)


@router.get(
    "/{objective_id}",
    name="objectives_get",
    summary="Get an objective",
    description=_SCOPE,
    responses=problem_responses(404, 422),
)
async def get(
    objective_id: uuid.UUID, session: Session, actor: CurrentActor, response: Response
) -> Objective:
    objective = await service.get(session, actor, objective_id)
    set_etag(response, objective.version)
    return Objective.model_validate(objective)


@router.patch(
    "/{objective_id}",
    name="objectives_update",
    summary="Change an objective's target or label",
    responses=problem_responses(404, 409, 412, 413, 422, conflicts=(errors.ConcurrentUpdate,)),
)
async def update(
    objective_id: uuid.UUID,
    body: ObjectiveUpdate,
    session: Session,
    actor: CurrentActor,
    if_match: IfMatch,
    response: Response,
) -> Objective:
    objective = await service.update(session, actor, objective_id, body, if_match)
    set_etag(response, objective.version)
    return Objective.model_validate(objective)


@router.delete(
    "/{objective_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="objectives_delete",
    summary="Delete an objective",
    responses=problem_responses(404, 409, 412, 422, conflicts=(errors.ConcurrentUpdate,)),
)
async def delete(
    objective_id: uuid.UUID, session: Session, actor: CurrentActor, if_match: IfMatch
) -> None:
    await service.delete(session, actor, objective_id, if_match)


@router.get(
    "/{objective_id}/progress",
    name="objectives_progress",
    summary="An objective's progress: hires so far, share of the target, projection",
    description="Hires are counted over the objective's whole scope, whoever reads it (a "
    "shared steering figure), masked below the threshold for every role but admins.\n\n"
    + stats.describe("objective_hires", "share", "projected", "masked"),
    response_model=ObjectiveProgress,
    responses={**csv_response(FIGURES_CSV_EXAMPLE, FIGURE_COLUMNS), **problem_responses(404, 422)},
)
async def progress(
    objective_id: uuid.UUID,
    query: Annotated[ProgressQuery, Query()],
    request: Request,
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
) -> Any:
    result = await service.progress(session, actor, settings, objective_id, query.as_of)
    body = ObjectiveProgress(
        objective_id=result.objective.id,
        year=result.objective.year,
        target=result.objective.target,
        hires=result.hires,
        share=result.share,
        projected=result.projected,
        as_of=result.as_of,
        masked=result.masked,
    )
    csv_wanted = query.format == "csv" or (
        query.format is None and "text/csv" in request.headers.get("accept", "")
    )
    if csv_wanted:
        figures = body.model_dump(include={"target", "hires", "share", "projected", "masked"})
        return render_csv(
            FIGURE_COLUMNS, figure_rows(figures), f"objective_{result.objective.year}_progress"
        )
    return body
