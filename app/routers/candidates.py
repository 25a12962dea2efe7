from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.domain.enums import Phase
from app.routers.deps import IfMatch, Session, TransactionalRoute, set_etag
from app.routers.pagination import ListQuery
from app.schemas.candidates import Candidate, CandidateCreate, CandidatePage, CandidateUpdate
from app.schemas.common import Departement
from app.schemas.problems import problem_responses
from app.services import candidates as service

router = APIRouter(prefix="/v1/candidates", tags=["candidates"], route_class=TransactionalRoute)


class CandidateListQuery(ListQuery):
    structure_id: uuid.UUID | None = None
    phase: Phase | None = None
    departement: Departement | None = None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="candidates_create",
    summary="Register a candidate; the path starts in recruitment",
    responses=problem_responses(409, 413, 422),
)
async def create(body: CandidateCreate, session: Session, response: Response) -> Candidate:
    candidate = await service.create(session, body)
    set_etag(response, candidate.version)
    response.headers["Location"] = f"{router.prefix}/{candidate.id}"
    return Candidate.model_validate(candidate)


@router.get("", name="candidates_list", summary="List candidates", responses=problem_responses(422))
async def list_(query: Annotated[CandidateListQuery, Query()], session: Session) -> CandidatePage:
    filters = service.CandidateFilters(
        structure_id=query.structure_id,
        phase=query.phase,
        departement=query.departement,
        updated_since=query.updated_since,
    )
    items, next_cursor = await service.list_(session, filters, query.page())
    return CandidatePage(
        items=[Candidate.model_validate(c) for c in items], next_cursor=next_cursor
    )


@router.get(
    "/{candidate_id}",
    name="candidates_get",
    summary="Get a candidate",
    responses=problem_responses(404, 422),
)
async def get(candidate_id: uuid.UUID, session: Session, response: Response) -> Candidate:
    candidate = await service.get(session, candidate_id)
    set_etag(response, candidate.version)
    return Candidate.model_validate(candidate)


@router.patch(
    "/{candidate_id}",
    name="candidates_update",
    summary="Change some fields of a candidate (never the phase)",
    responses=problem_responses(404, 409, 412, 413, 422),
)
async def update(
    candidate_id: uuid.UUID,
    body: CandidateUpdate,
    session: Session,
    if_match: IfMatch,
    response: Response,
) -> Candidate:
    candidate = await service.update(session, candidate_id, body, if_match)
    set_etag(response, candidate.version)
    return Candidate.model_validate(candidate)


@router.delete(
    "/{candidate_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="candidates_delete",
    summary="Erase a candidate who has no placement",
    responses=problem_responses(404, 409, 412, 422),
)
async def delete(candidate_id: uuid.UUID, session: Session, if_match: IfMatch) -> None:
    await service.delete(session, candidate_id, if_match)
