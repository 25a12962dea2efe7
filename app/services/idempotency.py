"""Where Idempotency-Key answers are kept: one row per caller and key, written in the
transaction of the request it answers (the HTTP side, what to keep and how to replay it,
is app/routers/idempotency.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import IdempotencyKey
from app.models.base import utcnow
from app.services.auth import Actor


def _lock_id(caller: str, key: str) -> int:
    digest = hashlib.sha256(f"{caller}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def claim(session: AsyncSession, actor: Actor, key: str) -> bool:
    """Whether this transaction holds the key: on PostgreSQL a transaction-scoped
    advisory lock, so a concurrent retry is refused instead of writing twice; SQLite's
    writers are already one at a time (BEGIN IMMEDIATE), so a retry waits, then replays."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    locked = await session.scalar(
        select(func.pg_try_advisory_xact_lock(_lock_id(actor.id_key, key)))
    )
    return bool(locked)


async def live(session: AsyncSession, actor: Actor, key: str) -> IdempotencyKey | None:
    """The answer kept for this caller's key, unless it has expired (an expired one is
    deleted: the key may be used afresh)."""
    stored = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.actor_kind == actor.kind,
            IdempotencyKey.actor_id == actor.id,
            IdempotencyKey.key == key,
        )
    )
    if stored is None or stored.expires_at > utcnow():
        return stored
    await session.delete(stored)
    await session.flush()
    return None


async def keep(
    session: AsyncSession,
    actor: Actor,
    key: str,
    *,
    fingerprint: str,
    status: int,
    body: str | None,
    headers: Mapping[str, str],
    ttl_s: int,
) -> None:
    session.add(
        IdempotencyKey(
            actor_kind=actor.kind,
            actor_id=actor.id,
            key=key,
            fingerprint=fingerprint,
            response_status=status,
            response_body=body,
            response_headers=dict(headers),
            expires_at=utcnow() + timedelta(seconds=ttl_s),
        )
    )
    await session.flush()
