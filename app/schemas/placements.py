from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, computed_field, model_validator

from app.domain.enums import (
    ActorKind,
    PlacementEndReason,
    PlacementStatus,
    Role,
    VacancyKind,
)
from app.schemas.common import (
    EntityRead,
    InputModel,
    Page,
    ReadModel,
    UpdateModel,
    UtcInstant,
    check_dates,
)

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
    proposed_at: UtcInstant | None = Field(
        default=None,
        description="When the proposal was made, to import past history (default: now). Not "
        "in the future, not before the person entered the path.",
    )

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


class PlacementTransitionRequest(InputModel):
    to: PlacementStatus
    reason: PlacementEndReason | None = Field(
        default=None, description="Required to reject, withdraw or end."
    )
    note: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    on: dt.date | None = Field(
        default=None,
        description="The day it happened (default today): a start's or an end's day. A move "
        "dated by its day only takes effect at the start of that day, or just after the "
        "move it follows if that was the same day.",
    )
    effective_at: UtcInstant | None = Field(
        default=None,
        description="When the move took effect, to import past history (default: now). "
        "Give `on` or `effective_at` (or both, on the same UTC day). A dated move is not in "
        "the future, not before the placement's previous move (nor its proposal), and a "
        "job's start not before the person reached securing (422 naming both dates). "
        "Whoever may make the move may date it.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"to": "accepted"},
                {"to": "rejected", "reason": "not_suited", "note": "Needs a driving licence."},
                {"to": "started", "on": "2027-01-04"},
                {"to": "accepted", "effective_at": "2014-06-02T10:00:00Z"},
            ]
        }
    )


class FollowUpCreate(InputModel):
    at: dt.date = Field(description="Day of the check; 6 or 12 months after the start or later.")
    in_post: bool = Field(description="Still employed in this post.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"at": "2027-07-05", "in_post": True}]}
    )


_OTHER_SIDE = "Null for a landlord on a move it did not make."


class PlacementTransition(ReadModel):
    id: uuid.UUID
    placement_id: uuid.UUID
    from_status: PlacementStatus
    to_status: PlacementStatus
    at: dt.datetime
    actor_kind: ActorKind
    actor_id: str | None = Field(description="Who moved it. " + _OTHER_SIDE)
    actor_role: Role
    reason: PlacementEndReason | None
    note: str | None = Field(description=_OTHER_SIDE)


def present_move(row: object, *, note: bool, actor_id: bool) -> PlacementTransition:
    read = PlacementTransition.model_validate(row)
    hidden = {name: None for name, shown in (("note", note), ("actor_id", actor_id)) if not shown}
    return read.model_copy(update=hidden) if hidden else read


class PlacementTransitionPage(Page[PlacementTransition]):
    pass


def _months_later(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    for dom in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, dom)
        except ValueError:
            continue
    raise AssertionError("unreachable")


class Placement(EntityRead):
    candidate_id: uuid.UUID
    vacancy_id: uuid.UUID
    vacancy_kind: VacancyKind
    status: PlacementStatus
    proposed_at: dt.datetime
    status_changed_at: dt.datetime
    start_date: dt.date | None = Field(description="Planned start.")
    end_date: dt.date | None = Field(description="Planned end.")
    started_on: dt.date | None
    ended_on: dt.date | None
    closing_reason: PlacementEndReason | None
    notes: str | None = Field(
        description="The insertion structure's working notes; null for landlords."
    )
    follow_up_6m_on: dt.date | None
    follow_up_6m_in_post: bool | None
    follow_up_12m_on: dt.date | None
    follow_up_12m_in_post: bool | None
    follow_up_6m_recorded_at: dt.datetime | None
    follow_up_12m_recorded_at: dt.datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def follow_up_6m_due_on(self) -> dt.date | None:
        """For a started job: the day the 6-month follow-up falls due."""
        if self.vacancy_kind is VacancyKind.JOB and self.started_on is not None:
            return _months_later(self.started_on, 6)
        return None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def follow_up_12m_due_on(self) -> dt.date | None:
        if self.vacancy_kind is VacancyKind.JOB and self.started_on is not None:
            return _months_later(self.started_on, 12)
        return None


class PlacementPage(Page[Placement]):
    pass


def present(placement: object, *, notes: bool) -> Placement:
    """A placement as the caller may read it (see services.visibility)."""
    read = Placement.model_validate(placement)
    return read if notes else read.model_copy(update={"notes": None})
