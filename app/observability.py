"""One middleware per request: its id, its log line, its metrics, the security headers
every answer carries, and a 500 if all fails. One layer rather than one per concern:
each ASGI layer costs every request a call and a wrapped `send` (measured: a separate
layer for the headers was 5% of a read's CPU).

The log line names the route template, never the raw path or the query string, and the
caller by id and role only: nothing a person could be recognised by.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import TremplinError, problem_response
from app.logs import REQUEST_ID
from app.metrics import IN_FLIGHT, observe_request, sample_pool
from app.routing import route_template

logger = logging.getLogger("tremplin")
access_logger = logging.getLogger("tremplin.access")

# Probes and scrapes are counted but logged at DEBUG: they would drown the rest.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# A client that went away before an answer (nginx's convention).
CLIENT_CLOSED = 499


def _caller(scope: Scope) -> dict[str, Any]:
    actor = scope.get("state", {}).get("actor")
    if actor is None:
        return {"caller_kind": None, "caller_id": None, "caller_role": None}
    return {
        "caller_kind": actor.kind.value,
        "caller_id": actor.id,
        "caller_role": actor.role.value,
    }


# Conservative headers for an API that serves personal data.
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_NOTHING_ALLOWED = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_NO_STORE = (b"cache-control", b"no-store")
_HSTS = (b"strict-transport-security", b"max-age=31536000")


def _add_security_headers(headers: list[tuple[bytes, bytes]], is_api: bool, hsts: bool) -> None:
    """Every answer gets a Content-Security-Policy that allows nothing, unless it brings
    its own (the interactive docs, app/docs.py, allow their own assets); API answers are
    not stored by caches unless they say otherwise."""
    headers.extend(_SECURITY_HEADERS)
    names = {name for name, _ in headers}
    if b"content-security-policy" not in names:
        headers.append(_NOTHING_ALLOWED)
    if is_api and b"cache-control" not in names:
        headers.append(_NO_STORE)
    if hsts:
        headers.append(_HSTS)


class RequestId:
    """Echoes X-Request-ID, or makes one, so a partner can quote it to support; adds the
    security headers (HSTS when `hsts`); logs and measures each request."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id" and 0 < len(value) <= 128 and value.isascii():
                text = value.decode()
                if text.isprintable():
                    request_id = text
        # An id needs to be unique, not secret: no system call for random bytes here.
        request_id = request_id or f"{random.getrandbits(128):032x}"
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        began = time.perf_counter()
        status = 0
        IN_FLIGHT.inc()

        is_api = scope.get("path", "").startswith("/v1/")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
                _add_security_headers(headers, is_api, self.hsts)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Render unexpected errors here, inside this middleware, so that even a 500
            # carries the id a partner quotes to support. The traceback stays in one record.
            logger.exception("unhandled error")
            if status:
                raise
            exc = TremplinError("An unexpected error occurred.")
            response = problem_response(
                Request(scope), status=500, type_=exc.type, title=exc.title, detail=exc.detail
            )
            await response(scope, receive, send_with_id)
        finally:
            IN_FLIGHT.dec()
            self._record(scope, status or CLIENT_CLOSED, time.perf_counter() - began)
            REQUEST_ID.reset(token)

    @staticmethod
    def _record(scope: Scope, status: int, duration_s: float) -> None:
        route = route_template(scope)
        method = scope.get("method", "")
        observe_request(method, route, status, duration_s)
        app = scope.get("app")
        if app is not None:
            sample_pool(getattr(app.state, "engine", None))
        level = logging.DEBUG if scope.get("path") in QUIET_PATHS else logging.INFO
        if status >= 500:
            level = logging.ERROR
        access_logger.log(
            level,
            "request",
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration_s * 1000, 2),
                **_caller(scope),
            },
        )
