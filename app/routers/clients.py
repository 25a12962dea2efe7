from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app import errors
from app.routers.deps import ApiRoute, IfMatch, Session, set_etag
from app.routers.pagination import ListQuery
from app.schemas.access import (
    ApiClient,
    ApiClientCreate,
    ApiClientCredentials,
    ApiClientPage,
    ApiClientUpdate,
)
from app.schemas.problems import problem_responses
from app.services import clients as service

router = APIRouter(prefix="/v1/clients", tags=["clients"], route_class=ApiRoute)


class ClientListQuery(ListQuery):
    pass


def _credentials(client: object, secret: str) -> ApiClientCredentials:
    return ApiClientCredentials.model_validate(
        {**ApiClient.model_validate(client).model_dump(), "client_secret": secret}
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    name="clients_create",
    summary="Create an API client; its secret is shown once, in this answer",
    responses=problem_responses(409, 413, 422, conflicts=(errors.WrongReferenceKind,)),
)
async def create(
    body: ApiClientCreate, session: Session, response: Response
) -> ApiClientCredentials:
    client, secret = await service.create(session, body)
    set_etag(response, client.version)
    response.headers["Location"] = f"{router.prefix}/{client.id}"
    response.headers["Cache-Control"] = "no-store"
    return _credentials(client, secret)


@router.get("", name="clients_list", summary="List API clients", responses=problem_responses(422))
async def list_(query: Annotated[ClientListQuery, Query()], session: Session) -> ApiClientPage:
    items, next_cursor = await service.list_(session, query.page(), query.updated_since)
    return ApiClientPage(
        items=[ApiClient.model_validate(c) for c in items], next_cursor=next_cursor
    )


@router.get(
    "/{client_id}",
    name="clients_get",
    summary="Get an API client",
    responses=problem_responses(404, 422),
)
async def get(client_id: uuid.UUID, session: Session, response: Response) -> ApiClient:
    client = await service.get(session, client_id)
    set_etag(response, client.version)
    return ApiClient.model_validate(client)


@router.patch(
    "/{client_id}",
    name="clients_update",
    summary="Rename, re-scope or set the expiry of a client",
    description="The last admin client able to manage clients (scope `clients:admin`, not "
    "revoked, no expiry) cannot be given an expiry or lose that scope: 409 "
    "`last-client-admin`.",
    responses=problem_responses(
        404, 409, 412, 413, 422, conflicts=(service.LastClientAdmin, errors.ConcurrentUpdate)
    ),
)
async def update(
    client_id: uuid.UUID,
    body: ApiClientUpdate,
    session: Session,
    if_match: IfMatch,
    response: Response,
) -> ApiClient:
    client = await service.update(session, client_id, body, if_match)
    set_etag(response, client.version)
    return ApiClient.model_validate(client)


@router.post(
    "/{client_id}/revoke",
    name="clients_revoke",
    summary="Revoke a client: its tokens stop working at once",
    description="The last admin client able to manage clients (scope `clients:admin`, not "
    "revoked, no expiry) cannot be revoked: 409 `last-client-admin`. Create another first.",
    responses=problem_responses(404, 409, 422, conflicts=(service.LastClientAdmin,)),
)
async def revoke(client_id: uuid.UUID, session: Session, response: Response) -> ApiClient:
    client = await service.revoke(session, client_id)
    set_etag(response, client.version)
    return ApiClient.model_validate(client)


@router.post(
    "/{client_id}/rotate-secret",
    name="clients_rotate_secret",
    summary="Give a client a new secret; the old secret and its tokens stop working",
    responses=problem_responses(404, 409, 422, conflicts=(service.ClientRevoked,)),
)
async def rotate_secret(
    client_id: uuid.UUID, session: Session, response: Response
) -> ApiClientCredentials:
    client, secret = await service.rotate_secret(session, client_id)
    set_etag(response, client.version)
    response.headers["Cache-Control"] = "no-store"
    return _credentials(client, secret)
