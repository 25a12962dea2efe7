"""Candidate-vacancy scoring: hard filters and weighted soft criteria, pure functions.

Two implementations of one rule set: `score_pairs` works on numpy arrays, one row per
(candidate, vacancy) pair, and serves the API; `score_pair_loop` is the plain Python
reference, one pair at a time. Tests (and the benchmark) check that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from app.domain.competencies import COMPETENCY_CODES
from app.domain.enums import Phase, VacancyKind

SCORING_VERSION = "2026-11.1"
EARTH_RADIUS_KM = 6371.0088
# Certifications of the caretaker trade (DOMAIN.md): held ones count for any vacancy.
CARETAKER_RNCPS = ("RNCP40892", "RNCP36455", "RNCP40262", "RNCP23713")
# Without coordinates on both sides, a shared département counts as this close.
SAME_DEPARTEMENT_DISTANCE_SCORE = 0.5

PHASE_CODES = {phase: code for code, phase in enumerate(Phase)}
KIND_CODES = {VacancyKind.JOB: 0, VacancyKind.MISSION: 1}
# Which phases a kind of vacancy takes (the placement rules of DOMAIN.md).
ALLOWED_PHASES = {
    0: frozenset({PHASE_CODES[Phase.SECURING]}),
    1: frozenset({PHASE_CODES[Phase.RECRUITMENT], PHASE_CODES[Phase.SUPPORT]}),
}

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Filter:
    """Hard filters, as bits of a mask: a pair passes when its mask is 0."""

    PHASE = 1
    AVAILABILITY = 2
    DISTANCE = 4
    HOUSING = 8
    LICENCE = 16
    CERTIFICATION = 32
    CONSENT = 64
    PLACEMENT = 128

    NAMES = {
        PHASE: "phase",
        AVAILABILITY: "availability",
        DISTANCE: "distance",
        HOUSING: "onsite_housing",
        LICENCE: "driving_licence",
        CERTIFICATION: "certification",
        CONSENT: "consent",
        PLACEMENT: "conflicting_placement",
    }


def failed_filters(mask: int) -> list[str]:
    return [name for bit, name in Filter.NAMES.items() if mask & bit]


@dataclass(frozen=True, slots=True)
class Weights:
    """Relative weights of the soft criteria; scores are normalised to 0-100."""

    distance: float = 25
    competencies: float = 25
    certification: float = 15
    landlord_history: float = 10
    training: float = 10
    waiting: float = 10
    preferences: float = 5
    # Thresholds the criteria saturate at.
    training_hours_target: float = 150
    waiting_days_target: float = 365

    def criteria(self) -> tuple[str, ...]:
        return CRITERIA

    def vector(self) -> FloatArray:
        return np.array([getattr(self, name) for name in CRITERIA], dtype=np.float64)


CRITERIA = (
    "distance",
    "competencies",
    "certification",
    "landlord_history",
    "training",
    "waiting",
    "preferences",
)


@dataclass(slots=True)
class CandidateArrays:
    """Matching features of candidates, one row each (see services.matching)."""

    lat: FloatArray  # NaN when unknown
    lon: FloatArray
    departement: IntArray  # a code per département, shared with the vacancies
    phase: IntArray
    available_from: IntArray  # date ordinal; 0 when available now
    max_commute_km: FloatArray
    licence: BoolArray
    housing: BoolArray
    consent: BoolArray
    competencies: FloatArray  # (n, len(COMPETENCY_CODES))
    certifications: IntArray  # (n, k): 2 held, 1 in progress, 0 none; columns = rncp index
    caretaker_certification: IntArray  # best status over CARETAKER_RNCPS
    training_hours: FloatArray
    positive_assessments: FloatArray
    days_in_path: FloatArray
    contract_preferences: IntArray  # bit mask of contract codes; 0: any
    max_weekly_hours: FloatArray  # NaN: any
    busy: BoolArray  # holds an accepted or started job: not available for another


@dataclass(slots=True)
class VacancyArrays:
    lat: FloatArray
    lon: FloatArray
    departement: IntArray
    kind: IntArray
    start: IntArray  # date ordinal
    housing: BoolArray
    licence: BoolArray
    required_certification: IntArray  # rncp index; -1 none
    required_competencies: FloatArray  # (m, len(COMPETENCY_CODES)); 0: not required
    contract: IntArray  # contract code
    weekly_hours: FloatArray
    landlord: IntArray  # landlord code


@dataclass(slots=True)
class PairScores:
    mask: IntArray  # failed hard filters
    criteria: FloatArray  # (pairs, len(CRITERIA)), each 0-1
    score: FloatArray  # 0-100
    distance_km: FloatArray  # NaN when not computable
    same_departement_fallback: BoolArray


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def score_pairs(
    cands: CandidateArrays,
    vacs: VacancyArrays,
    ci: IntArray,
    vi: IntArray,
    weights: Weights,
    history: BoolArray,
    open_on_vacancy: BoolArray,
) -> PairScores:
    """Score every (cands[ci[p]], vacs[vi[p]]) pair at once.

    `history[p]`: the candidate completed a mission with the vacancy's landlord;
    `open_on_vacancy[p]`: the candidate already has an open placement on this vacancy.
    """
    n = len(ci)
    mask = np.zeros(n, dtype=np.int64)
    kind = vacs.kind[vi]
    phase = cands.phase[ci]
    phase_ok = np.where(
        kind == 0,
        np.isin(phase, list(ALLOWED_PHASES[0])),
        np.isin(phase, list(ALLOWED_PHASES[1])),
    )
    mask |= np.where(phase_ok, 0, Filter.PHASE)
    available = cands.available_from[ci]
    mask |= np.where((available != 0) & (available > vacs.start[vi]), Filter.AVAILABILITY, 0)

    clat, clon, vlat, vlon = cands.lat[ci], cands.lon[ci], vacs.lat[vi], vacs.lon[vi]
    located = ~(np.isnan(clat) | np.isnan(vlat))
    with np.errstate(invalid="ignore"):
        distance = np.where(located, haversine_km(clat, clon, vlat, vlon), np.nan)
    commute = cands.max_commute_km[ci]
    same_dep = cands.departement[ci] == vacs.departement[vi]
    near = np.where(located, np.nan_to_num(distance, nan=np.inf) <= commute, same_dep)
    mask |= np.where(near, 0, Filter.DISTANCE)

    mask |= np.where(vacs.housing[vi] & ~cands.housing[ci], Filter.HOUSING, 0)
    mask |= np.where(vacs.licence[vi] & ~cands.licence[ci], Filter.LICENCE, 0)
    required = vacs.required_certification[vi]
    has_required = required >= 0
    cert_cols = cands.certifications.shape[1]
    if cert_cols:
        status = cands.certifications[ci, np.clip(required, 0, cert_cols - 1)]
        required_status = np.where(has_required, status, 0)
    else:
        required_status = np.zeros(n, dtype=np.int64)
    mask |= np.where(has_required & (required_status == 0), Filter.CERTIFICATION, 0)
    mask |= np.where(cands.consent[ci], 0, Filter.CONSENT)
    mask |= np.where(open_on_vacancy | cands.busy[ci], Filter.PLACEMENT, 0)

    criteria = np.zeros((n, len(CRITERIA)), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_distance = np.where(commute > 0, 1.0 - np.nan_to_num(distance, nan=0.0) / commute, 1.0)
    criteria[:, 0] = np.where(
        located,
        np.clip(by_distance, 0.0, 1.0),
        np.where(same_dep, SAME_DEPARTEMENT_DISTANCE_SCORE, 0.0),
    )
    needed = vacs.required_competencies[vi]
    levels = cands.competencies[ci]
    need_any = (needed > 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(needed > 0, np.minimum(levels / np.where(needed > 0, needed, 1), 1.0), 0.0)
    criteria[:, 1] = np.where(need_any > 0, ratio.sum(axis=1) / np.maximum(need_any, 1), 1.0)
    best = np.where(has_required, required_status, cands.caretaker_certification[ci])
    criteria[:, 2] = best / 2.0
    criteria[:, 3] = history.astype(np.float64)
    criteria[:, 4] = 0.7 * np.minimum(
        cands.training_hours[ci] / weights.training_hours_target, 1.0
    ) + 0.3 * np.minimum(cands.positive_assessments[ci], 1.0)
    criteria[:, 5] = np.minimum(cands.days_in_path[ci] / weights.waiting_days_target, 1.0)
    prefs = cands.contract_preferences[ci]
    contract_ok = (prefs == 0) | ((prefs >> vacs.contract[vi]) & 1).astype(bool)
    max_hours = cands.max_weekly_hours[ci]
    hours_ok = np.isnan(max_hours) | (vacs.weekly_hours[vi] <= max_hours)
    criteria[:, 6] = (contract_ok.astype(np.float64) + hours_ok.astype(np.float64)) / 2.0

    w = weights.vector()
    score = np.round(criteria @ w * (100.0 / w.sum()), 2)
    return PairScores(mask, criteria, score, distance, ~located)


# --- the plain reference: one pair at a time, no numpy -------------------------------


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    lat: float | None
    lon: float | None
    departement: str
    phase: Phase
    available_from: date | None
    max_commute_km: float
    licence: bool
    housing: bool
    consent: bool
    competencies: dict[str, int]
    certifications: dict[str, str]  # rncp -> "held" | "in_progress"
    training_hours: float
    positive_assessments: int
    days_in_path: float
    contract_preferences: frozenset[str] = field(default_factory=frozenset)
    max_weekly_hours: float | None = None
    busy: bool = False


@dataclass(frozen=True, slots=True)
class VacancyRecord:
    lat: float | None
    lon: float | None
    departement: str
    kind: VacancyKind
    start: date
    housing: bool
    licence: bool
    required_certification: str | None
    required_competencies: dict[str, int]
    contract: str
    weekly_hours: float


def _cert_status(record: CandidateRecord, rncp: str) -> int:
    return {"held": 2, "in_progress": 1}.get(record.certifications.get(rncp, ""), 0)


def score_pair_loop(
    c: CandidateRecord,
    v: VacancyRecord,
    weights: Weights,
    history: bool,
    open_on_vacancy: bool,
) -> tuple[int, list[float], float, float | None]:
    """(mask, criteria, score, distance_km) of one pair, the slow and obvious way."""
    mask = 0
    allowed = (Phase.SECURING,) if v.kind is VacancyKind.JOB else (Phase.RECRUITMENT, Phase.SUPPORT)
    if c.phase not in allowed:
        mask |= Filter.PHASE
    if c.available_from is not None and c.available_from > v.start:
        mask |= Filter.AVAILABILITY
    distance = None
    if c.lat is not None and c.lon is not None and v.lat is not None and v.lon is not None:
        distance = float(haversine_km(c.lat, c.lon, v.lat, v.lon))
        if distance > c.max_commute_km:
            mask |= Filter.DISTANCE
    elif c.departement != v.departement:
        mask |= Filter.DISTANCE
    if v.housing and not c.housing:
        mask |= Filter.HOUSING
    if v.licence and not c.licence:
        mask |= Filter.LICENCE
    if v.required_certification and _cert_status(c, v.required_certification) == 0:
        mask |= Filter.CERTIFICATION
    if not c.consent:
        mask |= Filter.CONSENT
    if open_on_vacancy or c.busy:
        mask |= Filter.PLACEMENT

    criteria = []
    if distance is not None:
        near = 1.0 - distance / c.max_commute_km if c.max_commute_km > 0 else 1.0
        criteria.append(min(max(near, 0.0), 1.0))
    else:
        criteria.append(SAME_DEPARTEMENT_DISTANCE_SCORE if c.departement == v.departement else 0.0)
    needed = {code: level for code, level in v.required_competencies.items() if level > 0}
    if needed:
        criteria.append(
            sum(min(c.competencies.get(code, 0) / level, 1.0) for code, level in needed.items())
            / len(needed)
        )
    else:
        criteria.append(1.0)
    if v.required_certification:
        criteria.append(_cert_status(c, v.required_certification) / 2)
    else:
        criteria.append(max((_cert_status(c, r) for r in CARETAKER_RNCPS), default=0) / 2)
    criteria.append(1.0 if history else 0.0)
    criteria.append(
        0.7 * min(c.training_hours / weights.training_hours_target, 1.0)
        + 0.3 * min(c.positive_assessments, 1)
    )
    criteria.append(min(c.days_in_path / weights.waiting_days_target, 1.0))
    contract_ok = not c.contract_preferences or v.contract in c.contract_preferences
    hours_ok = c.max_weekly_hours is None or v.weekly_hours <= c.max_weekly_hours
    criteria.append((float(contract_ok) + float(hours_ok)) / 2)
    total = sum(getattr(weights, name) for name in CRITERIA)
    score = round(
        sum(getattr(weights, name) * s for name, s in zip(CRITERIA, criteria, strict=True))
        * 100
        / total,
        2,
    )
    return mask, criteria, score, distance


def weights_as_dict(weights: Weights) -> dict[str, float]:
    return {f.name: getattr(weights, f.name) for f in fields(weights)}


COMPETENCY_INDEX = {code: i for i, code in enumerate(COMPETENCY_CODES)}


def optimal_assignment(
    n_slots: int, n_candidates: int, edges: list[tuple[int, int, float]]
) -> list[tuple[int, int, float]]:
    """The (slot, candidate) pairs that maximise the total score, each used at most once.

    A slot is one free position of a vacancy. Every slot also gets a private "nobody"
    option worth 0, so leaving a position empty is always possible and a full matching
    of the slots always exists: min_weight_full_bipartite_matching (LAPJVsp on the
    sparse graph) then minimises the sum of (101 - score), i.e. maximises the scores.
    Ties are broken the same way for the same input: edges are sorted first.
    """
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    if n_slots == 0:
        return []
    edges = sorted(edges, key=lambda e: (e[0], e[1]))
    rows = [s for s, _, _ in edges] + list(range(n_slots))
    cols = [c for _, c, _ in edges] + [n_candidates + s for s in range(n_slots)]
    costs = [101.0 - score for _, _, score in edges] + [101.0] * n_slots
    graph = csr_array(
        (np.array(costs), (np.array(rows), np.array(cols))),
        shape=(n_slots, n_candidates + n_slots),
    )
    slot_index, column_index = min_weight_full_bipartite_matching(graph)
    score_of = {(s, c): score for s, c, score in edges}
    chosen = [
        (int(s), int(c), score_of[(int(s), int(c))])
        for s, c in zip(slot_index, column_index, strict=True)
        if c < n_candidates
    ]
    return sorted(chosen)
