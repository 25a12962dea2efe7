"""Helpers every resource service uses: lookups, pagination, flushing, preconditions."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Select,
    Uuid,
    any_,
    bindparam,
    column,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.geography import departement_of_commune, region_of_departement
from app.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
    constraint_name,
    field_error,
    integrity_to_conflict,
)
from app.models.base import Base, Entity
from app.schemas.common import FieldRuleError

E = TypeVar("E", bound=Entity)
B = TypeVar("B", bound=Base)


async def get_or_404(session: AsyncSession, model: type[E], id_: uuid.UUID) -> E:
    obj = await session.get(model, id_)
    if obj is None:
        raise NotFound(f"No {model.__tablename__[:-1]} with this id.")
    return obj


def for_update(stmt: Select[B]) -> Select[B]:
    """The rows locked for this transaction (PostgreSQL; SQLite serialises writers at
    BEGIN IMMEDIATE), and read afresh even if the session already holds them."""
    return stmt.with_for_update().execution_options(populate_existing=True)


# A function making a fresh conflict each time: an exception instance raised again
# would carry the traceback of its earlier raise.
ConflictFor = Callable[[], Conflict]


async def flush(session: AsyncSession, conflicts: Mapping[str, ConflictFor] | None = None) -> None:
    """Flush, turning a constraint violation into the domain conflict named for it."""
    try:
        await session.flush()
    except IntegrityError as exc:
        name = constraint_name(exc) or ""
        known = (conflicts or {}).get(name)
        raise (known() if known is not None else integrity_to_conflict(exc)) from None


# What each table holds, for a person reading why a record cannot be deleted.
_RECORDS = {"api_clients": "API clients", "webhook_subscriptions": "webhook subscriptions"}


async def referred_by(session: AsyncSession, row: Entity) -> list[str]:
    """The kinds of record (plural, readable) that refer to `row` by a foreign key, in
    schema order: what a deletion refused for `resource-in-use` should name."""
    target = sa_inspect(type(row)).local_table
    kinds: list[str] = []
    for table in Base.metadata.sorted_tables:
        columns = [fk.parent for fk in table.foreign_keys if fk.column.table is target]
        if not columns:
            continue
        first = select(literal(1)).select_from(table).where(or_(*(c == row.id for c in columns)))
        if await session.scalar(first.limit(1)) is not None:
            kinds.append(_RECORDS.get(table.name, table.name.replace("_", " ")))
    return kinds


async def find_or_create(
    session: AsyncSession,
    find: Callable[[], Awaitable[E | None]],
    create: Callable[[], Awaitable[E]],
    taken: type[Conflict],
) -> tuple[E, bool]:
    """The record `find` returns, or the one `create` makes in a savepoint (True: made
    here). If a concurrent request made it since the lookup, `create` fails with `taken`
    (on PostgreSQL the unique index waited for that commit) and its record is returned:
    a create-or-update by the partner's reference never fails for a race."""
    existing = await find()
    if existing is not None:
        return existing, False
    try:
        async with session.begin_nested():
            return await create(), True
    except taken:
        existing = await find()
        if existing is None:
            raise
        return existing, False


def check_version(current: int, expected: frozenset[int] | None) -> None:
    """`expected` comes from If-Match; None means the caller set no condition."""
    if expected is not None and current not in expected:
        raise PreconditionFailed(
            "The resource was modified since you read it; fetch it again.",
            current_version=current,
        )


def territory(commune_insee: str) -> dict[str, str]:
    departement = departement_of_commune(commune_insee)
    if departement is None:  # pragma: no cover - schemas validate the code first
        raise ValidationFailed([field_error(["body", "commune_insee"], "unknown", "value_error")])
    return {"departement": departement, "region": region_of_departement(departement)}


def cross_field(check: Callable[[], None]) -> None:
    """Run a cross-field rule on merged values; its failure is a 422 naming the field."""
    try:
        check()
    except FieldRuleError as exc:
        raise ValidationFailed(
            [field_error(["body", field], str(exc), "value_error") for field in exc.fields]
        ) from None


def apply_changes(obj: Entity, changes: Mapping[str, Any]) -> None:
    for name, value in changes.items():
        setattr(obj, name, value)


# Keyset pagination on the primary key. Ids are UUIDv7, so this is creation order:
# rows inserted while a client pages through land after its cursor or are skipped
# as a whole, and no existing row is ever seen twice or missed.


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None = None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError):
        raise ValidationFailed(
            [field_error(["query", "cursor"], "not a cursor from this API", "value_error")]
        ) from None


async def paginate(
    session: AsyncSession,
    model: type[B],
    stmt: Select[B],
    page: PageRequest,
    updated_since: datetime | None = None,
) -> tuple[Sequence[B], str | None]:
    id_column = sa_inspect(model).primary_key[0]
    if updated_since is not None:
        stmt = stmt.where(model.__table__.c.updated_at >= updated_since)
    if page.cursor:
        stmt = stmt.where(id_column > decode_cursor(page.cursor))
    stmt = stmt.order_by(id_column).limit(page.limit + 1)
    rows = (await session.scalars(stmt)).all()
    if len(rows) > page.limit:
        identity = sa_inspect(rows[page.limit - 1]).identity
        assert identity is not None
        last_id: uuid.UUID = identity[0]
        return rows[: page.limit], encode_cursor(last_id)
    return rows, None


# --- conditions whose parameter count never grows with the data ------------------------


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def one_of(
    session: AsyncSession, target: Any, values: Collection[uuid.UUID]
) -> ColumnElement[bool]:
    """`target` among `values`, as one parameter whatever their number: an array on
    PostgreSQL (asyncpg refuses more than 32,767 parameters), a JSON list on SQLite."""
    if is_postgres(session):
        array = bindparam(None, list(values), type_=ARRAY(Uuid()), unique=True)
        return target == any_(array)  # type: ignore[no-any-return]
    # SQLite stores a UUID as its 32 hex digits.
    listed: BindParameter[str] = bindparam(None, json.dumps([v.hex for v in values]), unique=True)
    return target.in_(select(column("value")).select_from(func.json_each(listed)))  # type: ignore[no-any-return]
