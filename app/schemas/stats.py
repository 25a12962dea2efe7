"""Figures: the query every stats endpoint takes, and the documents they answer.

Each figure's description is its definition in app.services.stats.DEFINITIONS.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)

from app.domain.enums import Phase
from app.domain.geography import DEPARTEMENTS
from app.domain.pathway import EXIT_REASONS
from app.schemas.common import Departement, FieldRuleError, QueryModel, Region, UtcInstant
from app.services.stats import DEFINITIONS, Filters, Period

FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


def _known_departement(code: str) -> str:
    if code not in DEPARTEMENTS:
        raise ValueError("not a département code")
    return code


KnownDepartement = Annotated[Departement, AfterValidator(_known_departement)]


def _in_range(day: dt.date | None) -> dt.date | None:
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"between {FIRST_DAY} and {LAST_DAY}")
    return day


Day = Annotated[dt.date, AfterValidator(_in_range)]


def _past(value: dt.datetime) -> dt.datetime:
    if value > dt.datetime.now(dt.UTC):
        raise ValueError("is in the future: as_of asks what the database knew at a past instant")
    return value


PastInstant = Annotated[UtcInstant, AfterValidator(_past)]


class StatsQuery(QueryModel):
    """A period (`from`/`to`, or `year`), filters, `as_of`, and the answer's format."""

    from_: Day | None = Field(
        default=None,
        alias="from",
        description="First day of the period (UTC), included; default: since the beginning.",
    )
    to: Day | None = Field(
        default=None, description="Last day of the period, included; default: the `as_of` day."
    )
    year: int | None = Field(
        default=None, ge=2000, le=2100, description="A calendar year, instead of from/to."
    )
    as_of: PastInstant | None = Field(
        default=None,
        description="The figures as the database knew them at this past instant (default "
        "now): only what was recorded by then counts.",
    )
    structure_id: uuid.UUID | None = Field(
        default=None, description="People accompanied by this insertion structure."
    )
    landlord_id: uuid.UUID | None = Field(
        default=None,
        description="People hired by this landlord, and hires on its vacancies only.",
    )
    departement: KnownDepartement | None = Field(default=None, description="People living there.")
    region: Region | None = Field(default=None, description="People living there.")
    format: Literal["json", "csv"] | None = Field(
        default=None, description="`csv` answers text/csv (as does `Accept: text/csv`)."
    )

    @model_validator(mode="after")
    def _rules(self) -> StatsQuery:
        if self.year is not None and (self.from_ is not None or self.to is not None):
            raise FieldRuleError("give either year or from/to, not both", "year")
        start, end = self._bounds()
        if start is not None and start > end:
            raise FieldRuleError(f"from ({start}) is after to ({end})", "from")
        return self

    def _as_of(self) -> dt.datetime:
        return self.as_of or dt.datetime.now(dt.UTC)

    def _bounds(self) -> tuple[dt.date | None, dt.date]:
        if self.year is not None:
            return dt.date(self.year, 1, 1), dt.date(self.year, 12, 31)
        return self.from_, self.to or self._as_of().date()

    def period(self) -> Period:
        start, end = self._bounds()
        return Period(start, end, self._as_of())

    def filters(self) -> Filters:
        return Filters(
            structure_id=self.structure_id,
            landlord_id=self.landlord_id,
            departement=self.departement,
            region=self.region,
        )


def _figure(name: str, **kw: Any) -> Any:
    return Field(description=DEFINITIONS[name], **kw)


Count = int | None


class StatsPeriod(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: dt.date | None = Field(alias="from", description="null: since the beginning.")
    to: dt.date
    as_of: dt.datetime


class StatsFilters(BaseModel):
    structure_id: uuid.UUID | None
    landlord_id: uuid.UUID | None
    departement: str | None
    region: str | None


class _Figures(BaseModel):
    period: StatsPeriod
    filters: StatsFilters
    masked: list[str] = _figure("masked")


ExitedByReason: Any = create_model(
    "ExitedByReason",
    **{reason.value: (Count, Field(default=None)) for reason in sorted(EXIT_REASONS)},  # type: ignore[call-overload]
)
InPhase: Any = create_model(
    "InPhase",
    **{phase.value: (Count, Field(default=None)) for phase in Phase},  # type: ignore[call-overload]
)


class Funnel(_Figures):
    entered: Count = _figure("entered")
    reached_support: Count = _figure("reached_support")
    reached_securing: Count = _figure("reached_securing")
    hired: Count = _figure("hired")
    exited: Count = _figure("exited")
    exited_by_reason: ExitedByReason = _figure("exited_by_reason")
    in_phase: InPhase = _figure("in_phase")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "period": {
                        "from": "2013-01-01",
                        "to": "2016-06-07",
                        "as_of": "2026-12-01T00:00:00Z",
                    },
                    "filters": {
                        "structure_id": None,
                        "landlord_id": None,
                        "departement": "69",
                        "region": None,
                    },
                    "entered": 70,
                    "reached_support": 58,
                    "reached_securing": 46,
                    "hired": 40,
                    "exited": 18,
                    "exited_by_reason": {r.value: None for r in sorted(EXIT_REASONS)},
                    "in_phase": {
                        "recruitment": 0,
                        "support": 5,
                        "securing": 7,
                        "employed": 40,
                        "exited": 18,
                    },
                    "masked": ["exited_by_reason.moved_away"],
                }
            ]
        }
    )


class Retention(BaseModel):
    due: Count
    followed_up: Count
    in_post: Count
    rate: float | None


class TrainingHours(BaseModel):
    total: float | None
    per_person: float | None


class Certification(BaseModel):
    sat: Count
    passed: Count
    pass_rate: float | None


class Outcomes(_Figures):
    hires: Count = _figure("hires")
    hire_rate: float | None = _figure("hire_rate")
    retention_6m: Retention = _figure("retention_6m")
    retention_12m: Retention = _figure("retention_12m")
    median_days_to_hire: float | None = _figure("median_days_to_hire")
    training_hours: TrainingHours = _figure("training_hours")
    certification: Certification = _figure("certification")


class MonthFigures(BaseModel):
    month: str = Field(description="YYYY-MM (UTC).", examples=["2016-03"])
    entries: Count = _figure("entries")
    hires: Count = _figure("monthly_hires")
    masked: list[str] = _figure("masked")


class Monthly(_Figures):
    months: list[MonthFigures]
    masked: list[str] = Field(
        default_factory=list, description="Always empty: each month lists its own."
    )


# --- CSV answers: stable columns, documented in the spec ---------------------------------

FIGURE_COLUMNS = ("figure", "value", "masked")
MONTHLY_COLUMNS = ("month", "entries", "hires", "masked")

FIGURES_CSV_EXAMPLE = (
    "figure,value,masked\r\n"
    "entered,70,false\r\n"
    "hired,40,false\r\n"
    "exited_by_reason.moved_away,,true\r\n"
    "in_phase.employed,40,false\r\n"
)
MONTHLY_CSV_EXAMPLE = "month,entries,hires,masked\r\n2016-01,3,,hires\r\n2016-02,0,0,\r\n"


def csv_response(example: str, columns: tuple[str, ...]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "The figures, as JSON or as CSV (`Accept: text/csv` or `format=csv`). "
            "CSV columns, always in this order: " + ", ".join(f"`{c}`" for c in columns) + ". "
            "A masked value is an empty cell.",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": example}},
        }
    }


Format = Literal["json", "csv"]
