from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import Role, StructureKind
from app.errors import (
    DuplicateResource,
    NotFound,
    ResourceInUse,
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
    one_of,
    paginate,
    referred_by,
    territory,
)
from app.services.permissions import OPERATIONS


def _siret_taken() -> DuplicateResource:
    return DuplicateResource("A structure with this SIRET already exists.")


_CONFLICTS = {"uq_structures_siret": _siret_taken, "unique:structures.siret": _siret_taken}


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
    used = await referred_by(session, structure)
    if used:
        raise ResourceInUse(
            f"Records refer to this structure ({', '.join(used)}); delete or move them first."
        )
    await session.delete(structure)
    await flush(session)


# References to structures, from a body or a query (`within`, the location of `field`):
# an unknown id is a 422 on the field, a structure of the wrong kind a 409.


def _unknown(loc: Sequence[str], message: str) -> ValidationFailed:
    return ValidationFailed([field_error(list(loc), message, "reference_not_found")])


def _check_kind(found: StructureKind, kind: StructureKind, field: str) -> None:
    if found is not kind:
        raise WrongReferenceKind(
            f"{field} must reference a structure of kind '{kind.value}'.",
            field=field,
            expected_kind=kind.value,
        )


async def require_exists(
    session: AsyncSession, structure_id: uuid.UUID, field: str, *, within: Sequence[str] = ("body",)
) -> Structure:
    structure = await session.get(Structure, structure_id)
    if structure is None:
        raise _unknown([*within, field], "no structure with this id")
    return structure


async def require_kind(
    session: AsyncSession,
    structure_id: uuid.UUID,
    kind: StructureKind,
    field: str,
    *,
    within: Sequence[str] = ("body",),
    kinds_hidden: bool = False,
) -> Structure:
    """The structure, of this kind. `kinds_hidden`: the caller may not read structures,
    so one of another kind answers as an unknown id (the 409 would tell it the id is a
    structure, and of which kind)."""
    structure = await require_exists(session, structure_id, field, within=within)
    if kinds_hidden and structure.kind is not kind:
        raise _unknown([*within, field], "no structure with this id")
    _check_kind(structure.kind, kind, field)
    return structure


def reads_structures(actor: Actor) -> bool:
    """Whether the caller (its role and its token's scopes) may read structures, and so
    learn any structure's kind anyway."""
    operation = OPERATIONS["structures_get"]
    return actor.role in operation.grants and operation.scope in actor.scopes


async def require_all_kind(
    session: AsyncSession,
    structure_ids: Collection[uuid.UUID],
    kind: StructureKind,
    field: str,
    *,
    within: Sequence[str] = ("body",),
) -> None:
    """`require_kind` for a list of ids (up to thousands), read in one statement."""
    wanted = set(structure_ids)
    if not wanted:
        return
    rows = await session.execute(
        select(Structure.id, Structure.kind).where(one_of(session, Structure.id, wanted))
    )
    found: dict[uuid.UUID, StructureKind] = dict(rows.all())
    unknown = len(wanted - found.keys())
    if unknown:
        raise _unknown([*within, field], f"{unknown} of these ids name no structure")
    for found_kind in found.values():
        _check_kind(found_kind, kind, field)
