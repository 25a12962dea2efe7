"""Activities, one model per type (a discriminated union on `type`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, create_model, model_validator

from app.domain.competencies import COMPETENCIES, MAX_LEVEL, MIN_LEVEL
from app.domain.enums import ActivityOutcome, ActivityType, Phase, TrainingMode
from app.schemas.common import (
    EntityRead,
    FieldRuleError,
    InputModel,
    Page,
    RncpCode,
    UpdateModel,
)

Notes = Annotated[
    str,
    StringConstraints(max_length=2000),
    Field(description="Working notes. Never health data."),
]
Hours = Annotated[float, Field(gt=0, le=2000)]

# A skills assessment rates some competencies; those left out were not assessed.
_ASSESSED: dict[str, Any] = {
    c.code: (int | None, Field(default=None, ge=MIN_LEVEL, le=MAX_LEVEL, description=c.label))
    for c in COMPETENCIES
}
CompetencyAssessment: Any = create_model("CompetencyAssessment", __base__=InputModel, **_ASSESSED)


class _ActivityBase(InputModel):
    type: ActivityType
    occurred_on: dt.date = Field(
        description="The day it happened (or began): not in the future, nor before the "
        "person entered the path."
    )
    notes: Notes | None = None

    @model_validator(mode="after")
    def _dates(self) -> _ActivityBase:
        end_on = getattr(self, "end_on", None)
        if end_on is not None and end_on < self.occurred_on:
            raise FieldRuleError("end_on is before occurred_on", "end_on")
        return self


class WorkTrialCreate(_ActivityBase):
    """Mise en situation professionnelle (PMSMP)."""

    type: Literal[ActivityType.WORK_TRIAL] = ActivityType.WORK_TRIAL
    end_on: dt.date | None = None
    landlord_id: uuid.UUID | None = Field(default=None, description="The host landlord.")
    outcome: ActivityOutcome


class TestMissionCreate(_ActivityBase):
    type: Literal[ActivityType.TEST_MISSION] = ActivityType.TEST_MISSION
    end_on: dt.date | None = None
    landlord_id: uuid.UUID
    outcome: ActivityOutcome


class ReplacementCreate(_ActivityBase):
    type: Literal[ActivityType.REPLACEMENT] = ActivityType.REPLACEMENT
    end_on: dt.date | None = None
    landlord_id: uuid.UUID
    outcome: ActivityOutcome


class ProjectEvaluationCreate(_ActivityBase):
    """`positive`: the caretaker project is validated."""

    type: Literal[ActivityType.PROJECT_EVALUATION] = ActivityType.PROJECT_EVALUATION
    outcome: ActivityOutcome


class TrainingCreate(_ActivityBase):
    type: Literal[ActivityType.TRAINING] = ActivityType.TRAINING
    end_on: dt.date | None = None
    hours: Hours
    training_mode: TrainingMode
    certifying: bool = False
    rncp_code: RncpCode | None = Field(default=None, description="For a certifying training.")
    outcome: ActivityOutcome | None = None


class WorkMissionCreate(_ActivityBase):
    """Paid work at a landlord, carried by the SIAE. `positive`: completed."""

    type: Literal[ActivityType.WORK_MISSION] = ActivityType.WORK_MISSION
    end_on: dt.date | None = None
    landlord_id: uuid.UUID
    hours: Hours | None = None
    outcome: ActivityOutcome


class TutoringCreate(_ActivityBase):
    type: Literal[ActivityType.TUTORING] = ActivityType.TUTORING
    end_on: dt.date | None = None
    hours: Hours | None = None


class WorkStudyContractCreate(_ActivityBase):
    """Contrat de professionnalisation."""

    type: Literal[ActivityType.WORK_STUDY_CONTRACT] = ActivityType.WORK_STUDY_CONTRACT
    end_on: dt.date | None = None
    landlord_id: uuid.UUID | None = None
    rncp_code: RncpCode | None = None


class SkillsAssessmentCreate(_ActivityBase):
    """Updates the candidate's competencies with the levels assessed."""

    type: Literal[ActivityType.SKILLS_ASSESSMENT] = ActivityType.SKILLS_ASSESSMENT
    competency_levels: CompetencyAssessment
    outcome: ActivityOutcome


class InterviewSimulationCreate(_ActivityBase):
    type: Literal[ActivityType.INTERVIEW_SIMULATION] = ActivityType.INTERVIEW_SIMULATION
    outcome: ActivityOutcome | None = None


class CertificationExamCreate(_ActivityBase):
    """`positive`: passed, recorded as held; otherwise the certification stays in progress."""

    type: Literal[ActivityType.CERTIFICATION_EXAM] = ActivityType.CERTIFICATION_EXAM
    rncp_code: RncpCode
    outcome: ActivityOutcome


class HiringSupportCreate(_ActivityBase):
    type: Literal[ActivityType.HIRING_SUPPORT] = ActivityType.HIRING_SUPPORT
    landlord_id: uuid.UUID | None = None


class OnboardingSupportCreate(_ActivityBase):
    type: Literal[ActivityType.ONBOARDING_SUPPORT] = ActivityType.ONBOARDING_SUPPORT
    landlord_id: uuid.UUID | None = None
    hours: Hours | None = None


ACTIVITY_MODELS: dict[ActivityType, type[_ActivityBase]] = {
    ActivityType.WORK_TRIAL: WorkTrialCreate,
    ActivityType.TEST_MISSION: TestMissionCreate,
    ActivityType.REPLACEMENT: ReplacementCreate,
    ActivityType.PROJECT_EVALUATION: ProjectEvaluationCreate,
    ActivityType.TRAINING: TrainingCreate,
    ActivityType.WORK_MISSION: WorkMissionCreate,
    ActivityType.TUTORING: TutoringCreate,
    ActivityType.WORK_STUDY_CONTRACT: WorkStudyContractCreate,
    ActivityType.SKILLS_ASSESSMENT: SkillsAssessmentCreate,
    ActivityType.INTERVIEW_SIMULATION: InterviewSimulationCreate,
    ActivityType.CERTIFICATION_EXAM: CertificationExamCreate,
    ActivityType.HIRING_SUPPORT: HiringSupportCreate,
    ActivityType.ONBOARDING_SUPPORT: OnboardingSupportCreate,
}

ActivityCreate = Annotated[
    WorkTrialCreate
    | TestMissionCreate
    | ReplacementCreate
    | ProjectEvaluationCreate
    | TrainingCreate
    | WorkMissionCreate
    | TutoringCreate
    | WorkStudyContractCreate
    | SkillsAssessmentCreate
    | InterviewSimulationCreate
    | CertificationExamCreate
    | HiringSupportCreate
    | OnboardingSupportCreate,
    Field(discriminator="type"),
]


class ActivityUpdate(UpdateModel):
    """Fields of the activity's own type only; the type itself never changes."""

    non_nullable: ClassVar[frozenset[str]] = frozenset({"occurred_on"})

    occurred_on: dt.date | None = None
    end_on: dt.date | None = None
    outcome: ActivityOutcome | None = None
    hours: Hours | None = None
    landlord_id: uuid.UUID | None = None
    training_mode: TrainingMode | None = None
    certifying: bool | None = None
    rncp_code: RncpCode | None = None
    competency_levels: CompetencyAssessment | None = None
    notes: Notes | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{"outcome": "positive"}]})


class Activity(EntityRead):
    candidate_id: uuid.UUID
    type: ActivityType
    phase: Phase
    occurred_on: dt.date
    end_on: dt.date | None
    outcome: ActivityOutcome | None
    hours: float | None
    landlord_id: uuid.UUID | None
    training_mode: TrainingMode | None
    certifying: bool | None
    rncp_code: str | None
    competency_levels: dict[str, int] | None
    notes: str | None
    recorded_by: str


class ActivityPage(Page[Activity]):
    pass
