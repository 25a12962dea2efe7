from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from app.domain.enums import PlacementStatus
from app.schemas.common import EntityRead, InputModel, Page, UpdateModel, check_dates

Notes = Annotated[
    str,
    StringConstraints(max_length=2000),
    Field(description="Working notes on the placement. Never health data."),
]


class PlacementCreate(InputModel):
    candidate_id: uuid.UUID
    vacancy_id: uuid.UUID
    start_date: dt.date | None = Field(default=None, description="Planned start.")
    end_date: dt.date | None = Field(default=None, description="Planned end, for missions.")
    notes: Notes | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "candidate_id": "01939a2e-0000-7000-8000-000000000003",
                    "vacancy_id": "01939a2e-0000-7000-8000-000000000004",
                    "start_date": "2027-01-04",
                    "notes": "Met the site manager on 12 December.",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _rules(self) -> PlacementCreate:
        check_dates(self.start_date, self.end_date)
        return self


class PlacementUpdate(UpdateModel):
    """Status changes go through the placement transitions, not through PATCH."""

    start_date: dt.date | None = None
    end_date: dt.date | None = None
    notes: Notes | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"start_date": "2027-01-11"}]})


class Placement(EntityRead):
    candidate_id: uuid.UUID
    vacancy_id: uuid.UUID
    status: PlacementStatus
    proposed_at: dt.datetime
    start_date: dt.date | None
    end_date: dt.date | None
    notes: str | None


class PlacementPage(Page[Placement]):
    pass
