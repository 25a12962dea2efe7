from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain.enums import ObjectiveScope
from app.schemas.common import (
    EntityRead,
    FieldRuleError,
    InputModel,
    LongName,
    Page,
    Region,
    UpdateModel,
)
from app.schemas.stats import KnownDepartement
from app.services.stats import DEFINITIONS

# The reference each scope names; the others must stay empty.
SCOPE_FIELD: dict[ObjectiveScope, str | None] = {
    ObjectiveScope.NATIONAL: None,
    ObjectiveScope.REGION: "region",
    ObjectiveScope.DEPARTEMENT: "departement",
    ObjectiveScope.LANDLORD: "landlord_id",
    ObjectiveScope.STRUCTURE: "structure_id",
}

Year = Annotated[int, Field(ge=2000, le=2100, examples=[2016])]
Target = Annotated[int, Field(ge=1, le=1_000_000, description="A number of hires.")]


class ObjectiveCreate(InputModel):
    year: Year
    target: Target
    scope: ObjectiveScope = Field(
        description="`national`, or one region, département, landlord or insertion "
        "structure, named by the matching field (and only that one)."
    )
    region: Region | None = None
    departement: KnownDepartement | None = None
    landlord_id: uuid.UUID | None = Field(default=None, description="A landlord structure.")
    structure_id: uuid.UUID | None = Field(default=None, description="An insertion structure.")
    label: LongName | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2016,
                    "target": 100,
                    "scope": "national",
                    "label": "Partenariat COORACE - USH : recrutements 2016",
                },
                {"year": 2017, "target": 14, "scope": "departement", "departement": "76"},
            ]
        }
    )

    @model_validator(mode="after")
    def _one_reference(self) -> ObjectiveCreate:
        wanted = SCOPE_FIELD[self.scope]
        if wanted is not None and getattr(self, wanted) is None:
            raise FieldRuleError(f"required for a {self.scope.value} objective", wanted)
        extra = [
            name
            for name in SCOPE_FIELD.values()
            if name is not None and name != wanted and getattr(self, name) is not None
        ]
        if extra:
            raise FieldRuleError(f"not for a {self.scope.value} objective", *extra)
        return self


class ObjectiveUpdate(UpdateModel):
    """The target and label change; the year and scope do not (create another)."""

    non_nullable: ClassVar[frozenset[str]] = frozenset({"target"})

    target: Target | None = None
    label: LongName | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"target": 120}]})


class Objective(EntityRead):
    year: int
    target: int
    scope: ObjectiveScope
    region: str | None
    departement: str | None
    landlord_id: uuid.UUID | None
    structure_id: uuid.UUID | None
    label: str | None


class ObjectivePage(Page[Objective]):
    pass


class ObjectiveProgress(BaseModel):
    objective_id: uuid.UUID
    year: int
    target: int
    hires: int | None = Field(description=DEFINITIONS["objective_hires"])
    share: float | None = Field(description=DEFINITIONS["share"])
    projected: int | None = Field(description=DEFINITIONS["projected"])
    as_of: dt.datetime
    masked: list[str] = Field(description=DEFINITIONS["masked"])
