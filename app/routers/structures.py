from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from app import errors
from app.domain.enums import StructureKind
from app.routers.deps import ApiRoute, CurrentActor, IfMatch, Session, set_etag
from app.routers.pagination import ListQuery
from app.schemas.common import Departement
from app.schemas.problems import problem_responses
from app.schemas.structures import (
    Siret,
    Structure,
    StructureCreate,
    StructurePage,
    StructureUpdate,
)
from app.services import structures as service

router = APIRouter(prefix="/v1/structures", tags=["structures"], route_class=ApiRoute)


class StructureListQuery(ListQuery):
    kind: StructureKind | None = None
    departement: Departement | None = None
    siret: Siret | None = Field(default=None, description="The structure with this SIRET.")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="structures_create",
    summary="Register a structure",
    responses=problem_responses(409, 413, 422, conflicts=(errors.DuplicateResource,)),
)
async def create(body: StructureCreate, session: Session, response: Response) -> Structure:
    structure = await service.create(session, body)
    set_etag(response, structure.version)
    response.headers["Location"] = f"{router.prefix}/{structure.id}"
    return Structure.model_validate(structure)


@router.get(
    "",
    name="structures_list",
    summary="List structures",
    responses=problem_responses(422),
)
async def list_(query: Annotated[StructureListQuery, Query()], session: Session) -> StructurePage:
    filters = service.StructureFilters(
        kind=query.kind,
        departement=query.departement,
        updated_since=query.updated_since,
        siret=query.siret,
    )
    items, next_cursor = await service.list_(session, filters, query.page())
    return StructurePage(
        items=[Structure.model_validate(s) for s in items], next_cursor=next_cursor
    )


@router.get(
    "/{structure_id}",
    name="structures_get",
    summary="Get a structure",
    responses=problem_responses(404, 422),
)
async def get(structure_id: uuid.UUID, session: Session, response: Response) -> Structure:
    structure = await service.get(session, structure_id)
    set_etag(response, structure.version)
    return Structure.model_validate(structure)


@router.patch(
    "/{structure_id}",
    name="structures_update",
    summary="Change some fields of a structure",
    responses=problem_responses(
        404,
        409,
        412,
        413,
        422,
        conflicts=(
            errors.DuplicateResource,
            errors.ConcurrentUpdate,
        ),
    ),
)
async def update(
    structure_id: uuid.UUID,
    body: StructureUpdate,
    session: Session,
    actor: CurrentActor,
    if_match: IfMatch,
    response: Response,
) -> Structure:
    structure = await service.update(session, actor, structure_id, body, if_match)
    set_etag(response, structure.version)
    return Structure.model_validate(structure)


@router.delete(
    "/{structure_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="structures_delete",
    summary="Delete a structure nothing refers to",
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
async def delete(structure_id: uuid.UUID, session: Session, if_match: IfMatch) -> None:
    await service.delete(session, structure_id, if_match)
