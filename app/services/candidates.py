from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import Phase, StructureKind
from app.models import Candidate
from app.models.base import utcnow
from app.schemas.candidates import CandidateCreate, CandidateUpdate
from app.schemas.common import check_coordinates
from app.services import structures
from app.services.common import (
    PageRequest,
    apply_changes,
    check_version,
    cross_field,
    flush,
    get_or_404,
    paginate,
    territory,
)


@dataclass(frozen=True, slots=True)
class CandidateFilters:
    structure_id: uuid.UUID | None = None
    phase: Phase | None = None
    departement: str | None = None
    updated_since: datetime | None = None


_JSON_FIELDS = {"competencies", "certifications"}


def _column_values(
    data: CandidateCreate | CandidateUpdate, *, exclude_unset: bool
) -> dict[str, Any]:
    """Plain fields as Python values; JSON columns in their JSON form (dates as text)."""
    values = data.model_dump(exclude_unset=exclude_unset, exclude=_JSON_FIELDS)
    values.update(data.model_dump(mode="json", exclude_unset=exclude_unset, include=_JSON_FIELDS))
    return values


async def _check_references(
    session: AsyncSession, structure_id: uuid.UUID | None, referrer_id: uuid.UUID | None
) -> None:
    if structure_id is not None:
        await structures.require_kind(
            session, structure_id, StructureKind.INSERTION, "structure_id"
        )
    if referrer_id is not None:
        await structures.require_kind(session, referrer_id, StructureKind.PARTNER, "referrer_id")


async def create(session: AsyncSession, data: CandidateCreate) -> Candidate:
    await _check_references(session, data.structure_id, data.referrer_id)
    values = _column_values(data, exclude_unset=False)
    candidate = Candidate(
        **values,
        **territory(data.commune_insee),
        phase=Phase.RECRUITMENT,
        phase_changed_at=utcnow(),
        consent_given_at=utcnow() if data.consent_to_share else None,
    )
    session.add(candidate)
    await flush(session)
    return candidate


async def get(session: AsyncSession, candidate_id: uuid.UUID) -> Candidate:
    return await get_or_404(session, Candidate, candidate_id)


async def list_(
    session: AsyncSession, filters: CandidateFilters, page: PageRequest
) -> tuple[Sequence[Candidate], str | None]:
    stmt = select(Candidate)
    if filters.structure_id is not None:
        stmt = stmt.where(Candidate.structure_id == filters.structure_id)
    if filters.phase is not None:
        stmt = stmt.where(Candidate.phase == filters.phase)
    if filters.departement is not None:
        stmt = stmt.where(Candidate.departement == filters.departement)
    return await paginate(session, Candidate, stmt, page, filters.updated_since)


async def update(
    session: AsyncSession,
    candidate_id: uuid.UUID,
    data: CandidateUpdate,
    expected_versions: frozenset[int] | None,
) -> Candidate:
    candidate = await get(session, candidate_id)
    check_version(candidate.version, expected_versions)
    changes = _column_values(data, exclude_unset=True)
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
    return candidate


async def delete(
    session: AsyncSession, candidate_id: uuid.UUID, expected_versions: frozenset[int] | None
) -> None:
    candidate = await get(session, candidate_id)
    check_version(candidate.version, expected_versions)
    await session.delete(candidate)
    await flush(session)
