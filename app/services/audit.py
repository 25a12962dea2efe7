"""The audit journal: every read and write of a candidate's personal data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Select,
    Table,
    Uuid,
    bindparam,
    delete,
    insert,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import AuditAction, CandidateView
from app.domain.ids import uuid7
from app.models import AuditEvent
from app.models.base import utcnow
from app.services.auth import Actor
from app.services.common import PageRequest, paginate

_INSERT = insert(cast(Table, AuditEvent.__table__))
_INSERT_MANY = _INSERT.returning(AuditEvent.__table__.c.id)
# A UUID version 7 made by PostgreSQL, with the layout of app.domain.ids.
_PG_UUID7 = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing substring("
    "int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) "
    "from 1 for 6), 52, 1), 53, 1), 'hex')::uuid"
)
# Every row of one access differs only by its id and person: on PostgreSQL they go in as
# one statement. Measured on an assignment pairing 1,767 people: 170-230 ms as an
# executemany, a few ms this way; a national one pairs ten times as many. The ids are
# made by the database (UUID version 7, as app.domain.ids makes them) and the people
# travel as one string of bytes, 16 per person: encoding a parameter element by element
# held the event loop for tens of ms on a national assignment. The only text joined in
# is the constant above.
_PG_ROWS = text(
    "INSERT INTO audit_events (id, at, actor_kind, actor_id, actor_role, "  # noqa: S608
    "actor_structure_id, candidate_id, action, field_class, operation, request_id) "
    "SELECT " + _PG_UUID7 + ", "
    ":at, :actor_kind, :actor_id, :actor_role, :actor_structure_id, "
    "encode(substring(:people from n * 16 + 1 for 16), 'hex')::uuid, "
    ":action, :field_class, :operation, :request_id "
    "FROM generate_series(0, length(:people) / 16 - 1) AS n"
).bindparams(
    bindparam("at", type_=AuditEvent.__table__.c.at.type),
    bindparam("actor_structure_id", type_=Uuid()),
    bindparam("people", type_=LargeBinary()),
)
# What a journal row says of the access, beside the person and the view (`access_values`).
ACCESS_FIELDS = ("at", "actor_kind", "actor_id", "actor_role", "actor_structure_id", "operation",
                 "request_id")  # fmt: skip


def access_values(actor: Actor) -> dict[str, Any]:
    """What every journal row of this access says (the parameters of `journaled`)."""
    return {
        "at": utcnow(),
        "actor_kind": actor.kind.value,
        "actor_id": actor.id,
        "actor_role": actor.role.value,
        "actor_structure_id": actor.structure_id,
        "operation": actor.operation,
        "request_id": actor.request_id,
    }


# One journal row, every value given (SQLite's journaled read, `candidates.get`).
ROW_FIELDS = ("id", *ACCESS_FIELDS, "candidate_id", "action", "field_class")
ONE_ROW = insert(cast(Table, AuditEvent.__table__)).values(
    {name: bindparam(name, type_=AuditEvent.__table__.c[name].type) for name in ROW_FIELDS}
)


def row_values(
    access: Mapping[str, Any], candidate_id: uuid.UUID, action: AuditAction, view: CandidateView
) -> dict[str, Any]:
    """The values of `ONE_ROW`: the access (`access_values`), the person and the view."""
    return {**access, "id": uuid7(), "candidate_id": candidate_id, "action": action,
            "field_class": view}  # fmt: skip


def journaled(
    read: Select[Any], action: AuditAction, shown: ColumnElement[int] | None = None
) -> Select[Any]:
    """PostgreSQL: `read` (its rows carry the person's `id` and the caller's view of
    them as `field_class`) and one journal row per person it returns, written by the
    same statement: atomic on its own, one round trip. Its parameters: `access_values`.

    `shown`: a page reads one row more than it shows, to know whether another page
    follows; only the first `shown` rows by id are journaled, and rows come by id."""
    table = cast(Table, AuditEvent.__table__)
    found = read.cte("found")
    rows = select(
        literal_column(_PG_UUID7, table.c.id.type),
        *(bindparam(name, type_=table.c[name].type) for name in ACCESS_FIELDS),
        found.c.id,
        literal(action, table.c.action.type),
        found.c.field_class,
    )
    if shown is not None:
        rows = rows.order_by(found.c.id).limit(shown)
    journal = insert(table).from_select(list(ROW_FIELDS), rows).cte("journal")
    answer = select(found).add_cte(journal)
    return answer if shown is None else answer.order_by(found.c.id)


_BYTES_ON_THE_LOOP = 1000


def _as_bytes(people: list[uuid.UUID]) -> bytes:
    return b"".join(person.bytes for person in people)


async def record(
    session: AsyncSession,
    actor: Actor,
    candidate_ids: Iterable[uuid.UUID],
    action: AuditAction,
    view: CandidateView,
) -> None:
    """Append one row per candidate, in the transaction of the access itself."""
    people = list(candidate_ids)
    if not people:
        return
    common = {**access_values(actor), "action": action.value, "field_class": view.value}
    # Core on the session's connection: plain INSERTs, no ORM bulk machinery.
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # Tens of thousands of people (an assignment's journal): converted off the loop.
        raw = (
            await asyncio.to_thread(_as_bytes, people)
            if len(people) > _BYTES_ON_THE_LOOP
            else _as_bytes(people)
        )
        await connection.execute(_PG_ROWS, {**common, "people": raw})
        return
    rows = [{**common, "candidate_id": person} for person in people]
    if len(rows) == 1:
        await connection.execute(_INSERT, rows[0])
    else:
        # RETURNING makes SQLAlchemy send one multi-row INSERT ("insertmanyvalues").
        await connection.execute(_INSERT_MANY, rows)


async def record_views(
    session: AsyncSession,
    actor: Actor,
    action: AuditAction,
    views: Mapping[uuid.UUID, CandidateView],
) -> None:
    """One row per person, each with the view the caller had of them."""
    for view in sorted(set(views.values())):
        await record(session, actor, [c for c, v in views.items() if v is view], action, view)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    candidate_id: uuid.UUID | None = None
    actor_id: str | None = None
    action: AuditAction | None = None
    operation: str | None = None
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
    if filters.operation is not None:
        stmt = stmt.where(AuditEvent.operation == filters.operation)
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
