"""Score (candidate, vacancy) pairs at once: hard filters and weighted soft criteria.

Pure functions over numpy arrays, one row per pair. The reference implementation, one
pair at a time in plain Python, lives in the tests, which check that both agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.domain.matching.criteria import CRITERIA, CRITERIA_RULES, CRITERION, PairDetail, Weights
from app.domain.matching.features import (
    BoolArray,
    CandidateArrays,
    FloatArray,
    IntArray,
    VacancyArrays,
)
from app.domain.matching.filters import FIXED, mask_of
from app.domain.matching.pairs import PairFacts

SCORING_VERSION = "2026-11.1"


@dataclass(slots=True)
class PairScores:
    mask: IntArray  # failed hard filters (Filter bits)
    criteria: dict[str, FloatArray]  # each criterion's value, 0-1, by name
    score: FloatArray  # 0-100, two decimals
    distance_km: FloatArray  # NaN when not computable
    same_departement_fallback: BoolArray

    def __len__(self) -> int:
        return len(self.mask)


def weighted_total(criteria: dict[str, FloatArray], scale: dict[str, float]) -> FloatArray:
    """The score on the criteria of `scale`, added in one fixed order (so the same pair
    gets the same number, to the cent, wherever it is computed), two decimals."""
    total: FloatArray | None = None
    for name in CRITERIA:
        if name in scale:
            term = criteria[name] * scale[name]
            total = term if total is None else total + term
    if total is None:
        return np.zeros(len(next(iter(criteria.values()))) if criteria else 0)
    rounded: FloatArray = np.round(total, 2)
    return rounded


def score_pairs(
    cands: CandidateArrays,
    vacs: VacancyArrays,
    ci: IntArray,
    vi: IntArray,
    weights: Weights,
    history: BoolArray,
    open_on_vacancy: BoolArray,
    *,
    candidate_units: FloatArray | None = None,
) -> PairScores:
    """Score every (cands[ci[p]], vacs[vi[p]]) pair.

    `history[p]`: the candidate completed a mission with the vacancy's landlord;
    `open_on_vacancy[p]`: the candidate already has an open placement on this vacancy.
    """
    facts = PairFacts(
        cands,
        vacs,
        ci,
        vi,
        history,
        open_on_vacancy,
        training_hours_target=weights.training_hours_target,
        waiting_days_target=weights.waiting_days_target,
        candidate_units=candidate_units,
    )
    mask = mask_of(facts)
    criteria = {rule.name: rule.value(facts) for rule in CRITERIA_RULES}
    score = weighted_total(criteria, weights.scale())
    located = facts.located
    return PairScores(mask, criteria, score, np.where(located, facts.distance_km, np.nan), ~located)


def hard_filter_mask(
    cands: CandidateArrays,
    vacs: VacancyArrays,
    ci: IntArray,
    vi: IntArray,
    open_on_vacancy: BoolArray,
    *,
    candidate_units: FloatArray | None = None,
) -> IntArray:
    """The failed hard filters of each pair, without scoring it."""
    facts = PairFacts(
        cands,
        vacs,
        ci,
        vi,
        open_on_vacancy,
        open_on_vacancy,
        training_hours_target=1,
        waiting_days_target=1,
        candidate_units=candidate_units,
    )
    mask: IntArray = mask_of(facts)
    return mask


def class_fits(
    cands: CandidateArrays, kind: int, housing: bool, licence: bool, certification: int
) -> BoolArray:
    """The candidates passing the fixed filters of a class of vacancies (kind, housing,
    licence, certification column asked or -1), by the filters' own rules."""
    n = len(cands)
    one = VacancyArrays(
        lat=np.full(1, math.nan),
        lon=np.full(1, math.nan),
        departement=np.zeros(1, dtype=np.int64),
        kind=np.array([kind], dtype=np.int64),
        start=np.zeros(1, dtype=np.int64),
        housing=np.array([housing]),
        licence=np.array([licence]),
        required_certification=np.array([certification], dtype=np.int64),
        required_competencies=np.zeros((1, cands.competencies.shape[1])),
        contract=np.zeros(1, dtype=np.int64),
        weekly_hours=np.zeros(1),
        landlord=np.zeros(1, dtype=np.int64),
    )
    no = np.zeros(n, dtype=np.bool_)
    facts = PairFacts(
        cands,
        one,
        np.arange(n),
        np.zeros(n, dtype=np.int64),
        no,
        no,
        training_hours_target=1,
        waiting_days_target=1,
    )
    fits: BoolArray = mask_of(facts, FIXED) == 0
    return fits


def points(
    scores: PairScores, weights: Weights, names: tuple[str, ...] = CRITERIA
) -> tuple[dict[str, FloatArray], FloatArray]:
    """Each named criterion's points per pair and the score on those criteria (0-100)."""
    scale = weights.scale(names)
    contributions = {name: scores.criteria[name] * scale[name] for name in names}
    if names == CRITERIA:
        return contributions, scores.score
    return contributions, weighted_total(scores.criteria, scale)


def explain(scores: PairScores, p: int, max_commute_km: float, names: frozenset[str]) -> list[str]:
    """One line per criterion of `names` that has something to say about pair p."""
    distance = scores.distance_km[p]
    detail = PairDetail(None if math.isnan(distance) else float(distance), max_commute_km)
    lines = []
    for name in CRITERIA:
        if name in names:
            line = CRITERION[name].explain(float(scores.criteria[name][p]), detail)
            if line is not None:
                lines.append(line)
    return lines
