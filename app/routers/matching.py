from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import Field

from app import errors
from app.domain.matching import SCORING_VERSION
from app.routers.deps import ApiRoute, AppSettings, CurrentActor, Session
from app.schemas.candidates import present
from app.schemas.common import QueryModel
from app.schemas.matching import (
    AssignmentRequest,
    AssignmentResult,
    CandidateMatch,
    CandidateMatches,
    ExcludedCandidate,
    ExcludedVacancy,
    OtherCandidates,
    ScoreBandCount,
    UnfilledVacancy,
    VacancyMatch,
    VacancyMatches,
)
from app.schemas.problems import problem_responses
from app.schemas.vacancies import Vacancy as VacancyRead
from app.services import matching, visibility
from app.services.placements import ConsentMissing, PhaseMismatch, VacancyFull, VacancyNotOpen

# Rankings sit under their resource in generated clients, and under matching in the docs.
router = APIRouter(route_class=ApiRoute)


class MatchQuery(QueryModel):
    limit: int = Field(default=50, ge=1, le=200)
    include_excluded: bool = False


@router.get(
    "/v1/vacancies/{vacancy_id}/matches",
    name="vacancies_matches",
    tags=["vacancies", "matching"],
    summary="Candidates ranked for a vacancy (a suggestion, never a decision)",
    description="Eligible candidates by score (0-100) with each criterion's points, the "
    "distance and an explanation. `include_excluded=true` adds who a hard filter removed. "
    "Administrators rank everyone, insertion staff their own candidates. A landlord ranks "
    "the people proposed to its vacancy (open or accepted placements), in its view of each, "
    "whatever the hard filters say, on the criteria that view shows (`criteria`), with a "
    "distance band only; of the other eligible people it gets counts by score band "
    "(`others`), never who; `include_excluded` is refused to it (422). People who left the "
    "path or are employed are in no one's ranking but their structure's and administrators'. "
    "A draft vacancy is ranked by administrators only: its landlord gets 409 "
    "`vacancy-not-published`, insertion staff, who do not see drafts, 404.",
    responses=problem_responses(404, 409, 422, conflicts=(visibility.RankingUnavailable,)),
)
async def vacancy_matches(
    vacancy_id: uuid.UUID,
    query: Annotated[MatchQuery, Query()],
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
) -> VacancyMatches:
    vacancy, ranking = await matching.vacancy_matches(
        session, actor, settings, vacancy_id, query.limit, query.include_excluded
    )
    people, views = ranking.rows, ranking.views
    others = ranking.others
    return VacancyMatches(
        vacancy_id=vacancy.id,
        scoring_version=SCORING_VERSION,
        weights=matching.weights_from(settings).as_dict(),
        criteria=list(ranking.criteria),
        considered=ranking.considered,
        items=[
            CandidateMatch(
                candidate=present(people[r.id], views[r.id]),
                score=r.score,
                distance_band=r.distance_band,
                distance_km=r.distance_km,
                contributions=r.contributions,
                explanation=r.explanation,
            )
            for r in ranking.items
        ],
        excluded=[
            ExcludedCandidate(candidate=present(people[e.id], views[e.id]), failed=e.failed)
            for e in ranking.excluded
        ],
        others=None
        if others is None
        else OtherCandidates(
            eligible=others.eligible,
            by_score_band=[
                ScoreBandCount(band=band, count=count)
                for band, count in others.by_score_band.items()
            ],
            count_step=visibility.COUNT_STEP,
        ),
    )


@router.get(
    "/v1/candidates/{candidate_id}/matches",
    name="candidates_matches",
    tags=["candidates", "matching"],
    summary="Open vacancies ranked for a candidate (a suggestion, never a decision)",
    responses=problem_responses(404, 422),
)
async def candidate_matches(
    candidate_id: uuid.UUID,
    query: Annotated[MatchQuery, Query()],
    session: Session,
    actor: CurrentActor,
    settings: AppSettings,
) -> CandidateMatches:
    ranking = await matching.candidate_matches(
        session, actor, settings, candidate_id, query.limit, query.include_excluded
    )
    rows = ranking.rows
    return CandidateMatches(
        candidate_id=candidate_id,
        scoring_version=SCORING_VERSION,
        weights=matching.weights_from(settings).as_dict(),
        criteria=list(ranking.criteria),
        considered=ranking.considered or 0,
        items=[
            VacancyMatch(
                vacancy=VacancyRead.model_validate(rows[r.id]),
                score=r.score,
                distance_band=r.distance_band,
                distance_km=r.distance_km,
                contributions=r.contributions,
                explanation=r.explanation,
            )
            for r in ranking.items
        ],
        excluded=[
            ExcludedVacancy(vacancy=VacancyRead.model_validate(rows[e.id]), failed=e.failed)
            for e in ranking.excluded
        ],
    )


@router.post(
    "/v1/matching/assignments",
    name="matching_assign",
    tags=["matching"],
    response_model=AssignmentResult,
    summary="The pairing of candidates to open positions that maximises the total score",
    description="Each candidate at most once, each vacancy up to its free positions, pairs "
    "under `min_score` left apart; deterministic for the same data. An exact solver works on "
    "every eligible pair when there are few, otherwise on each vacancy's best candidates and "
    "each candidate's best vacancies, widened for any vacancy left with free positions (0.9996 "
    "of the full optimum on the benchmark's national data). Each pair carries its criteria's "
    "points; `unfilled` says why each position left empty stays so. People with an open "
    "placement are not paired again. `scope.landlord_ids` name landlords: an unknown id "
    "answers 422, a structure of another kind 409 `wrong-reference-kind`. With "
    "`create_proposals`, the pairs become placements in "
    "`proposed` state in one transaction, under every placement rule.",
    responses=problem_responses(
        409,
        413,
        422,
        conflicts=(
            errors.WrongReferenceKind,
            errors.DuplicateResource,
            VacancyNotOpen,
            VacancyFull,
            ConsentMissing,
            PhaseMismatch,
        ),
    ),
)
async def assign(
    body: AssignmentRequest, session: Session, actor: CurrentActor, settings: AppSettings
) -> Response:
    scope = matching.AssignmentScope(
        departement=body.scope.departement,
        region=body.scope.region,
        landlord_ids=tuple(body.scope.landlord_ids),
        vacancy_ids=tuple(body.scope.vacancy_ids),
    )
    min_score = body.min_score if body.min_score is not None else settings.matching_min_score
    result = await matching.assign(
        session,
        actor,
        settings,
        scope,
        min_score=min_score,
        create_proposals=body.create_proposals,
    )
    # Tens of thousands of pairs: encoded in a worker thread, a slice at a time, so the
    # event loop keeps serving other requests meanwhile.
    encoded = await asyncio.to_thread(_assignment_json, result)
    return Response(encoded, media_type="application/json")


def _assignment_json(result: matching.Assignment) -> bytes:
    head = AssignmentResult(
        scoring_version=SCORING_VERSION,
        total_score=result.total_score,
        pairs=[],
        unfilled_positions=result.unfilled_positions,
        unfilled=[
            UnfilledVacancy(
                vacancy_id=u.vacancy_id,
                positions=u.positions,
                reason=u.reason,
                eligible=u.eligible,
                reaching_min_score=u.reaching_min_score,
            )
            for u in result.unfilled
        ],
        vacancies_considered=result.vacancies_considered,
        candidates_considered=result.candidates_considered,
        edges=result.edges,
        proposals_created=result.proposals_created,
    ).model_dump_json()
    # Pairs as plain dicts of AssignedPair's fields, not models: building and dumping
    # 20,000 models held the GIL for 80 ms of a national answer (tests check the answer
    # against the schema).
    slices = []
    for start in range(0, len(result.pairs), _PAIRS_PER_SLICE):
        pairs = [
            {
                "vacancy_id": str(p.vacancy_id),
                "candidate_id": str(p.candidate_id),
                "score": p.score,
                "contributions": p.contributions,
            }
            for p in result.pairs[start : start + _PAIRS_PER_SLICE]
        ]
        slices.append(json.dumps(pairs, separators=(",", ":"))[1:-1])
    marker = '"pairs":[]'
    assert marker in head
    return head.replace(marker, '"pairs":[' + ",".join(slices) + "]", 1).encode()


_PAIRS_PER_SLICE = 500
