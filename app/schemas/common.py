"""Base models and field types shared by every resource."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
    model_validator,
)

from app.domain.competencies import COMPETENCIES, MAX_LEVEL, MIN_LEVEL, RNCP_CODE_PATTERN
from app.domain.geography import (
    DEPARTEMENT_PATTERN,
    INSEE_COMMUNE_PATTERN,
    POSTCODE_PATTERN,
    departement_of_commune,
)


class FieldRuleError(ValueError):
    """A rule across fields, naming the field(s) a client should fix."""

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields


def reject_nul(value: Any) -> Any:
    # PostgreSQL cannot store U+0000 in text; refuse it on both databases alike.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain the NUL character")
    return value


class InputModel(BaseModel):
    """Request bodies: unknown fields are rejected, strings trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)


class UpdateModel(InputModel):
    """PATCH bodies: every field optional, applied with exclude_unset.

    Fields listed in `non_nullable` may be omitted but not set to null.
    """

    non_nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _reject_nulls(self) -> UpdateModel:
        nulls = sorted(
            name
            for name in self.model_fields_set & self.non_nullable
            if getattr(self, name) is None
        )
        if nulls:
            raise FieldRuleError(f"may not be null: {', '.join(nulls)}", *nulls)
        return self


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EntityRead(ReadModel):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Bumped by every change; the resource's ETag.")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


def _known_commune(code: str) -> str:
    if departement_of_commune(code) is None:
        raise ValueError("not a commune INSEE code of a known département")
    return code


Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
LongName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Postcode = Annotated[str, StringConstraints(pattern=POSTCODE_PATTERN)]
CommuneInsee = Annotated[
    str, StringConstraints(pattern=INSEE_COMMUNE_PATTERN), AfterValidator(_known_commune)
]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
RncpCode = Annotated[str, StringConstraints(pattern=RNCP_CODE_PATTERN)]
AddressLine = Annotated[str, StringConstraints(min_length=1, max_length=250)]


def check_coordinates(latitude: float | None, longitude: float | None) -> None:
    if (latitude is None) != (longitude is None):
        missing = "latitude" if latitude is None else "longitude"
        raise FieldRuleError("latitude and longitude go together: give both or neither", missing)


def check_dates(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise FieldRuleError("end_date is before start_date", "end_date")


def _utc_instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a timezone, e.g. 2026-01-31T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


UtcInstant = Annotated[datetime, AfterValidator(_utc_instant)]


def _competency_model(name: str, low: int, doc: str) -> type[BaseModel]:
    fields: dict[str, Any] = {
        c.code: (
            int,
            Field(default=0, ge=low if low else MIN_LEVEL, le=MAX_LEVEL, description=c.label),
        )
        for c in COMPETENCIES
    }
    model = create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    model.__doc__ = doc
    return model


CompetencyLevels: Any = _competency_model(
    "CompetencyLevels",
    0,
    "Level 0-3 for each competency of the RNCP40892 framework (0: not acquired).",
)
CompetencyRequirements: Any = _competency_model(
    "CompetencyRequirements",
    0,
    "Minimum level 0-3 required for each competency (0: not required).",
)


ExternalRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(
        description="Your own reference for the record, unique within the structure (or "
        "landlord): bulk sync creates or updates by it.",
        examples=["SIAE-2026-0042"],
    ),
]

Departement = Annotated[
    str, StringConstraints(pattern=DEPARTEMENT_PATTERN), Field(examples=["76", "2A", "974"])
]
