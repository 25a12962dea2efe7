from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.domain.enums import (
    ActorKind,
    Phase,
    PlacementStatus,
    Role,
    TransitionReason,
    VacancyKind,
)
from app.schemas.common import FieldRuleError, InputModel, Page, ReadModel, UtcInstant

Note = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
# A forced move's justification is a sentence, not a word.
MIN_JUSTIFICATION_LENGTH = 10


class TransitionRequest(InputModel):
    to: Phase
    reason: TransitionReason | None = Field(
        default=None,
        description="Required to leave the path, step back or re-enter; see GET /v1/pathway.",
    )
    note: Note | None = Field(
        default=None, description="Free text; the written justification of a forced transition."
    )
    force: bool = Field(
        default=False,
        description="National administrators only: move although a guard fails. "
        f"Needs a justification in `note` of at least {MIN_JUSTIFICATION_LENGTH} characters; "
        "recorded as forced.",
    )
    effective_at: UtcInstant | None = Field(
        default=None,
        description="When the move took effect, to import past history (default: now). Not "
        "in the future and not before the person's previous transition (422 naming both "
        "dates). The history keeps it as `at`, and the time of the call as `recorded_at`.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"to": "support"},
                {"to": "exited", "reason": "other_job", "note": "Hired by a cleaning company."},
                {"to": "securing", "effective_at": "2014-10-06T09:00:00Z"},
            ]
        }
    )

    @model_validator(mode="after")
    def _justified(self) -> TransitionRequest:
        if self.force and (self.note is None or len(self.note) < MIN_JUSTIFICATION_LENGTH):
            raise FieldRuleError(
                "a forced transition needs a written justification of at least "
                f"{MIN_JUSTIFICATION_LENGTH} characters",
                "note",
            )
        return self


class CandidateTransition(ReadModel):
    id: uuid.UUID
    candidate_id: uuid.UUID
    from_phase: Phase | None = Field(description="Null for the entry into the path.")
    to_phase: Phase
    at: dt.datetime = Field(description="When the move took effect.")
    recorded_at: dt.datetime = Field(description="When Tremplin learnt of it.")
    actor_kind: ActorKind
    actor_id: str | None = Field(description="Hidden from prescribers.")
    actor_role: Role
    reason: TransitionReason | None
    note: str | None = Field(description="Hidden from prescribers.")
    forced: bool


def present_move(row: object, *, note: bool, actor_id: bool) -> CandidateTransition:
    read = CandidateTransition.model_validate(row)
    hidden = {name: None for name, shown in (("note", note), ("actor_id", actor_id)) if not shown}
    return read.model_copy(update=hidden) if hidden else read


class CandidateTransitionPage(Page[CandidateTransition]):
    pass


class GuardDescription(BaseModel):
    code: str
    description: str


class PathwayTransition(BaseModel):
    from_phase: Phase
    to_phase: Phase
    description: str
    requirements: list[GuardDescription]
    reasons: list[TransitionReason] = Field(description="Empty: no reason needed.")
    via_placement_only: bool = Field(
        description="Reached only by starting a job placement, never through the endpoint."
    )


class PathwayThresholds(BaseModel):
    min_training_hours: float
    min_positive_trials: int
    min_positive_skills_assessments: int
    min_completed_work_missions: int


class Pathway(BaseModel):
    """The path's state machine, for front-ends to draw."""

    phases: list[Phase]
    initial: Phase
    terminal: list[Phase] = Field(
        description="Terminal and side states: left only by a job's end or a re-entry."
    )
    transitions: list[PathwayTransition]
    thresholds: PathwayThresholds
    activity_phases: dict[str, Phase] = Field(
        description="The phase each activity type belongs to."
    )


class PlacementMoveDescription(BaseModel):
    from_status: PlacementStatus
    to_status: PlacementStatus
    roles: list[Role] = Field(description="Who may make the move; empty: the service only.")
    reason_required: bool
    kinds: list[VacancyKind] = Field(description="The kinds of vacancy the move applies to.")


class PlacementMachine(BaseModel):
    """The placement state machine, for front-ends to draw (from the service's table)."""

    statuses: list[PlacementStatus]
    initial: PlacementStatus
    terminal: list[PlacementStatus]
    moves: list[PlacementMoveDescription]
    position_holding: list[PlacementStatus] = Field(
        description="Statuses that hold one of the vacancy's positions."
    )
    phases_for_kind: dict[VacancyKind, list[Phase]] = Field(
        description="The path phases a candidate must be in for each kind of vacancy."
    )
    expirable: list[PlacementStatus] = Field(
        description="Statuses closed as `expired` after `proposal_expiry_days` unanswered."
    )
    proposal_expiry_days: int
