from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import SUB_KINDS, StructureKind
from app.models.base import Entity, enum_column_type


def _sub_kind_check() -> str:
    clauses = []
    for kind, sub_kinds in SUB_KINDS.items():
        values = ", ".join(f"'{v}'" for v in sorted(sub_kinds))
        clauses.append(f"(kind = '{kind.value}' AND sub_kind IN ({values}))")
    return " OR ".join(clauses)


class Structure(Entity):
    """An SIAE, a social landlord or a partner organisation."""

    __tablename__ = "structures"

    kind: Mapped[StructureKind] = mapped_column(
        enum_column_type(StructureKind, "structure_kind"), index=True
    )
    sub_kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    address_line: Mapped[str | None] = mapped_column(String(250))
    postcode: Mapped[str] = mapped_column(String(5))
    commune_insee: Mapped[str] = mapped_column(String(5))
    commune_name: Mapped[str | None] = mapped_column(String(100))
    departement: Mapped[str] = mapped_column(String(3), index=True)
    region: Mapped[str] = mapped_column(String(2))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint(_sub_kind_check(), name="sub_kind_matches_kind"),
        CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="coordinates_complete"),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )
