"""Base models and field types shared by every resource."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from types import UnionType
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, to_json

from app.domain.competencies import COMPETENCIES, MAX_LEVEL, MIN_LEVEL, RNCP_CODE_PATTERN
from app.domain.geography import (
    DEPARTEMENT_PATTERN,
    INSEE_COMMUNE_PATTERN,
    POSTCODE_PATTERN,
    REGIONS,
    departement_of_commune,
)
from app.domain.text import ONE_LINE_PATTERN


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


# --- exact scalar types ---------------------------------------------------------------
# FastAPI validates decoded JSON in Pydantic's lax Python mode, which takes 0 and "yes"
# for booleans, 1.0 and "1" for integers, and numbers for dates. The contract says
# boolean, integer, number, date and date-time: each field of one of these types gets
# exactly that, for every model built on the bases below.

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# Integers in a query: digits, as many as a 64-bit integer has (a feed position may be
# any of them), and no more than fits in one (checked below).
_QUERY_INT = re.compile(r"^-?\d{1,19}$")
_INT64 = range(-(2**63), 2**63)
_QUERY_NUMBER = re.compile(r"^-?\d{1,18}(\.\d{1,18})?$")
_SCALARS = (bool, int, float, dt.datetime, dt.date)
_ERRORS = {
    bool: ("bool_type", "Input should be a boolean: true or false"),
    int: ("int_type", "Input should be an integer"),
    float: ("float_type", "Input should be a number"),
    dt.datetime: ("datetime_type", "Input should be an RFC 3339 date-time string"),
    dt.date: ("date_type", "Input should be an ISO 8601 date string (YYYY-MM-DD)"),
}


def _scalar_of(annotation: Any) -> type | None:
    """The one scalar type of `annotation` (through Annotated and `| None`), or None
    when it is not exactly one of bool, int, float, date, datetime."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_of(get_args(annotation)[0])
    if origin in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _scalar_of(members[0]) if len(members) == 1 else None
    return annotation if annotation in _SCALARS else None


def _json_value_fits(kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is dt.datetime:
        return isinstance(value, dt.datetime) or (
            isinstance(value, str) and bool(_RFC3339.match(value))
        )
    # a date
    return (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
        isinstance(value, str) and bool(_ISO_DATE.match(value))
    )


def _query_value_fits(kind: type, value: Any) -> bool:
    if not isinstance(value, str):
        return _json_value_fits(kind, value)
    if kind is bool:
        return value in ("true", "false")
    if kind is int:
        return bool(_QUERY_INT.match(value)) and int(value) in _INT64
    if kind is float:
        return bool(_QUERY_NUMBER.match(value))
    return _json_value_fits(kind, value)


@lru_cache(maxsize=4096)
def _field_scalar(model: type[BaseModel], name: str) -> type | None:
    field = model.model_fields.get(name)
    if field is None:
        return None
    return _scalar_of(field.annotation)


def _check_scalars(model: type[BaseModel], data: Any, fits: Callable[[type, Any], bool]) -> Any:
    """Refuse the values of scalar fields that are not of their exact type, naming each
    field (a model-level check: a field-level one may not touch a union's discriminator)."""
    if not isinstance(data, dict):
        return data
    errors: list[InitErrorDetails] = []
    for name, value in data.items():
        kind = _field_scalar(model, name) if isinstance(name, str) else None
        if kind is not None and value is not None and not fits(kind, value):
            error_type, message = _ERRORS[kind]
            errors.append(
                {"type": PydanticCustomError(error_type, message), "loc": (name,), "input": value}
            )
    if errors:
        raise ValidationError.from_exception_data(model.__name__, errors)
    return data


class StrictScalars(BaseModel):
    """JSON bodies: booleans, integers, numbers, dates and date-times of exactly their
    JSON type (dates as ISO strings), as the spec says."""

    @model_validator(mode="before")
    @classmethod
    def _exact_scalars(cls, data: Any) -> Any:
        return _check_scalars(cls, data, _json_value_fits)


class InputModel(StrictScalars):
    """Request bodies: unknown fields are rejected, strings trimmed, scalars exact.

    Fields listed in `non_nullable` may be omitted but not set to null; the spec says so
    (they are not nullable in the schema), whatever their Python type.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    non_nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)

    @model_validator(mode="after")
    def _reject_nulls(self) -> Self:
        nulls = sorted(
            name
            for name in self.model_fields_set & self.non_nullable
            if getattr(self, name) is None
        )
        if nulls:
            raise FieldRuleError(f"may not be null: {', '.join(nulls)}", *nulls)
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        target = handler.resolve_ref_schema(json_schema)
        for name in cls.non_nullable:
            prop = target.get("properties", {}).get(name)
            if prop is not None:
                _drop_null(prop)
        return json_schema


def _drop_null(prop: dict[str, Any]) -> None:
    """`anyOf: [X, null]` with `default: null` becomes X, with no default."""
    branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        prop.update({k: v for k, v in branches[0].items() if k not in prop})
    elif branches:
        prop["anyOf"] = branches
    if prop.get("default", ...) is None:
        del prop["default"]


class UpdateModel(InputModel):
    """PATCH bodies: every field optional, applied with exclude_unset.

    List in `non_nullable` the fields that may be omitted but not set to null.
    """


class QueryModel(BaseModel):
    """Query parameters: unknown ones are rejected; booleans are `true` or `false`,
    integers digits, dates and date-times ISO strings, and nothing else."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)

    @model_validator(mode="before")
    @classmethod
    def _exact_scalars(cls, data: Any) -> Any:
        return _check_scalars(cls, data, _query_value_fits)


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


def page_json(items: list[BaseModel], next_cursor: str | None) -> bytes:
    """A page rendered as `Page` would render it, each item by its own model's serializer:
    items already validated are not matched again against a union of models (measured on
    a 50-row page of candidates: 0.27 ms instead of 0.36)."""
    rendered = b",".join([item.__pydantic_serializer__.to_json(item) for item in items])
    cursor = to_json(next_cursor)
    return b'{"items":[' + rendered + b'],"next_cursor":' + cursor + b"}"


def _known_commune(code: str) -> str:
    if departement_of_commune(code) is None:
        raise ValueError("not a commune INSEE code of a known département")
    return code


Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=ONE_LINE_PATTERN)]
LongName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=ONE_LINE_PATTERN)]
Postcode = Annotated[str, StringConstraints(pattern=POSTCODE_PATTERN)]
CommuneInsee = Annotated[
    str, StringConstraints(pattern=INSEE_COMMUNE_PATTERN), AfterValidator(_known_commune)
]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
RncpCode = Annotated[str, StringConstraints(pattern=RNCP_CODE_PATTERN)]
AddressLine = Annotated[
    str, StringConstraints(min_length=1, max_length=250, pattern=ONE_LINE_PATTERN)
]


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
    # Integers only, checked by Pydantic's strict mode (an int, never a bool, a float or
    # a string), and no unknown key: InputModel's checks in Python would run for nothing
    # on every candidate read (two thirds of validating one).
    fields: dict[str, Any] = {
        c.code: (
            int,
            Field(
                default=0,
                ge=low if low else MIN_LEVEL,
                le=MAX_LEVEL,
                strict=True,
                description=c.label,
            ),
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


def _known_region(code: str) -> str:
    if code not in REGIONS:
        raise ValueError("not a region INSEE code")
    return code


Region = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{2}$"),
    AfterValidator(_known_region),
    # The codes themselves in the spec, so clients (and fuzzers) send only real ones.
    Field(examples=["28", "84"], json_schema_extra={"enum": sorted(REGIONS)}),
]
