"""Idempotency-Key on POST: the first response is stored and replayed to retries.

A response marked Cache-Control: no-store (it holds a secret, like a new client's) is
not kept: a replay answers 409 with the created resource's Location instead.

The key is written in the same transaction as the resource it created, so a crash
cannot leave one without the other. On PostgreSQL a transaction-scoped advisory lock
on (caller, key) makes a concurrent retry answer 409 instead of writing twice; on
SQLite every transaction takes the write lock at BEGIN, so a concurrent retry waits
and then replays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Conflict, ValidationFailed, field_error
from app.models import IdempotencyKey
from app.models.base import utcnow

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("content-type", "location", "etag")


class IdempotencyInProgress(Conflict):
    slug, title = "idempotency-in-progress", "A request with this Idempotency-Key is running"


class ResponseNotReplayable(Conflict):
    slug, title = "idempotency-not-replayable", "The first response held a secret"


class IdempotencyKeyReused(ValidationFailed):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused with another request"


def _lock_id(actor_id: str, key: str) -> int:
    digest = hashlib.sha256(f"{actor_id}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _holds_secret(response: Response) -> bool:
    return "no-store" in response.headers.get("cache-control", "")


async def run_idempotent(
    request: Request,
    session: AsyncSession,
    actor_id: str,
    key: str,
    settings: Settings,
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Response:
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise ValidationFailed(
            [
                field_error(
                    ["header", IDEMPOTENCY_HEADER],
                    "1-255 printable ASCII characters",
                    "value_error",
                )
            ]
        )
    body = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    if session.get_bind().dialect.name == "postgresql":
        locked = await session.scalar(
            select(func.pg_try_advisory_xact_lock(_lock_id(actor_id, key)))
        )
        if not locked:
            raise IdempotencyInProgress("Wait for the first request to finish, then retry.")
    now = utcnow()
    stored = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.actor_id == actor_id, IdempotencyKey.key == key)
    )
    if stored is not None and stored.expires_at > now:
        if stored.fingerprint != fingerprint:
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
        if stored.response_body is None:
            raise ResponseNotReplayable(
                "The request succeeded, but its answer held a secret that is shown only once.",
                location=stored.response_headers.get("location"),
            )
        headers = dict(stored.response_headers)
        headers[REPLAYED_HEADER] = "true"
        return Response(stored.response_body, stored.response_status, headers=headers)
    if stored is not None:  # expired: the key may be used afresh
        await session.delete(stored)
        await session.flush()
    response = await handler(request)
    if 200 <= response.status_code < 300:
        session.add(
            IdempotencyKey(
                actor_id=actor_id,
                key=key,
                fingerprint=fingerprint,
                response_status=response.status_code,
                response_body=None if _holds_secret(response) else bytes(response.body).decode(),
                response_headers={
                    name: response.headers[name]
                    for name in _KEPT_HEADERS
                    if name in response.headers
                },
                expires_at=now + timedelta(seconds=settings.idempotency_ttl_s),
            )
        )
        await session.flush()
    return response
