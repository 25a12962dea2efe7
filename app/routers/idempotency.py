"""Idempotency-Key on POST: the first response is stored and replayed to retries.

What is kept depends on the answer. An answer naming its resource (Location or
Content-Location) keeps no body: a replay reads the resource again, as the caller, so
tenancy still applies, the read is audited, and a resource since erased or moved away
answers 404 instead of being replayed from a copy (a problem whose `instance` is the
path posted to, as for any answer to that request). An answer holding a secret
(Cache-Control: no-store, e.g. a new client's) is not replayable at all: 409. Other
answers are kept whole. Only successful answers are kept: a request that failed wrote
nothing, so its retry simply runs again.

Keys belong to a caller, named by kind and id (an API client and an OIDC user whose
`sub` equals the client's id never share one). The key is written in the same
transaction as the resource it created, so a crash cannot leave one without the other.
A concurrent retry answers 409 on PostgreSQL, and waits then replays on SQLite
(app/services/idempotency.py, where the answers are kept).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Conflict, ValidationFailed, field_error, problem_response
from app.services import idempotency as store
from app.services.auth import Actor

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# 1-255 printable ASCII characters; no space at either end (HTTP would trim it).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_KEPT_HEADERS = ("content-type", "location", "content-location", "etag", "cache-control")


class IdempotencyInProgress(Conflict):
    slug, title = "idempotency-in-progress", "A request with this Idempotency-Key is running"


class ResponseNotReplayable(Conflict):
    slug, title = "idempotency-not-replayable", "The first response held a secret"


class IdempotencyKeyReused(ValidationFailed):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused with another request"


def _holds_secret(headers: dict[str, str]) -> bool:
    return "no-store" in headers.get("cache-control", "")


def _names_resource(headers: dict[str, str]) -> bool:
    return _holds_secret(headers) or "location" in headers or "content-location" in headers


async def _read_again(request: Request, status: int, kept: dict[str, str]) -> Response:
    """GET the resource the first answer named, through the whole app, as this caller."""
    path = kept.get("location") or kept["content-location"]
    headers = [(b"host", b"tremplin.internal")]
    for name in ("authorization", "x-request-id"):
        if name in request.headers:
            headers.append((name.encode(), request.headers[name].encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
    }
    answer: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = message.get("headers", [])
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await request.app(scope, receive, send)
    fetched = {k.decode().lower(): v.decode() for k, v in answer["headers"]}
    out = {REPLAYED_HEADER: "true", "content-type": fetched.get("content-type", "")}
    if answer["status"] != 200:
        return Response(
            _as_answer_to(request, bytes(answer["body"])), answer["status"], headers=out
        )
    for name in ("location", "content-location"):
        if name in kept:
            out[name] = kept[name]
    if "etag" in fetched:
        out["etag"] = fetched["etag"]
    return Response(bytes(answer["body"]), status, headers=out)


def _as_answer_to(request: Request, body: bytes) -> bytes:
    """A problem met while reading the resource again, as an answer to the request
    replayed: its `instance` is the path posted to, as on every answer to that request,
    not the resource's path the inner read went to."""
    try:
        problem = json.loads(body)
    except ValueError:
        return body
    if not isinstance(problem, dict) or not problem.keys() >= _PROBLEM_FIELDS:
        return body
    fields = {k: v for k, v in problem.items() if k not in _PROBLEM_FIELDS}
    # Rendered as every problem is, its `instance` from this request.
    return bytes(
        problem_response(
            request,
            status=problem["status"],
            type_=problem["type"],
            title=problem["title"],
            detail=problem["detail"],
            **fields,
        ).body
    )


_PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail", "instance"})


async def _fingerprints(request: Request) -> tuple[str, str]:
    """What makes two requests the same: method, path, query, precondition and body; a
    JSON body by its content (the same members in another order, or spaced otherwise,
    are the same request). First the fingerprint kept for a new key, then the one of the
    body's exact bytes, which keys kept before content counted were made of."""
    body = await request.body()
    parsed = getattr(request, "_json", None)  # set by the strict JSON read (deps.py)
    content = body
    if parsed is not None:
        content = json.dumps(
            parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    def digest(payload: bytes) -> str:
        head = (
            request.method.encode(),
            request.url.path.encode(),
            request.url.query.encode(),
            request.headers.get("if-match", "").encode(),
        )
        return hashlib.sha256(b"\n".join((*head, payload))).hexdigest()

    return digest(content), digest(body)


async def run_idempotent(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    key: str,
    settings: Settings,
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Response:
    if not _KEY.match(key) or len(request.headers.getlist(IDEMPOTENCY_HEADER)) > 1:
        raise ValidationFailed(
            [
                field_error(
                    ["header", IDEMPOTENCY_HEADER],
                    "one key of 1-255 printable ASCII characters",
                    "value_error",
                )
            ]
        )
    fingerprints = await _fingerprints(request)
    fingerprint = fingerprints[0]
    if not await store.claim(session, actor, key):
        raise IdempotencyInProgress("Wait for the first request to finish, then retry.")
    stored = await store.live(session, actor, key)
    if stored is not None:
        if stored.fingerprint not in fingerprints:
            raise IdempotencyKeyReused(
                [
                    field_error(
                        ["header", IDEMPOTENCY_HEADER],
                        "already used for another request",
                        "idempotency_key_reused",
                    )
                ],
                "This Idempotency-Key was used with a different request.",
            )
        headers = dict(stored.response_headers)
        if _holds_secret(headers):
            raise ResponseNotReplayable(
                "The request succeeded, but its answer held a secret that is shown only once.",
                location=headers.get("location"),
            )
        if stored.response_body is None:
            status = stored.response_status
            # Release this transaction's locks first: the read runs in its own. (A
            # rollback expires loaded rows, hence the status read above.)
            await session.rollback()
            return await _read_again(request, status, headers)
        headers[REPLAYED_HEADER] = "true"
        return Response(stored.response_body, stored.response_status, headers=headers)
    response = await handler(request)
    if 200 <= response.status_code < 300:
        kept = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
        await store.keep(
            session,
            actor,
            key,
            fingerprint=fingerprint,
            status=response.status_code,
            body=None if _names_resource(kept) else bytes(response.body).decode(),
            headers=kept,
            ttl_s=settings.idempotency_ttl_s,
        )
    return response
