from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, fields, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import db
from app.domain.enums import AuditAction, CandidateView, Phase, Role, StructureKind
from app.errors import DuplicateResource, Forbidden, NotFound
from app.models import Candidate
from app.models.base import utcnow
from app.schemas.candidates import CandidateCreate, CandidateUpdate
from app.schemas.common import check_coordinates
from app.schemas.events import CandidateCreated, CandidateUpdated
from app.services import audit, dates, events, pathway, structures, tenancy, visibility
from app.services.auth import Actor
from app.services.common import (
    PageRequest,
    apply_changes,
    check_version,
    cross_field,
    decode_cursor,
    encode_cursor,
    find_or_create,
    flush,
    is_postgres,
    territory,
)

# A candidate as read by get and list: its columns, by name (`row.first_name`, or
# `row["first_name"]` when read on the driver's connection).
CandidateRow = Row[Any] | dict[str, Any]


@dataclass(frozen=True, slots=True)
class CandidateFilters:
    structure_id: uuid.UUID | None = None
    phase: Phase | None = None
    departement: str | None = None
    updated_since: datetime | None = None
    external_ref: str | None = None


_JSON_FIELDS = {"competencies", "certifications", "preferred_contract_types"}
# Fields of a request that are not columns of the candidate.
_NOT_COLUMNS = {"entered_at"}


def _column_values(
    data: CandidateCreate | CandidateUpdate, *, exclude_unset: bool
) -> dict[str, Any]:
    """Plain fields as Python values; JSON columns in their JSON form (dates as text)."""
    values = data.model_dump(exclude_unset=exclude_unset, exclude=_JSON_FIELDS | _NOT_COLUMNS)
    # A JSON column is written whole: `exclude_unset` would also drop the defaults inside
    # it (a certification without its `date`), and the stored value would not read back.
    given = data.model_fields_set if exclude_unset else set(type(data).model_fields)
    values.update(data.model_dump(mode="json", include=_JSON_FIELDS & given))
    return values


visible_to = tenancy.candidates


async def _view(session: AsyncSession, actor: Actor, candidate_id: uuid.UUID) -> CandidateView:
    return (await visibility.candidate_views(session, actor, [candidate_id]))[candidate_id]


class ExternalRefTaken(DuplicateResource):
    slug, title = "external-ref-taken", "This external reference is already used"


def _ref_taken() -> ExternalRefTaken:
    return ExternalRefTaken("The structure already has a candidate with this external_ref.")


_CONFLICTS = {
    "uq_candidates_structure_id_external_ref": _ref_taken,
    "unique:candidates.structure_id, candidates.external_ref": _ref_taken,
}


async def _check_references(
    session: AsyncSession, structure_id: uuid.UUID | None, referrer_id: uuid.UUID | None
) -> None:
    if structure_id is not None:
        await structures.require_kind(
            session, structure_id, StructureKind.INSERTION, "structure_id"
        )
    if referrer_id is not None:
        await structures.require_kind(session, referrer_id, StructureKind.PARTNER, "referrer_id")


async def create(
    session: AsyncSession, actor: Actor, data: CandidateCreate
) -> tuple[Candidate, CandidateView]:
    if actor.role is Role.INSERTION and data.structure_id != actor.structure_id:
        raise Forbidden("Insertion staff register candidates for their own structure only.")
    if actor.role is Role.PRESCRIBER:
        if data.referrer_id not in (None, actor.structure_id):
            raise Forbidden("A prescriber refers people in its own name only.")
        if data.external_ref is not None:
            raise Forbidden("external_ref is the accompanying structure's own reference.")
        data = data.model_copy(update={"referrer_id": actor.structure_id})
    if data.entered_at is not None:
        dates.may_date(actor.role in (Role.ADMIN, Role.INSERTION))
        dates.not_in_future(data.entered_at, ["body", "entered_at"])
        dates.old_enough_at_entry(data.birth_date, data.entered_at, ["body", "entered_at"])
    await _check_references(session, data.structure_id, data.referrer_id)
    now = utcnow()
    candidate = Candidate(
        **_column_values(data, exclude_unset=False),
        **territory(data.commune_insee),
        phase=Phase.RECRUITMENT,
        phase_changed_at=data.entered_at or now,
        entered_at=data.entered_at or now,
        consent_given_at=now if data.consent_to_share else None,
    )
    session.add(candidate)
    await flush(session, _CONFLICTS)
    await pathway.record_entry(session, candidate, actor, data.entered_at or now)
    events.emit(
        session,
        CandidateCreated(
            candidate_id=candidate.id, structure_id=candidate.structure_id, phase=candidate.phase
        ),
        events.candidate_audience(candidate),
    )
    view = await _view(session, actor, candidate.id)
    await audit.record(session, actor, [candidate.id], AuditAction.CREATE, view)
    return candidate, view


async def _visible(session: AsyncSession, actor: Actor, candidate_id: uuid.UUID) -> Candidate:
    candidate = await session.scalar(
        select(Candidate).where(Candidate.id == candidate_id, visible_to(actor))
    )
    if candidate is None:
        raise NotFound("No candidate with this id.")
    return candidate


# Reads select the columns (Core, on the session's connection), not ORM entities:
# building and tracking entities is most of an ORM read's cost, and nothing here
# changes them.
_READ = select(Candidate.__table__)


@lru_cache(maxsize=1024)
def _read_one(caller: Actor) -> Select[Any]:
    """The read of one candidate as this caller may see it, built once per caller (the
    id is a parameter): building the statement costs more than running it. The caller
    comes without its request id, so only what decides its tenancy is in the key.
    Tenancy conditions are SQL evaluated by the database, a function of the caller
    alone: one that bound the clock or a value read from the database when built would
    be frozen here."""
    return _READ.where(Candidate.id == bindparam("candidate_id"), visible_to(caller))


@lru_cache(maxsize=1024)
def _read_one_viewed(caller: Actor) -> Select[Any]:
    """The read of one candidate and the caller's view of them (`field_class`)."""
    return _read_one(caller).add_columns(visibility.view_column(caller).label("field_class"))


@lru_cache(maxsize=1024)
def _read_one_journaled(caller: Actor) -> Select[Any]:
    """PostgreSQL: the read of one candidate, the caller's view of them and the journal
    row of the access, as one statement (see `_read_one` for the cache's key)."""
    return audit.journaled(_read_one_viewed(caller), AuditAction.READ)


@lru_cache(maxsize=1024)
def _read_one_alone(caller: Actor, dialect: Dialect) -> db.DriverStatement:
    """The read as it runs alone on the driver's connection: on PostgreSQL with its
    journal row (one statement); on SQLite the read, the journal row following it."""
    if dialect.name == "postgresql":
        given = ("candidate_id", *audit.ACCESS_FIELDS)
        return db.DriverStatement(_read_one_journaled(caller), dialect, given)
    return db.DriverStatement(_read_one_viewed(caller), dialect, ("candidate_id",))


@lru_cache(maxsize=8)
def _journal_row(dialect: Dialect) -> db.DriverStatement:
    return db.DriverStatement(audit.ONE_ROW, dialect, audit.ROW_FIELDS)


async def get(
    session: AsyncSession, actor: Actor, candidate_id: uuid.UUID
) -> tuple[CandidateRow, CandidateView]:
    caller = replace(actor, request_id=None)
    engine = session.bind
    if not session.in_transaction() and isinstance(engine, AsyncEngine):
        # No transaction yet (the caller's client row was not read again for its
        # token): the read and its journal row run alone, in one round trip on
        # PostgreSQL (one statement, atomic by itself, no BEGIN or COMMIT) and one hop to
        # the driver's thread on SQLite (one transaction).
        found = await _read_alone(engine, caller, actor, candidate_id)
        if found is None:
            raise NotFound("No candidate with this id.")
        return found, CandidateView(found["field_class"])
    # Inside the request's transaction: the same read, journaled by the same statement
    # on PostgreSQL, by the row that follows it on SQLite.
    connection = await session.connection()
    postgres = is_postgres(session)
    read = _read_one_journaled(caller) if postgres else _read_one_viewed(caller)
    values = {"candidate_id": candidate_id, **(audit.access_values(actor) if postgres else {})}
    row = (await connection.execute(read, values)).first()
    if row is None:
        raise NotFound("No candidate with this id.")
    if not postgres:
        await audit.record(session, actor, [row.id], AuditAction.READ, row.field_class)
    return row, row.field_class


async def _read_alone(
    engine: AsyncEngine, caller: Actor, actor: Actor, candidate_id: uuid.UUID
) -> dict[str, Any] | None:
    read = _read_one_alone(caller, engine.dialect)
    access = audit.access_values(actor)
    if engine.dialect.name == "postgresql":
        record = await db.fetch_one_alone(engine, read, {"candidate_id": candidate_id, **access})
        return None if record is None else dict(record.items())
    journal = _journal_row(engine.dialect)
    arguments = read.arguments({"candidate_id": candidate_id})

    def read_and_journal(raw: sqlite3.Connection) -> dict[str, Any] | None:
        row = raw.execute(read.sql, arguments).fetchone()
        if row is None:
            return None
        found = read.row(row)
        entry = audit.row_values(access, found["id"], AuditAction.READ, found["field_class"])
        raw.execute(journal.sql, journal.arguments(entry))
        return found

    return await db.run_alone_sqlite(engine, read_and_journal)


async def list_(
    session: AsyncSession, actor: Actor, filters: CandidateFilters, page: PageRequest
) -> tuple[list[tuple[CandidateRow, CandidateView]], str | None]:
    visibility.check_filters(
        actor,
        {
            "structure_id": filters.structure_id,
            "phase": filters.phase,
            "departement": filters.departement,
            "external_ref": filters.external_ref,
        },
    )
    values: dict[str, Any] = {
        name: value for name in _LIST_FILTERS if (value := getattr(filters, name)) is not None
    }
    if page.cursor:
        values["after"] = decode_cursor(page.cursor)
    if visibility.base_view(actor) is None:
        return [], None  # a role that sees nobody (tenancy would find no one)
    caller = replace(actor, request_id=None)
    given = frozenset(values)
    # One row more than the page shows: whether another page follows.
    values["read_limit"] = page.limit + 1
    rows: list[dict[str, Any]]
    if is_postgres(session):
        # The page and the journal rows of the people shown, as one statement (`get`'s
        # way): one round trip, alone when the request has no transaction open yet.
        values.update(limit=page.limit, **audit.access_values(actor))
        engine = session.bind
        if not session.in_transaction() and isinstance(engine, AsyncEngine):
            statement = _list_alone(caller, given, engine.dialect)
            records = await db.fetch_all_alone(engine, statement, values)
            rows = [dict(r.items()) for r in records]
        else:
            connection = await session.connection()
            result = await connection.execute(_list_journaled(caller, given), values)
            rows = [r._asdict() for r in result]
        shown = rows[: page.limit]
    else:
        connection = await session.connection()
        result = await connection.execute(_list_page(caller, given), values)
        rows = [r._asdict() for r in result]
        shown = rows[: page.limit]
        views = {r["id"]: CandidateView(r["field_class"]) for r in shown}
        await audit.record_views(session, actor, AuditAction.LIST, views)
    next_cursor = encode_cursor(shown[-1]["id"]) if len(rows) > page.limit else None
    return [(r, CandidateView(r["field_class"])) for r in shown], next_cursor


# The filters a list may carry, each compared with a parameter of its own name.
_LIST_FILTERS = tuple(f.name for f in fields(CandidateFilters))


@lru_cache(maxsize=1024)
def _list_page(caller: Actor, given: frozenset[str]) -> Select[Any]:
    """A page of the candidates this caller may see, by id, with the caller's view of
    each (`field_class`); built once per caller and set of filters given (`given`, and
    `after` for a cursor), their values and the page's size (`read_limit`) being
    parameters. See `_read_one` for the cache's key."""
    conditions = {
        "structure_id": lambda: Candidate.structure_id == bindparam("structure_id"),
        "phase": lambda: Candidate.phase == bindparam("phase"),
        "departement": lambda: Candidate.departement == bindparam("departement"),
        "external_ref": lambda: Candidate.external_ref == bindparam("external_ref"),
        # Each person's stamp in the caller's view: a hidden change brings no one back.
        "updated_since": lambda: visibility.view_updated_at(caller) >= bindparam("updated_since"),
        "after": lambda: Candidate.id > bindparam("after"),
    }
    return (
        _READ.where(visible_to(caller), *(conditions[name]() for name in sorted(given)))
        .add_columns(visibility.view_column(caller).label("field_class"))
        .order_by(Candidate.id)
        .limit(bindparam("read_limit"))
    )


@lru_cache(maxsize=1024)
def _list_journaled(caller: Actor, given: frozenset[str]) -> Select[Any]:
    """PostgreSQL: `_list_page` and the journal rows of the first `limit` people."""
    return audit.journaled(_list_page(caller, given), AuditAction.LIST, shown=bindparam("limit"))


@lru_cache(maxsize=1024)
def _list_alone(caller: Actor, given: frozenset[str], dialect: Dialect) -> db.DriverStatement:
    names = (*given, "read_limit", "limit", *audit.ACCESS_FIELDS)
    return db.DriverStatement(_list_journaled(caller, given), dialect, names)


async def update(
    session: AsyncSession,
    actor: Actor,
    candidate_id: uuid.UUID,
    data: CandidateUpdate,
    expected_versions: frozenset[int] | None,
) -> Candidate:
    candidate = await _visible(session, actor, candidate_id)
    check_version(candidate.version, expected_versions)
    changes = _column_values(data, exclude_unset=True)
    moved = changes.get("structure_id", candidate.structure_id) != candidate.structure_id
    if moved and actor.role is not Role.ADMIN:
        raise Forbidden("Only a national administrator moves a candidate to another structure.")
    # The referrer decides which prescriber reads the person: only an admin changes it.
    rereferred = changes.get("referrer_id", candidate.referrer_id) != candidate.referrer_id
    if rereferred and actor.role is not Role.ADMIN:
        raise Forbidden("Only a national administrator changes who referred a candidate.")
    await _check_references(session, changes.get("structure_id"), changes.get("referrer_id"))
    cross_field(
        lambda: check_coordinates(
            changes.get("latitude", candidate.latitude),
            changes.get("longitude", candidate.longitude),
        )
    )
    if "birth_date" in changes:
        dates.old_enough_at_entry(
            changes["birth_date"], candidate.entered_at, ["body", "birth_date"]
        )
    if "commune_insee" in changes:
        changes.update(territory(changes["commune_insee"]))
    consent = changes.get("consent_to_share")
    if consent is not None and consent != candidate.consent_to_share:
        changes["consent_given_at"] = utcnow() if consent else None
    before = candidate.version
    apply_changes(candidate, changes)
    await flush(session, _CONFLICTS)
    if candidate.version != before:
        events.emit(
            session,
            CandidateUpdated(
                candidate_id=candidate.id,
                structure_id=candidate.structure_id,
                version=candidate.version,
            ),
            events.candidate_audience(candidate),
        )
    view = await _view(session, actor, candidate.id)
    await audit.record(session, actor, [candidate.id], AuditAction.UPDATE, view)
    return candidate


async def upsert(
    session: AsyncSession, actor: Actor, data: CandidateCreate
) -> tuple[Candidate, str]:
    """Create the candidate, or update the structure's one with this external_ref (the
    fields given only); every rule of create and update applies. Returns the record and
    `created`, `updated` or `unchanged`."""

    async def by_ref() -> Candidate | None:
        return await session.scalar(
            select(Candidate).where(
                Candidate.structure_id == data.structure_id,
                Candidate.external_ref == data.external_ref,
                visible_to(actor),
            )
        )

    async def made() -> Candidate:
        candidate, _view = await create(session, actor, data)
        return candidate

    existing, created = await find_or_create(session, by_ref, made, ExternalRefTaken)
    if created:
        return existing, "created"
    before = existing.version
    # When the path began is part of its history, set once at creation: not an update.
    changes = CandidateUpdate.model_validate(
        data.model_dump(exclude_unset=True, exclude={"entered_at"})
    )
    candidate = await update(session, actor, existing.id, changes, None)
    return candidate, "unchanged" if candidate.version == before else "updated"
