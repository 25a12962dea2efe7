from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import Role, StructureKind
from app.errors import (
    DuplicateResource,
    NotFound,
    ValidationFailed,
    WrongReferenceKind,
    field_error,
)
from app.models import Structure
from app.schemas.common import check_coordinates
from app.schemas.structures import StructureCreate, StructureUpdate, check_sub_kind
from app.services.auth import Actor
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

_SIRET_TAKEN = DuplicateResource("A structure with this SIRET already exists.")
_CONFLICTS = {"uq_structures_siret": _SIRET_TAKEN, "unique:structures.siret": _SIRET_TAKEN}


@dataclass(frozen=True, slots=True)
class StructureFilters:
    kind: StructureKind | None = None
    departement: str | None = None
    updated_since: datetime | None = None
    siret: str | None = None


async def create(session: AsyncSession, data: StructureCreate) -> Structure:
    structure = Structure(**data.model_dump(), **territory(data.commune_insee))
    session.add(structure)
    await flush(session, _CONFLICTS)
    return structure


async def get(session: AsyncSession, structure_id: uuid.UUID) -> Structure:
    return await get_or_404(session, Structure, structure_id)


async def list_(
    session: AsyncSession, filters: StructureFilters, page: PageRequest
) -> tuple[Sequence[Structure], str | None]:
    stmt = select(Structure)
    if filters.kind is not None:
        stmt = stmt.where(Structure.kind == filters.kind)
    if filters.departement is not None:
        stmt = stmt.where(Structure.departement == filters.departement)
    if filters.siret is not None:
        stmt = stmt.where(Structure.siret == filters.siret)
    return await paginate(session, Structure, stmt, page, filters.updated_since)


async def update(
    session: AsyncSession,
    actor: Actor,
    structure_id: uuid.UUID,
    data: StructureUpdate,
    expected_versions: frozenset[int] | None,
) -> Structure:
    if actor.role is not Role.ADMIN and structure_id != actor.structure_id:
        raise NotFound("No structure with this id.")
    structure = await get(session, structure_id)
    check_version(structure.version, expected_versions)
    changes = data.model_dump(exclude_unset=True)
    sub_kind = changes.get("sub_kind", structure.sub_kind)
    cross_field(lambda: check_sub_kind(structure.kind, sub_kind))
    cross_field(
        lambda: check_coordinates(
            changes.get("latitude", structure.latitude),
            changes.get("longitude", structure.longitude),
        )
    )
    if "commune_insee" in changes:
        changes.update(territory(changes["commune_insee"]))
    apply_changes(structure, changes)
    await flush(session, _CONFLICTS)
    return structure


async def delete(
    session: AsyncSession, structure_id: uuid.UUID, expected_versions: frozenset[int] | None
) -> None:
    structure = await get(session, structure_id)
    check_version(structure.version, expected_versions)
    await session.delete(structure)
    await flush(session)


async def require_exists(session: AsyncSession, structure_id: uuid.UUID, field: str) -> Structure:
    structure = await session.get(Structure, structure_id)
    if structure is None:
        raise ValidationFailed(
            [field_error(["body", field], "no structure with this id", "reference_not_found")]
        )
    return structure


async def require_kind(
    session: AsyncSession, structure_id: uuid.UUID, kind: StructureKind, field: str
) -> Structure:
    """A structure referenced from a body: unknown is a 422, the wrong kind a 409."""
    structure = await require_exists(session, structure_id, field)
    if structure.kind is not kind:
        raise WrongReferenceKind(
            f"{field} must reference a structure of kind '{kind.value}'.",
            field=field,
            expected_kind=kind.value,
        )
    return structure
