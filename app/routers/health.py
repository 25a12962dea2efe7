from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import reads_only
from app.errors import ServiceUnavailable, error_response
from app.migrations import current_revision
from app.routers.deps import operation_id
from app.schemas.problems import problem_responses

router = APIRouter(tags=["health"], generate_unique_id_function=operation_id)


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
    probe = asyncio.ensure_future(_revision(engine))
    # Answer within READINESS_TIMEOUT_S whatever the database does (frozen, pool
    # exhausted): a probe still running is left to finish on its own, bounded by the
    # connect and command timeouts, instead of being awaited while it cleans up.
    done, _ = await asyncio.wait({probe}, timeout=settings.readiness_timeout_s)
    if not done:
        _abandoned.add(probe)
        probe.add_done_callback(_forget)
        raise _not_ready(settings, "The database does not answer.")
    try:
        revision = probe.result()
    except (SQLAlchemyError, OSError, TimeoutError):
        raise _not_ready(settings, "The database does not answer or has no schema.") from None
    if revision != head:
        raise _not_ready(settings, "The database schema is not at the migration head.")
    return Readiness(status="ok", database=engine.dialect.name, revision=revision)


# Load balancers often probe with HEAD. These routes stay out of the spec: HEAD on a GET
# resource is part of HTTP itself (RFC 9110 9.3.2), and the GET operations document it.
@router.head("/healthz", name="health_live", include_in_schema=False)
async def healthz_head() -> Response:
    return _headers_only(JSONResponse((await healthz()).model_dump()))


@router.head("/readyz", name="health_ready", include_in_schema=False)
async def readyz_head(request: Request) -> Response:
    try:
        readiness = await readyz(request)
    except NotReady as exc:
        return _headers_only(error_response(request, exc))
    return _headers_only(JSONResponse(readiness.model_dump()))


def _headers_only(response: Response) -> Response:
    """The GET's status and headers, its Content-Length included (RFC 9110 8.6), without
    the body: the ASGI server would drop it, but not every server or test client does."""
    bodiless = Response(status_code=response.status_code)
    bodiless.raw_headers = response.raw_headers
    return bodiless


async def _revision(engine: AsyncEngine) -> str | None:
    # A read that takes no SQLite write lock: a long writer does not make the instance
    # "not ready".
    with reads_only():
        async with engine.connect() as conn:
            return await current_revision(conn)


_abandoned: set[asyncio.Future[str | None]] = set()


def _forget(probe: asyncio.Future[str | None]) -> None:
    _abandoned.discard(probe)
    if not probe.cancelled():
        probe.exception()  # retrieved: its failure was already answered as 503


def _not_ready(settings: Settings, detail: str) -> NotReady:
    return NotReady(detail, retry_after_s=settings.db_retry_after_s)
