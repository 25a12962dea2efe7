from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import reads_only
from app.errors import ServiceUnavailable
from app.migrations import current_revision
from app.schemas.problems import problem_responses

router = APIRouter(tags=["health"])


class NotReady(ServiceUnavailable):
    slug, title = "not-ready", "Not ready"


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    revision: str | None


@router.get("/healthz", name="health_live", summary="The process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    name="health_ready",
    summary="The database answers and its schema is at the migration head",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> Readiness:
    engine: AsyncEngine = request.app.state.engine
    settings: Settings = request.app.state.settings
    head: str | None = request.app.state.migration_head
    try:
        # Bounded whatever the database does (frozen, pool exhausted); a read that takes
        # no SQLite write lock, so a long writer does not make the instance "not ready".
        async with asyncio.timeout(settings.readiness_timeout_s):
            with reads_only():
                async with engine.connect() as conn:
                    revision = await current_revision(conn)
    except (SQLAlchemyError, OSError, TimeoutError):
        raise NotReady(
            "The database does not answer or has no schema.",
            retry_after_s=settings.db_retry_after_s,
        ) from None
    if revision != head:
        raise NotReady("The database schema is not at the migration head.")
    return Readiness(status="ok", database=engine.dialect.name, revision=revision)
