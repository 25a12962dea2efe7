"""Yearly recruitment objectives of the partnership (e.g. 100 hires in 2016)."""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.enums import ObjectiveScope
from app.models.base import Entity, enum_column_type

# Which reference each scope names; the others stay empty (CHECK below).
_SCOPE_FIELDS = {
    ObjectiveScope.NATIONAL: None,
    ObjectiveScope.REGION: "region",
    ObjectiveScope.DEPARTEMENT: "departement",
    ObjectiveScope.LANDLORD: "landlord_id",
    ObjectiveScope.STRUCTURE: "structure_id",
}
_REFERENCES = ("region", "departement", "landlord_id", "structure_id")


def _scope_check() -> str:
    clauses = []
    for scope, field in _SCOPE_FIELDS.items():
        parts = [f"{ref} IS {'NOT ' if ref == field else ''}NULL" for ref in _REFERENCES]
        clauses.append(f"(scope = '{scope.value}' AND " + " AND ".join(parts) + ")")
    return " OR ".join(clauses)


def _unique_per_scope(scope: ObjectiveScope) -> Index:
    field = _SCOPE_FIELDS[scope]
    where = text(f"scope = '{scope.value}'")
    columns = ("year",) if field is None else ("year", field)
    return Index(
        f"uq_objectives_{scope.value}_year",
        *columns,
        unique=True,
        postgresql_where=where,
        sqlite_where=where,
    )


class Objective(Entity):
    """A number of hires to reach in a year, nationally or in one scope."""

    __tablename__ = "objectives"

    year: Mapped[int]
    target: Mapped[int]
    scope: Mapped[ObjectiveScope] = mapped_column(
        enum_column_type(ObjectiveScope, "objective_scope")
    )
    region: Mapped[str | None] = mapped_column(String(2))
    departement: Mapped[str | None] = mapped_column(String(3))
    landlord_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("structures.id", ondelete="RESTRICT"), index=True
    )
    structure_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("structures.id", ondelete="RESTRICT"), index=True
    )
    label: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year_range"),
        CheckConstraint("target >= 1", name="target_positive"),
        CheckConstraint(_scope_check(), name="scope_reference"),
        # One objective per year and scope, whatever the concurrency.
        *(_unique_per_scope(scope) for scope in ObjectiveScope),
    )
