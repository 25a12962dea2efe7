from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from app.domain.enums import AuditAction
from app.routers.deps import ApiRoute, Session
from app.routers.pagination import PageQuery
from app.schemas.access import AuditEvent, AuditPage
from app.schemas.common import UtcInstant
from app.schemas.problems import problem_responses
from app.services import audit as service

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=ApiRoute)


class AuditListQuery(PageQuery):
    candidate_id: uuid.UUID | None = None
    actor_id: str | None = Field(default=None, max_length=255)
    action: AuditAction | None = None
    operation: str | None = Field(default=None, max_length=64)
    since: UtcInstant | None = None
    until: UtcInstant | None = None


@router.get(
    "",
    name="audit_list",
    summary="Read the journal of accesses to candidates' personal data",
    description="Append-only: there is no way to change or delete an entry through the "
    "API. Entries older than the retention period are purged by `python -m app purge-audit`.",
    responses=problem_responses(422),
)
async def list_(query: Annotated[AuditListQuery, Query()], session: Session) -> AuditPage:
    filters = service.AuditFilters(
        candidate_id=query.candidate_id,
        actor_id=query.actor_id,
        action=query.action,
        operation=query.operation,
        since=query.since,
        until=query.until,
    )
    items, next_cursor = await service.list_(session, filters, query.page())
    return AuditPage(items=[AuditEvent.model_validate(e) for e in items], next_cursor=next_cursor)
