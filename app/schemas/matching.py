from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain.enums import DistanceBand, UnfilledReason
from app.schemas.candidates import CandidateAny
from app.schemas.common import Departement, FieldRuleError, InputModel, Region
from app.schemas.vacancies import Vacancy

Criteria = Annotated[
    dict[str, float],
    Field(
        description="Points each criterion of the ranking's `criteria` brought; they add up "
        "to the score. A criterion computed from a field the caller's view of the person "
        "hides is left out."
    ),
]


class MatchExplanation(BaseModel):
    score: float = Field(ge=0, le=100, description="0-100, on the ranking's `criteria`.")
    distance_band: DistanceBand | None = Field(
        description="Always given; null when a side has no coordinates. For a caller that "
        "may not see the person's coordinates, computed from the centre of a 0.05-degree "
        "grid cell holding them, so no placement of the vacancy tells more than that cell."
    )
    distance_km: float | None = Field(
        description="The exact distance, only for a caller that sees the person's "
        "coordinates; null otherwise, or when a side has no coordinates."
    )
    contributions: Criteria
    explanation: list[str] = Field(description="One line per criterion told.")


class CandidateMatch(MatchExplanation):
    candidate: CandidateAny


class ExcludedCandidate(BaseModel):
    candidate: CandidateAny
    failed: list[str] = Field(description="The hard filters this candidate did not pass.")


class ScoreBandCount(BaseModel):
    band: str = Field(
        examples=["60-80"], description="Scores from the lower bound to below the upper."
    )
    count: int = Field(description="Rounded down to a multiple of `count_step`.")


class OtherCandidates(BaseModel):
    """The eligible people the caller may not name: how many, in which score bands."""

    eligible: int = Field(
        description="People passing every hard filter, not named in `items`; rounded down "
        "to a multiple of `count_step`."
    )
    by_score_band: list[ScoreBandCount]
    count_step: int = Field(
        description="Counts are multiples of this: none small enough to point at someone."
    )


class VacancyMatches(BaseModel):
    """A suggestion for people to decide on: nothing is decided automatically."""

    vacancy_id: uuid.UUID
    scoring_version: str
    weights: dict[str, float]
    criteria: list[str] = Field(
        description="What every score here is computed on: every criterion, or for a "
        "landlord those its view of the people shows (scores rescaled to 0-100)."
    )
    considered: int | None = Field(
        description="Candidates read near the vacancy; null when `others` is given instead."
    )
    items: list[CandidateMatch]
    excluded: list[ExcludedCandidate] = Field(
        description="With include_excluded=true: who a hard filter removed, and why."
    )
    others: OtherCandidates | None = Field(
        description="For a landlord: the eligible people not proposed to the vacancy, as "
        "counts. Null for callers who are named everyone they may rank."
    )


class VacancyMatch(MatchExplanation):
    vacancy: Vacancy


class ExcludedVacancy(BaseModel):
    vacancy: Vacancy
    failed: list[str]


class CandidateMatches(BaseModel):
    candidate_id: uuid.UUID
    scoring_version: str
    weights: dict[str, float]
    criteria: list[str] = Field(description="What every score here is computed on.")
    considered: int
    items: list[VacancyMatch]
    excluded: list[ExcludedVacancy]


class AssignmentScope(InputModel):
    """At most one of: a département, a region, landlords, or vacancies. Empty: national."""

    non_nullable: ClassVar[frozenset[str]] = frozenset(
        {"departement", "region", "landlord_ids", "vacancy_ids"}
    )

    departement: Departement | None = None
    region: Region | None = None
    landlord_ids: list[uuid.UUID] = Field(default_factory=list, min_length=1, max_length=1000)
    vacancy_ids: list[uuid.UUID] = Field(default_factory=list, min_length=1, max_length=10000)

    # The one-scope rule in terms generated clients and validators understand.
    model_config = ConfigDict(json_schema_extra={"maxProperties": 1})

    @model_validator(mode="after")
    def _one(self) -> AssignmentScope:
        given = sorted(self.model_fields_set)
        if len(given) > 1:
            raise FieldRuleError("give one scope: " + " or ".join(given), *given)
        return self


class AssignmentRequest(InputModel):
    scope: AssignmentScope = Field(default_factory=AssignmentScope)
    min_score: float | None = Field(
        default=None, ge=0, le=100, description="Pairs below are left apart; default: setting."
    )
    create_proposals: bool = Field(
        default=False,
        description="Turn the pairs into placements in `proposed` state (one transaction).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"scope": {"departement": "76"}},
                {"scope": {"region": "84"}, "min_score": 50, "create_proposals": True},
            ]
        }
    )


class AssignedPair(BaseModel):
    vacancy_id: uuid.UUID
    candidate_id: uuid.UUID
    score: float = Field(ge=0, le=100)
    contributions: Criteria


class UnfilledVacancy(BaseModel):
    """Free positions of a vacancy the assignment leaves empty, and why."""

    vacancy_id: uuid.UUID
    positions: int = Field(ge=1, description="Free positions left empty.")
    reason: UnfilledReason = Field(
        description="`nobody_eligible`: no candidate passes the hard filters; "
        "`under_min_score`: some do, none reaches `min_score`; `better_used_elsewhere`: "
        "every one reaching it is paired with another vacancy, where the total is higher."
    )
    eligible: int = Field(description="Candidates passing the hard filters.")
    reaching_min_score: int = Field(description="Of those, how many reach `min_score`.")


class AssignmentResult(BaseModel):
    scoring_version: str
    total_score: float
    pairs: list[AssignedPair]
    unfilled_positions: int
    unfilled: list[UnfilledVacancy] = Field(
        description="Each vacancy with free positions left empty, by vacancy id."
    )
    vacancies_considered: int
    candidates_considered: int
    edges: int = Field(description="Candidate-vacancy pairs the solver weighed.")
    proposals_created: int
