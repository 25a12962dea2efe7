"""The domain error tree, rendered as RFC 9457 problem+json by one set of handlers.

Services raise these; they know nothing of HTTP beyond the status each carries.
Details never contain personal data: they name fields and ids, never values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.domain.text import ONE_LINE_MESSAGE, ONE_LINE_PATTERN
from app.routing import route_template

logger = logging.getLogger("tremplin.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:tremplin:problem:"


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_PREFIX + slug


class TremplinError(Exception):
    """Base of every error the API reports on purpose."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions
        self.headers: dict[str, str] | None = None

    @property
    def type(self) -> str:
        return problem_type(self.slug)


class BadRequest(TremplinError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(TremplinError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(TremplinError):
    status, slug, title = 403, "forbidden", "Forbidden"


class TooManyRequests(TremplinError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"Rate limit reached; retry in {retry_after_s} s.")
        self.headers = {"Retry-After": str(retry_after_s)}


class NotFound(TremplinError):
    status, slug, title = 404, "not-found", "Resource not found"


class Conflict(TremplinError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class DuplicateResource(Conflict):
    slug, title = "duplicate", "Resource already exists"


class WrongReferenceKind(Conflict):
    slug, title = "wrong-reference-kind", "Referenced structure is of the wrong kind"


class ResourceInUse(Conflict):
    slug, title = "resource-in-use", "Resource is referenced by other resources"


class ConcurrentUpdate(Conflict):
    slug, title = "concurrent-update", "Resource was changed by another request"


class PreconditionFailed(TremplinError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(TremplinError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class BodyTooLarge(StarletteHTTPException):
    """Raised while the body streams in: FastAPI's body reader lets HTTP exceptions
    through (any other would become a 400), and the handler renders PayloadTooLarge."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The body exceeds {max_bytes} bytes.")


class ValidationFailed(TremplinError):
    """A payload that is well-formed but invalid, found by a service (e.g. unknown id)."""

    status, slug, title = 422, "validation-error", "Invalid request"

    def __init__(self, errors: Sequence[dict[str, Any]], detail: str | None = None) -> None:
        super().__init__(detail or "The request has invalid fields.", errors=list(errors))


class ServiceUnavailable(TremplinError):
    status, slug, title = 503, "unavailable", "Service unavailable"

    def __init__(
        self, detail: str | None = None, retry_after_s: int | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail, **extensions)
        if retry_after_s is not None:
            self.headers = {"Retry-After": str(retry_after_s)}


def field_error(loc: Sequence[str | int], message: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "message": message, "type": kind}


def problem_response(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(request: Request, exc: TremplinError) -> JSONResponse:
    return problem_response(
        request,
        status=exc.status,
        type_=exc.type,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        **exc.extensions,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return pydantic_errors(exc.errors())


def pydantic_errors(errors: Sequence[Any], prefix: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Field errors from pydantic's, naming the field to fix.

    Pydantic echoes the rejected input; it may be personal data, so it is dropped. A rule
    across fields (FieldRuleError) names its fields; a bad discriminator names itself.
    """
    out = []
    for err in errors:
        loc = [*prefix, *(str(p) for p in err.get("loc", ()))]
        ctx = err.get("ctx") or {}
        fields: Sequence[str] = getattr(ctx.get("error"), "fields", ())
        if err["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            fields = (str(ctx.get("discriminator", "")).strip("'"),)
        message = _message(err)
        for field in fields or (None,):
            out.append(field_error([*loc, field] if field else loc, message, err["type"]))
    return out


# An enum member as Python writes it (<VacancyStatus.DRAFT: 'draft'>): its value says it.
_ENUM_MEMBER = re.compile(r"<\w+\.\w+: ('[^']*'|-?\d+)>")
_EMAIL = "value is not a valid email address"
_CHOICE_ERRORS = frozenset({"enum", "literal_error"})


def _message(err: Mapping[str, Any]) -> str:
    """Pydantic's message without the rejected input, which may be personal data: a
    discriminator's message quotes the tag it got, an email's the characters it refused;
    any other that holds the input is replaced by a plain one."""
    ctx = err.get("ctx") or {}
    if err["type"] == "union_tag_invalid":
        expected = _ENUM_MEMBER.sub(r"\1", str(ctx.get("expected_tags", "")))
        return f"{ctx.get('discriminator', 'the tag')} should be one of: {expected}"
    message = _ENUM_MEMBER.sub(r"\1", str(err.get("msg", "")))
    if message.startswith(_EMAIL):
        reason = message.removeprefix(_EMAIL).strip(": ")
        return f"{_EMAIL}: {reason.split(':')[0].rstrip('.')}" if reason else _EMAIL
    value = err.get("input")
    # A choice's message lists only the expected values: an input that happens to be
    # part of one ("moved" in 'moved_away') is not quoted, and the list is what helps.
    if err["type"] in _CHOICE_ERRORS:
        return message
    if err["type"] == "string_pattern_mismatch" and ctx.get("pattern") == ONE_LINE_PATTERN:
        return ONE_LINE_MESSAGE
    if isinstance(value, str) and len(value) >= 3 and value in message:
        return "this value is not accepted here"
    return message


def _route(request: Request) -> str:
    """The method and route template, for a log line: never the raw path (its ids, and
    whatever else a caller put there)."""
    return f"{request.method} {route_template(request.scope)}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TremplinError)
    async def _tremplin(request: Request, exc: TremplinError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            request,
            status=422,
            type_=problem_type("validation-error"),
            title="Invalid request",
            detail="The request has invalid fields.",
            errors=_validation_errors(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return error_response(request, PayloadTooLarge(str(exc.detail)))
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not read the body (not UTF-8, nested too deep...): the payload
            # is invalid, as for any JSON syntax error.
            return error_response(request, unreadable_body())
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        phrase = HTTPStatus(exc.status_code).phrase
        slug = phrase.lower().replace(" ", "-").replace("'", "")
        return problem_response(
            request,
            status=exc.status_code,
            type_=problem_type(slug),
            title=phrase,
            detail=str(exc.detail) if exc.detail else phrase,
            headers=headers,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Services check what they can first; this is the last line for races.
        # The constraint name is safe to show, the row values are not.
        logger.info("integrity error on %s: %s", _route(request), type(exc.orig).__name__)
        return error_response(request, integrity_to_conflict(exc))

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return error_response(request, ConcurrentUpdate("The resource changed meanwhile; retry."))

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if is_serialization_failure(exc):
            return error_response(
                request, ConcurrentUpdate("A concurrent request won; retry the request.")
            )
        # The class and SQLSTATE only: the message may quote the row's values.
        logger.error(
            "database error on %s: %s %s",
            _route(request),
            type(exc.orig).__name__,
            getattr(exc.orig, "sqlstate", ""),
        )
        return error_response(request, _unavailable(request))

    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
        # asyncpg raises these unwrapped when the server refuses or drops connections,
        # or when a statement outlives its command timeout.
        logger.warning("database unreachable on %s: %s", _route(request), type(exc).__name__)
        return error_response(request, _unavailable(request))

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection stayed busy for DB_POOL_TIMEOUT_S: shed this request.
        logger.warning("database pool exhausted on %s", _route(request))
        return error_response(
            request, _unavailable(request, "Every database connection is busy; retry shortly.")
        )


def _unavailable(
    request: Request, detail: str = "The database could not answer."
) -> ServiceUnavailable:
    settings = getattr(request.app.state, "settings", None)
    return ServiceUnavailable(detail, retry_after_s=getattr(settings, "db_retry_after_s", 2))


def unreadable_body() -> ValidationFailed:
    return ValidationFailed(
        [field_error(["body"], "the body is not valid UTF-8 JSON", "json_invalid")],
        "The body could not be read as JSON.",
    )


def wrong_media_type() -> ValidationFailed:
    return ValidationFailed(
        [
            field_error(
                ["header", "content-type"], "send the body as application/json", "media_type"
            )
        ],
        "The body must be JSON, sent with Content-Type: application/json.",
    )


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: a path's routes may be several
    (GET and POST on a collection), while the router reports the first one's only."""
    path: str = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    methods: set[str] = set()
    for route in _routes(request.app.routes):
        regex = getattr(route, "path_regex", None)
        route_methods = getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    return ", ".join(sorted(methods))


def _routes(routes: Sequence[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def constraint_name(exc: IntegrityError) -> str | None:
    orig = exc.orig
    name = getattr(orig, "constraint_name", None)  # asyncpg
    if name:
        return str(name)
    cause = getattr(orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)
    if name:
        return str(name)
    message = str(orig)
    # SQLite names the columns, not the constraint: "UNIQUE constraint failed: t.c"
    if "UNIQUE constraint failed:" in message:
        return "unique:" + message.split("UNIQUE constraint failed:", 1)[1].strip()
    if "CHECK constraint failed:" in message:
        return message.split("CHECK constraint failed:", 1)[1].strip()
    if "FOREIGN KEY constraint failed" in message:
        return "foreign_key"
    return None


def integrity_to_conflict(exc: IntegrityError) -> Conflict:
    name = constraint_name(exc) or ""
    if name.startswith(("uq_", "unique:")):
        return DuplicateResource("A resource with the same unique fields already exists.")
    if name.startswith("fk_") or name == "foreign_key":
        return ResourceInUse("The change would break a reference between resources.")
    return Conflict("The change breaks a rule of the data model.", constraint=name or None)


def is_serialization_failure(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(
        getattr(exc.orig, "__cause__", None), "sqlstate", None
    )
    return sqlstate in {"40001", "40P01"}
