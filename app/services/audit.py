"""The audit journal: every read and write of a candidate's personal data."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import AuditAction, CandidateView
from app.models import AuditEvent
from app.models.base import utcnow
from app.services.auth import Actor
from app.services.common import PageRequest, paginate

_INSERT = insert(cast(Table, AuditEvent.__table__))
_INSERT_MANY = _INSERT.returning(AuditEvent.__table__.c.id)


async def record(
    session: AsyncSession,
    actor: Actor,
    candidate_ids: Iterable[uuid.UUID],
    action: AuditAction,
    view: CandidateView,
) -> None:
    """Append one row per candidate, in the transaction of the access itself."""
    at = utcnow()
    rows = [
        {
            "at": at,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_role": actor.role,
            "actor_structure_id": actor.structure_id,
            "candidate_id": candidate_id,
            "action": action,
            "field_class": view,
            "request_id": actor.request_id,
        }
        for candidate_id in candidate_ids
    ]
    if rows:
        # Core on the session's connection: a plain INSERT, no ORM bulk machinery.
        connection = await session.connection()
        if len(rows) == 1:
            await connection.execute(_INSERT, rows[0])
        else:
            # RETURNING makes SQLAlchemy send one multi-row INSERT ("insertmanyvalues")
            # instead of an executemany, which asyncpg runs row by row.
            await connection.execute(_INSERT_MANY, rows)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    candidate_id: uuid.UUID | None = None
    actor_id: str | None = None
    action: AuditAction | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_(
    session: AsyncSession, filters: AuditFilters, page: PageRequest
) -> tuple[Sequence[AuditEvent], str | None]:
    stmt = select(AuditEvent)
    if filters.candidate_id is not None:
        stmt = stmt.where(AuditEvent.candidate_id == filters.candidate_id)
    if filters.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == filters.actor_id)
    if filters.action is not None:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.since is not None:
        stmt = stmt.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEvent.at < filters.until)
    return await paginate(session, AuditEvent, stmt, page)


async def purge(session: AsyncSession, retention_days: int) -> int:
    """Delete entries older than the retention period; the only deletion there is."""
    cutoff = utcnow() - timedelta(days=retention_days)
    if session.get_bind().dialect.name == "postgresql":
        # The append-only trigger lets DELETE through only inside this transaction.
        await session.execute(text("SET LOCAL tremplin.audit_purge = 'on'"))
    result = await session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
