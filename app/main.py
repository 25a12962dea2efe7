"""The application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __doc__ as app_doc
from app import logs
from app.config import Settings, get_settings
from app.db import SqliteWriters, create_engine, create_sessionmaker, dispose
from app.docs import install_docs
from app.errors import (
    PROBLEM_JSON,
    BodyTooLarge,
    PayloadTooLarge,
    install_error_handlers,
    problem_response,
)
from app.logs import configure_logging
from app.metrics import mark_process_dead, metrics_endpoint, register_event_backlog
from app.migrations import head_revision
from app.observability import RequestId
from app.ratelimit import RateLimiter
from app.routers import (
    activities,
    audit,
    candidates,
    clients,
    events,
    health,
    matching,
    oauth,
    objectives,
    pathway,
    placements,
    stats,
    structures,
    vacancies,
    webhooks,
)
from app.routers.deps import operation_id
from app.routers.idempotency import (
    IDEMPOTENCY_KEY_PATTERN,
    IdempotencyInProgress,
    ResponseNotReplayable,
)
from app.routing import match_route
from app.schemas.problems import conflict_description
from app.services.auth import Authenticator
from app.services.events import backlog_by_stage
from app.services.matching import offload
from app.services.permissions import ALL_SCOPES, OPERATIONS

API_VERSION = "0.2.0"
DESCRIPTION = """
Tremplin is the shared API of the COORACE x Union sociale pour l'habitat partnership:
insertion structures (SIAE), social landlords (HLM) and partners follow people on a
three-phase path (recruitment, support, securing) into building-caretaker jobs.

Conventions: JSON in snake_case, UUID ids, RFC 3339 UTC timestamps. Lists are
paginated by cursor (`limit`, `cursor`, answer `{items, next_cursor}`) and accept
`updated_since` for synchronisation. Every resource carries a `version`, sent as
`ETag`; PATCH and DELETE honour `If-Match` (412 when stale). Every error is
RFC 9457 `application/problem+json`.
"""


class BodySizeLimit:
    """413 for bodies over the limit, whether Content-Length is announced or not."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > self.max_bytes:
                    await self._reject(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        match_route(scope)
        exc = PayloadTooLarge(f"The body exceeds {self.max_bytes} bytes.")
        response = problem_response(
            Request(scope), status=exc.status, type_=exc.type, title=exc.title, detail=exc.detail
        )
        await response(scope, receive, send)


class ProductionMisconfigured(RuntimeError):
    """Production refuses a configuration that would lose data or forge tokens."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    problems = settings.production_problems()
    if problems:
        raise ProductionMisconfigured("; ".join(problems))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.migration_head = head_revision()
        # Everything built so far lives as long as the process: out of the garbage
        # collector's full passes, which would otherwise walk it and pause the event
        # loop (measured: 170 ms per pass during a national assignment, under load).
        gc.collect()
        gc.freeze()
        logs.write_through(False)  # while serving, a request never waits on stderr
        try:
            yield
        finally:
            await app.state.rate_limiter.close()
            offload.shutdown()
            await dispose(engine, settings.shutdown_timeout_s)
            mark_process_dead()
            # uvicorn ends the process with the signal it caught, without the exit
            # flush: every line from here on is written at once.
            logs.write_through()

    app = FastAPI(
        title="Tremplin",
        version=API_VERSION,
        summary=(app_doc or "").strip(),
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,
        redoc_url=None,
        # /v1/candidates/ is not /v1/candidates: a 404, not a redirect to http://.
        redirect_slashes=False,
        # Tremplin's own logs and /metrics are its telemetry; FastAPI's OpenTelemetry
        # hooks would look for providers on every request, and none is configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    configure_logging(settings.log_level)
    app.state.settings = settings
    app.state.authenticator = Authenticator(settings)
    app.state.rate_limiter = RateLimiter.from_settings(settings)
    # SQLite's writers take turns per process (app/db.py); PostgreSQL needs no turns.
    app.state.sqlite_writers = (
        SqliteWriters(settings.sqlite_busy_timeout_ms / 1000) if settings.is_sqlite else None
    )
    install_error_handlers(app)
    for module in (
        health,
        oauth,
        pathway,
        structures,
        candidates,
        activities,
        vacancies,
        placements,
        matching,
        clients,
        audit,
        events,
        webhooks,
        stats,
        objectives,
    ):
        # The routes themselves join the app's list: an included router (FastAPI 0.16x)
        # matches a request once to be chosen and again to serve it, each route of each
        # router on the way, a twelfth of a read's CPU. The routers carry their prefix
        # and tags already, and include nothing of their own.
        app.router.routes.extend(module.router.routes)
    install_docs(app)
    if settings.metrics_enabled:
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
        register_event_backlog(app, backlog_by_stage)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "Retry-After",
                "X-Request-ID",
                "Idempotent-Replayed",
            ],
            max_age=600,
        )
    # Outermost: even the 500s it renders carry the request id and the security headers.
    app.add_middleware(RequestId, hsts=settings.is_production)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=[
            {"name": "structures", "description": "SIAE, landlords and partners."},
            {"name": "candidates", "description": "People on an insertion path."},
            {"name": "pathway", "description": "The path's state machine."},
            {"name": "activities", "description": "What happens on a candidate's path."},
            {"name": "vacancies", "description": "Jobs and missions posted by landlords."},
            {"name": "placements", "description": "Candidates put forward for vacancies."},
            {"name": "matching", "description": "Rankings and assignments (suggestions)."},
            {"name": "clients", "description": "API clients of partner systems (admins)."},
            {"name": "audit", "description": "Journal of accesses to personal data (admins)."},
            {"name": "events", "description": "The change feed, in commit order."},
            {
                "name": "webhooks",
                "description": "Signed push of the change feed (Standard Webhooks).",
            },
            {"name": "stats", "description": "Figures computed from the history (aggregates)."},
            {"name": "objectives", "description": "Yearly recruitment objectives and progress."},
            {"name": "oauth", "description": "Access tokens (OAuth2 client credentials)."},
            {"name": "health", "description": "Liveness and readiness probes."},
        ],
    )
    _errors_as_problem_json(schema)
    _security(schema)
    _document_unavailable(schema)
    oauth.document_token_request(schema)
    app.openapi_schema = schema
    return schema


_AUTH_RESPONSES = {
    "401": "Missing, invalid or expired access token",
    "403": "The caller's role or token scope may not use this operation",
    "429": "Rate limit reached; see Retry-After",
}


def _document_idempotency(operation: dict[str, Any]) -> None:
    operation.setdefault("parameters", []).append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "pattern": IDEMPOTENCY_KEY_PATTERN,
            },
            "description": "1-255 printable ASCII characters, e.g. a UUID. "
            "Makes retries safe: the first answer is kept for 24 hours and "
            "replayed (with `Idempotent-Replayed: true`) to a retry with the same key and "
            "body; the same key with another body answers 422 "
            "(`idempotency-key-reused`); a retry while the first request runs answers 409 "
            "(`idempotency-in-progress`); an answer that held a secret is not kept, and "
            "its replay answers 409 (`idempotency-not-replayable`). An answer naming a "
            "resource (`Location`, `Content-Location`) is replayed by reading that resource "
            "again, as the caller: if it was erased since, or is no longer yours to see, "
            "the replay answers 404.",
        }
    )
    responses = operation.setdefault("responses", {})
    responses.setdefault(
        "404",
        {
            "description": "On a replay (Idempotency-Key): the resource the first answer "
            "named was erased since, or is no longer the caller's to see.",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        },
    )
    retries = [IdempotencyInProgress, ResponseNotReplayable]
    conflict = responses.get("409")
    if conflict is None:
        responses["409"] = {
            "description": conflict_description(retries),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    else:
        extra = conflict_description(retries).split("\n", 1)[1]
        if not conflict["description"].startswith("Conflict with the current state. `type`"):
            conflict["description"] = conflict_description([])
        conflict["description"] += "\n" + extra


def _security(schema: dict[str, Any]) -> None:
    """Declare the OAuth2 client-credentials scheme and the scope each operation needs."""
    schema.setdefault("components", {})["securitySchemes"] = {
        "oauth2": {
            "type": "oauth2",
            "description": "Client credentials from a national administrator. "
            "Front-end users send a bearer JWT from the OpenID Connect provider instead.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/v1/oauth/token",
                    "scopes": {scope: scope.replace(":", " ") for scope in ALL_SCOPES},
                }
            },
        }
    }
    for path in schema.get("paths", {}).values():
        for method, operation in path.items():
            name = operation.get("operationId", "")
            op = OPERATIONS.get(name)
            if op is not None:
                operation["security"] = [{"oauth2": [op.scope]}]
                if method == "post":
                    _document_idempotency(operation)
                # Every answer that is a versioned resource carries its ETag: reads,
                # creations and updates, and the moves that answer with the record
                # (transitions, follow-ups, revocations, rotated secrets).
                for code in ("200", "201"):
                    if code in operation["responses"] and _versioned(
                        schema, operation["responses"][code]
                    ):
                        operation["responses"][code].setdefault("headers", {})["ETag"] = {
                            "description": "The resource's version; send it in If-Match.",
                            "schema": {"type": "string"},
                        }
                if "201" in operation["responses"]:
                    operation["responses"]["201"].setdefault("headers", {})["Location"] = {
                        "description": "The path of the resource created.",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                responses = operation.setdefault("responses", {})
                for code, description in _AUTH_RESPONSES.items():
                    responses.setdefault(
                        code,
                        {
                            "description": description,
                            "content": {
                                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                            },
                        },
                    )
    _document_retry_after(schema)


def _document_retry_after(schema: dict[str, Any]) -> None:
    """A 429 always says when to try again (app.errors.TooManyRequests)."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            limited = operation.get("responses", {}).get("429")
            if limited is not None:
                limited.setdefault("headers", {})["Retry-After"] = {
                    "description": "Seconds to wait before retrying.",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }


def _versioned(schema: dict[str, Any], response: dict[str, Any]) -> bool:
    """The answer is a resource with a `version` (its ETag): the path's description
    (`/v1/pathway`), for one, has none."""
    components = schema.get("components", {}).get("schemas", {})

    def has_version(node: dict[str, Any]) -> bool:
        if "$ref" in node:
            return has_version(components.get(node["$ref"].rsplit("/", 1)[1], {}))
        members = node.get("oneOf") or node.get("anyOf") or []
        return "version" in node.get("properties", {}) or any(has_version(m) for m in members)

    content = response.get("content", {}).get("application/json", {})
    return has_version(content.get("schema", {}))


def _document_unavailable(schema: dict[str, Any]) -> None:
    """Every /v1 operation reads the database, so any may answer 503 while it is
    unreachable, frozen or out of free connections (app.errors): documented, so that a
    generated client returns the problem instead of an undocumented status."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault(
                "503",
                {
                    "description": "The database is unavailable or every connection is "
                    "busy; retry after the delay given in Retry-After.",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds to wait before retrying.",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    },
                    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                },
            )


def _errors_as_problem_json(schema: dict[str, Any]) -> None:
    """Error bodies are problem+json: re-label them, and drop FastAPI's default 422 shape."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code[0] in "45" and "application/json" in content:
                    content.setdefault(PROBLEM_JSON, content.pop("application/json"))
                    content.pop("application/json", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
