"""Candidate-vacancy scoring: hard filters and weighted soft criteria, pure functions.

Two implementations of one rule set: `score_pairs` works on numpy arrays, one row per
(candidate, vacancy) pair, and serves the API; `score_pair_loop` is the plain Python
reference, one pair at a time. Tests (and the benchmark) check that they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from app.domain.enums import Phase, VacancyKind
from app.domain.placement_machine import PHASES_FOR_KIND

SCORING_VERSION = "2026-11.1"
EARTH_RADIUS_KM = 6371.0088
# Certifications of the caretaker trade (DOMAIN.md): held ones count for any vacancy.
CARETAKER_RNCPS = ("RNCP40892", "RNCP36455", "RNCP40262", "RNCP23713")
# Without coordinates on both sides, a shared département counts as this close.
SAME_DEPARTEMENT_DISTANCE_SCORE = 0.5

PHASE_CODES = {phase: code for code, phase in enumerate(Phase)}
KIND_CODES = {VacancyKind.JOB: 0, VacancyKind.MISSION: 1}

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


def unit_vectors(lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Points on the unit sphere: (n, 3). The great-circle distance between two points is
    2R asin(|u - v| / 2), the same number haversine gives, computed once per point."""
    phi, lam = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)))


def great_circle_km(chord: Any) -> Any:
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(chord * 0.5, 1.0))


# min(level / need, 1) for need, level in 0..3, as one lookup: index need * 4 + level.
COVERAGE = np.array(
    [0.0 if need == 0 else min(level / need, 1.0) for need in range(4) for level in range(4)],
    dtype=np.float64,
)


def _allowed_table() -> BoolArray:
    table = np.zeros((2, len(PHASE_CODES)), dtype=np.bool_)
    for kind, phases in PHASES_FOR_KIND.items():
        for phase in phases:
            table[KIND_CODES[kind], PHASE_CODES[phase]] = True
    return table


ALLOWED_TABLE = _allowed_table()


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
    Per-vacancy quantities are computed once per vacancy, then gathered per pair.
    """
    n = len(ci)
    u8 = np.uint8
    mask = (~ALLOWED_TABLE[vacs.kind[vi], cands.phase[ci]]).astype(u8) * u8(Filter.PHASE)
    available = cands.available_from[ci]
    mask |= ((available != 0) & (available > vacs.start[vi])).astype(u8) * u8(Filter.AVAILABILITY)

    located = ~(np.isnan(cands.lat[ci]) | np.isnan(vacs.lat[vi]))
    cu, vu = unit_vectors(cands.lat, cands.lon), unit_vectors(vacs.lat, vacs.lon)
    dx = cu[:, 0][ci] - vu[:, 0][vi]
    dy = cu[:, 1][ci] - vu[:, 1][vi]
    dz = cu[:, 2][ci] - vu[:, 2][vi]
    with np.errstate(invalid="ignore"):
        distance = great_circle_km(np.sqrt(dx * dx + dy * dy + dz * dz))
    commute = cands.max_commute_km[ci]
    same_dep = cands.departement[ci] == vacs.departement[vi]
    with np.errstate(invalid="ignore"):
        near = np.where(located, distance <= commute, same_dep)
    mask |= (~near).astype(u8) * u8(Filter.DISTANCE)
    mask |= (vacs.housing[vi] & ~cands.housing[ci]).astype(u8) * u8(Filter.HOUSING)
    mask |= (vacs.licence[vi] & ~cands.licence[ci]).astype(u8) * u8(Filter.LICENCE)
    required = vacs.required_certification[vi]
    has_required = required >= 0
    if cands.certifications.shape[1]:
        required_status = np.where(
            has_required, cands.certifications[ci, np.maximum(required, 0)], 0
        )
    else:
        required_status = np.zeros(n, dtype=np.int64)
    mask |= (has_required & (required_status == 0)).astype(u8) * u8(Filter.CERTIFICATION)
    mask |= (~cands.consent[ci]).astype(u8) * u8(Filter.CONSENT)
    mask |= (open_on_vacancy | cands.busy[ci]).astype(u8) * u8(Filter.PLACEMENT)

    # Column-major: each criterion is written as one contiguous column.
    criteria = np.empty((n, len(CRITERIA)), dtype=np.float64, order="F")
    with np.errstate(invalid="ignore", divide="ignore"):
        by_distance = np.clip(1.0 - distance / commute, 0.0, 1.0)
    by_distance = np.where(commute > 0, by_distance, 1.0)
    criteria[:, 0] = np.where(located, by_distance, same_dep * SAME_DEPARTEMENT_DISTANCE_SCORE)
    # min(level / need, 1) summed over the required competencies, by lookup. A vacancy
    # asks for few competencies: only its k required columns are read per pair.
    needed = vacs.required_competencies.astype(np.int64)
    required_count = (needed > 0).sum(axis=1)
    k = max(int(required_count.max(initial=0)), 1)
    codes = np.argsort(-needed, axis=1, kind="stable")[:, :k]
    need_k = np.take_along_axis(needed, codes, axis=1)
    have = cands.competencies.astype(np.int64)[ci[:, None], codes[vi]]
    covered = COVERAGE[need_k[vi] * 4 + have].sum(axis=1)
    pair_count = required_count[vi]
    criteria[:, 1] = np.where(pair_count > 0, covered / np.maximum(pair_count, 1), 1.0)
    best = np.where(has_required, required_status, cands.caretaker_certification[ci])
    criteria[:, 2] = best * 0.5
    criteria[:, 3] = history
    criteria[:, 4] = 0.7 * np.minimum(
        cands.training_hours[ci] * (1.0 / weights.training_hours_target), 1.0
    ) + 0.3 * np.minimum(cands.positive_assessments[ci], 1.0)
    criteria[:, 5] = np.minimum(cands.days_in_path[ci] * (1.0 / weights.waiting_days_target), 1.0)
    prefs = cands.contract_preferences[ci]
    contract_ok = (prefs == 0) | ((prefs >> vacs.contract[vi]) & 1).astype(np.bool_)
    max_hours = cands.max_weekly_hours[ci]
    hours_ok = np.isnan(max_hours) | (vacs.weekly_hours[vi] <= max_hours)
    criteria[:, 6] = (contract_ok.astype(np.float64) + hours_ok) * 0.5

    w = weights.vector()
    score = np.round(criteria @ (w * (100.0 / w.sum())), 2)
    return PairScores(
        mask.astype(np.int64), criteria, score, np.where(located, distance, np.nan), ~located
    )


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


def _great_circle_scalar(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    def unit(lat: float, lon: float) -> tuple[float, float, float]:
        phi, lam = math.radians(lat), math.radians(lon)
        return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))

    (x1, y1, z1), (x2, y2, z2) = unit(lat1, lon1), unit(lat2, lon2)
    chord = math.sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2 + (z1 - z2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(chord / 2, 1.0))


def point_distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, on the scorer's sphere."""
    return _great_circle_scalar(lat1, lon1, lat2, lon2)


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
    if c.phase not in PHASES_FOR_KIND[v.kind]:
        mask |= Filter.PHASE
    if c.available_from is not None and c.available_from > v.start:
        mask |= Filter.AVAILABILITY
    distance = None
    if c.lat is not None and c.lon is not None and v.lat is not None and v.lon is not None:
        distance = _great_circle_scalar(c.lat, c.lon, v.lat, v.lon)
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
        sum(
            getattr(weights, name) * 100 / total * s
            for name, s in zip(CRITERIA, criteria, strict=True)
        ),
        2,
    )
    return mask, criteria, score, distance


def weights_as_dict(weights: Weights) -> dict[str, float]:
    return {f.name: getattr(weights, f.name) for f in fields(weights)}


def optimal_assignment(
    n_slots: int, n_candidates: int, edges: list[tuple[int, int, float]]
) -> list[tuple[int, int, float]]:
    """The (slot, candidate, score) triples that maximise the total score (see below)."""
    if not edges:
        return []
    slot, cand, score = (np.array(column) for column in zip(*edges, strict=True))
    rows, cols, scores = optimal_assignment_arrays(
        n_slots, n_candidates, slot.astype(np.int64), cand.astype(np.int64), score.astype(float)
    )
    return sorted((int(s), int(c), float(v)) for s, c, v in zip(rows, cols, scores, strict=True))


def _solve_by_component(graph: Any, n_slots: int) -> tuple[IntArray, IntArray]:
    """Solve each connected part of the graph on its own: territories far apart share no
    candidate, and the solver's cost grows faster than the size of what it solves."""
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

    n_cols = graph.shape[1]
    # The bipartite graph as one square graph: slots first, then the columns.
    coo = graph.tocoo()
    square = csr_array(
        (np.ones(len(coo.data)), (coo.row, n_slots + coo.col)), shape=(n_slots + n_cols,) * 2
    )
    count, labels = connected_components(square, directed=False)
    slot_labels, col_labels = labels[:n_slots], labels[n_slots:]
    order_s = np.argsort(slot_labels, kind="stable")
    order_c = np.argsort(col_labels, kind="stable")
    bounds_s = np.searchsorted(slot_labels[order_s], np.arange(count + 1))
    bounds_c = np.searchsorted(col_labels[order_c], np.arange(count + 1))
    rows_out, cols_out = [], []
    for part in range(count):
        part_rows = order_s[bounds_s[part] : bounds_s[part + 1]]
        if not len(part_rows):
            continue
        part_cols = order_c[bounds_c[part] : bounds_c[part + 1]]
        sub = graph[part_rows][:, part_cols]
        r, c = min_weight_full_bipartite_matching(csr_array(sub))
        rows_out.append(part_rows[r])
        cols_out.append(part_cols[c])
    return np.concatenate(rows_out), np.concatenate(cols_out)


def optimal_assignment_arrays(
    n_slots: int, n_candidates: int, slot: IntArray, cand: IntArray, score: FloatArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """The (slot, candidate) pairs that maximise the total score, each used at most once.

    A slot is one free position of a vacancy. Every slot also gets a private "nobody"
    option worth 0, so leaving a position empty is always possible and a full matching
    of the slots always exists: min_weight_full_bipartite_matching (LAPJVsp on the
    sparse graph) then minimises the sum of (101 - score), i.e. maximises the scores.
    Ties are broken the same way for the same input: edges are sorted first.
    """
    from scipy.sparse import csr_array

    empty = np.zeros(0, dtype=np.int64)
    if n_slots == 0 or len(slot) == 0:
        return empty, empty, np.zeros(0)
    order = np.lexsort((cand, slot))
    slot, cand, score = slot[order], cand[order], score[order]
    nobody = np.arange(n_slots, dtype=np.int64)
    graph = csr_array(
        (
            np.concatenate((101.0 - score, np.full(n_slots, 101.0))),
            (np.concatenate((slot, nobody)), np.concatenate((cand, n_candidates + nobody))),
        ),
        shape=(n_slots, n_candidates + n_slots),
    )
    rows, cols = _solve_by_component(graph, n_slots)
    real = cols < n_candidates
    rows, cols = rows[real].astype(np.int64), cols[real].astype(np.int64)
    # The score of each chosen edge: its position in the sorted edge list.
    found = np.searchsorted(slot * (n_candidates + 1) + cand, rows * (n_candidates + 1) + cols)
    return rows, cols, score[found]
