from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import AuditAction, CandidateView, Phase, Role, StructureKind
from app.errors import Forbidden, NotFound, ValidationFailed, field_error
from app.models import Candidate
from app.models.base import utcnow
from app.schemas.candidates import CandidateCreate, CandidateUpdate
from app.schemas.common import check_coordinates
from app.services import audit, placements, structures, tenancy
from app.services.auth import Actor
from app.services.common import (
    PageRequest,
    apply_changes,
    check_version,
    cross_field,
    flush,
    paginate_rows,
    territory,
)

# A candidate as read by get and list: its columns, by name (`row.first_name`).
CandidateRow = Row[Any]


@dataclass(frozen=True, slots=True)
class CandidateFilters:
    structure_id: uuid.UUID | None = None
    phase: Phase | None = None
    departement: str | None = None
    updated_since: datetime | None = None


_JSON_FIELDS = {"competencies", "certifications", "preferred_contract_types"}


def _column_values(
    data: CandidateCreate | CandidateUpdate, *, exclude_unset: bool
) -> dict[str, Any]:
    """Plain fields as Python values; JSON columns in their JSON form (dates as text)."""
    values = data.model_dump(exclude_unset=exclude_unset, exclude=_JSON_FIELDS)
    values.update(data.model_dump(mode="json", exclude_unset=exclude_unset, include=_JSON_FIELDS))
    return values


visible_to = tenancy.candidates


async def _views(
    session: AsyncSession, actor: Actor, candidates: Sequence[Candidate | CandidateRow]
) -> dict[uuid.UUID, CandidateView]:
    if actor.role is Role.PRESCRIBER:
        return {c.id: CandidateView.REFERRAL for c in candidates}
    if actor.role is not Role.LANDLORD:
        return {c.id: CandidateView.FULL for c in candidates}
    assert actor.structure_id is not None
    accepted = await placements.accepted_by_landlord(
        session, [c.id for c in candidates], actor.structure_id
    )
    return {
        c.id: CandidateView.FULL if c.id in accepted else CandidateView.REDUCED for c in candidates
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
    view = CandidateView.FULL
    if actor.role is Role.INSERTION and data.structure_id != actor.structure_id:
        raise Forbidden("Insertion staff register candidates for their own structure only.")
    if actor.role is Role.PRESCRIBER:
        if data.referrer_id not in (None, actor.structure_id):
            raise Forbidden("A prescriber refers people in its own name only.")
        data = data.model_copy(update={"referrer_id": actor.structure_id})
        view = CandidateView.REFERRAL
    await _check_references(session, data.structure_id, data.referrer_id)
    now = utcnow()
    candidate = Candidate(
        **_column_values(data, exclude_unset=False),
        **territory(data.commune_insee),
        phase=Phase.RECRUITMENT,
        phase_changed_at=now,
        consent_given_at=now if data.consent_to_share else None,
    )
    session.add(candidate)
    await flush(session)
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


async def get(
    session: AsyncSession, actor: Actor, candidate_id: uuid.UUID
) -> tuple[CandidateRow, CandidateView]:
    connection = await session.connection()
    statement = _read_one(replace(actor, request_id=None))
    candidate = (await connection.execute(statement, {"candidate_id": candidate_id})).first()
    if candidate is None:
        raise NotFound("No candidate with this id.")
    view = (await _views(session, actor, [candidate]))[candidate.id]
    await audit.record(session, actor, [candidate.id], AuditAction.READ, view)
    return candidate, view


# A filter on a field the caller's view hides would reveal it, one yes/no at a time.
_HIDDEN_FILTERS = {Role.LANDLORD: ("structure_id",), Role.PRESCRIBER: ("departement",)}


def _check_filters(actor: Actor, filters: CandidateFilters) -> None:
    hidden = [
        name for name in _HIDDEN_FILTERS.get(actor.role, ()) if getattr(filters, name) is not None
    ]
    if hidden:
        raise ValidationFailed(
            [
                field_error(
                    ["query", name],
                    f"not a filter the {actor.role.value} role has",
                    "filter_not_allowed",
                )
                for name in hidden
            ]
        )


async def list_(
    session: AsyncSession, actor: Actor, filters: CandidateFilters, page: PageRequest
) -> tuple[list[tuple[CandidateRow, CandidateView]], str | None]:
    _check_filters(actor, filters)
    stmt = _READ.where(visible_to(actor))
    if filters.structure_id is not None:
        stmt = stmt.where(Candidate.structure_id == filters.structure_id)
    if filters.phase is not None:
        stmt = stmt.where(Candidate.phase == filters.phase)
    if filters.departement is not None:
        stmt = stmt.where(Candidate.departement == filters.departement)
    rows, next_cursor = await paginate_rows(session, Candidate, stmt, page, filters.updated_since)
    views = await _views(session, actor, rows)
    for view in set(views.values()):
        ids = [c.id for c in rows if views[c.id] is view]
        await audit.record(session, actor, ids, AuditAction.LIST, view)
    return [(c, views[c.id]) for c in rows], next_cursor


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
    if "commune_insee" in changes:
        changes.update(territory(changes["commune_insee"]))
    consent = changes.get("consent_to_share")
    if consent is not None and consent != candidate.consent_to_share:
        changes["consent_given_at"] = utcnow() if consent else None
    apply_changes(candidate, changes)
    await flush(session)
    await audit.record(session, actor, [candidate.id], AuditAction.UPDATE, CandidateView.FULL)
    return candidate


async def delete(
    session: AsyncSession,
    actor: Actor,
    candidate_id: uuid.UUID,
    expected_versions: frozenset[int] | None,
) -> None:
    candidate = await _visible(session, actor, candidate_id)
    check_version(candidate.version, expected_versions)
    await session.delete(candidate)
    await flush(session)
    await audit.record(session, actor, [candidate_id], AuditAction.DELETE, CandidateView.FULL)
