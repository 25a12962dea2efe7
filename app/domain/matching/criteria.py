"""The soft criteria of a match, as named data: one entry per criterion.

A criterion is a name, a default weight, a value per pair between 0 and 1 computed from
the pair's facts, and the line that explains it. Adding one is adding an entry here
(and, for callers that may not see everything, its source fields in
app.services.visibility, whose test asks for them). Nothing reads a criterion by position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from app.domain.matching.features import FloatArray, cells
from app.domain.matching.pairs import PairFacts

# Without coordinates on both sides, a shared département counts as this close.
SAME_DEPARTEMENT_DISTANCE_SCORE = 0.5

# min(level / need, 1) for need, level in 0..3, as one lookup: index need * 4 + level.
COVERAGE = np.array(
    [0.0 if need == 0 else min(level / need, 1.0) for need in range(4) for level in range(4)],
    dtype=np.float64,
)


@dataclass(frozen=True, slots=True)
class PairDetail:
    """What the explanation of one pair may quote."""

    distance_km: float | None
    max_commute_km: float


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    default_weight: float
    value: Callable[[PairFacts], FloatArray]
    explain: Callable[[float, PairDetail], str | None]


def _distance(f: PairFacts) -> FloatArray:
    commute = f.commute_km
    with np.errstate(invalid="ignore", divide="ignore"):
        closeness = np.clip(1.0 - f.distance_km / commute, 0.0, 1.0)
    closeness = np.where(commute > 0, closeness, 1.0)
    fallback = f.same_departement * SAME_DEPARTEMENT_DISTANCE_SCORE
    return np.where(f.located, closeness, fallback)


def _explain_distance(_value: float, pair: PairDetail) -> str:
    if pair.distance_km is None:
        return "no coordinates on one side: matched on the same département"
    return f"{pair.distance_km:.1f} km away, within a {pair.max_commute_km:g} km commute"


def _competencies(f: PairFacts) -> FloatArray:
    """Mean of min(level / need, 1) over the competencies the vacancy asks for; 1 when it
    asks for none. A vacancy asks for few: only its required columns are read per pair."""
    needed = f.vacs.required_competencies.astype(np.int64)
    required_count = (needed > 0).sum(axis=1)
    k = max(int(required_count.max(initial=0)), 1)
    codes = np.argsort(-needed, axis=1, kind="stable")[:, :k]
    need_rows = np.take_along_axis(needed, codes, axis=1) * 4  # COVERAGE's row per need
    # One required column at a time: a (pairs x k) gather and a copy of the store's
    # matrix cost several times more.
    covered = np.zeros(len(f))
    for j in range(k):
        code, need = np.ascontiguousarray(codes[:, j]), np.ascontiguousarray(need_rows[:, j])
        have = cells(f.cands.competencies, f.ci, code.take(f.vi)).astype(np.intp)
        covered += COVERAGE.take(need.take(f.vi) + have)
    count = required_count[f.vi]
    result: FloatArray = np.where(count > 0, covered / np.maximum(count, 1), 1.0)
    return result


def _explain_competencies(value: float, _pair: PairDetail) -> str | None:
    return "some required competencies are below the level asked" if value < 1 else None


def _certification(f: PairFacts) -> FloatArray:
    """The certification asked for, else the best caretaker one: held 1, in progress 0.5."""
    best = np.where(
        f.required_certification >= 0,
        f.required_status,
        f.cands.caretaker_certification[f.ci],
    )
    result: FloatArray = best * 0.5
    return result


def _explain_certification(value: float, _pair: PairDetail) -> str | None:
    if value == 1:
        return "certification held"
    if value == 0.5:
        return "certification in progress"
    return None


def _landlord_history(f: PairFacts) -> FloatArray:
    return f.history.astype(np.float64)


def _explain_landlord_history(value: float, _pair: PairDetail) -> str | None:
    return "completed a mission with this landlord" if value == 1 else None


def _training(f: PairFacts) -> FloatArray:
    hours = np.minimum(f.cands.training_hours[f.ci] * (1.0 / f.training_hours_target), 1.0)
    assessed = np.minimum(f.cands.positive_assessments[f.ci], 1.0)
    result: FloatArray = 0.7 * hours + 0.3 * assessed
    return result


def _waiting(f: PairFacts) -> FloatArray:
    result: FloatArray = np.minimum(f.cands.days_in_path[f.ci] * (1.0 / f.waiting_days_target), 1.0)
    return result


def _preferences(f: PairFacts) -> FloatArray:
    """Half for a contract type the person wants (or no preference), half for hours
    within their maximum (or none)."""
    prefs = f.cands.contract_preferences[f.ci]
    contract_ok = (prefs == 0) | ((prefs >> f.vacs.contract[f.vi]) & 1).astype(np.bool_)
    max_hours = f.cands.max_weekly_hours[f.ci]
    hours_ok = np.isnan(max_hours) | (f.vacs.weekly_hours[f.vi] <= max_hours)
    result: FloatArray = (contract_ok.astype(np.float64) + hours_ok) * 0.5
    return result


def _unexplained(_value: float, _pair: PairDetail) -> None:
    return None


CRITERIA_RULES: tuple[Criterion, ...] = (
    Criterion("distance", 25, _distance, _explain_distance),
    Criterion("competencies", 25, _competencies, _explain_competencies),
    Criterion("certification", 15, _certification, _explain_certification),
    Criterion("landlord_history", 10, _landlord_history, _explain_landlord_history),
    Criterion("training", 10, _training, _unexplained),
    Criterion("waiting", 10, _waiting, _unexplained),
    Criterion("preferences", 5, _preferences, _unexplained),
)
CRITERIA: tuple[str, ...] = tuple(c.name for c in CRITERIA_RULES)
CRITERION = MappingProxyType({c.name: c for c in CRITERIA_RULES})


def _default_points() -> Mapping[str, float]:
    return MappingProxyType({c.name: c.default_weight for c in CRITERIA_RULES})


@dataclass(frozen=True, slots=True)
class Weights:
    """Relative weights of the criteria, by name (scores are normalised to 0-100), and
    the thresholds two criteria saturate at."""

    points: Mapping[str, float] = field(default_factory=_default_points)
    training_hours_target: float = 150
    waiting_days_target: float = 365

    def __post_init__(self) -> None:
        unknown = set(self.points) - set(CRITERIA)
        if unknown:
            raise ValueError(f"unknown criteria: {sorted(unknown)}")
        # Criteria not given keep their default weight.
        merged = {c.name: float(self.points.get(c.name, c.default_weight)) for c in CRITERIA_RULES}
        object.__setattr__(self, "points", MappingProxyType(merged))

    @classmethod
    def of(
        cls,
        *,
        training_hours_target: float = 150,
        waiting_days_target: float = 365,
        **points: float,
    ) -> Weights:
        return cls(points, training_hours_target, waiting_days_target)

    def scale(self, names: tuple[str, ...] = CRITERIA) -> dict[str, float]:
        """Points per unit of each named criterion, so that they add up to 100."""
        total = sum(self.points[name] for name in names)
        factor = 100.0 / total if total > 0 else 0.0
        return {name: self.points[name] * factor for name in names}

    def as_dict(self) -> dict[str, float]:
        return {
            **self.points,
            "training_hours_target": self.training_hours_target,
            "waiting_days_target": self.waiting_days_target,
        }
