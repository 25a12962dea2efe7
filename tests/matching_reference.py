"""The plain reference scorer: one pair at a time, no numpy, the slow and obvious way.

Used by the tests (and `make bench-matching`) to check app.domain.matching's vectorised
scorer: both must agree on every filter and, to the cent, on every score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from app.domain.enums import Phase, VacancyKind
from app.domain.matching import CARETAKER_RNCPS, CRITERIA, EARTH_RADIUS_KM, Filter, Weights
from app.domain.matching.criteria import SAME_DEPARTEMENT_DISTANCE_SCORE
from app.domain.placement_machine import PHASES_FOR_KIND


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
) -> tuple[int, dict[str, float], float, float | None]:
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

    criteria: dict[str, float] = {}
    if distance is not None:
        near = 1.0 - distance / c.max_commute_km if c.max_commute_km > 0 else 1.0
        criteria["distance"] = min(max(near, 0.0), 1.0)
    else:
        same = c.departement == v.departement
        criteria["distance"] = SAME_DEPARTEMENT_DISTANCE_SCORE if same else 0.0
    needed = {code: level for code, level in v.required_competencies.items() if level > 0}
    if needed:
        criteria["competencies"] = sum(
            min(c.competencies.get(code, 0) / level, 1.0) for code, level in needed.items()
        ) / len(needed)
    else:
        criteria["competencies"] = 1.0
    if v.required_certification:
        criteria["certification"] = _cert_status(c, v.required_certification) / 2
    else:
        best = max((_cert_status(c, r) for r in CARETAKER_RNCPS), default=0)
        criteria["certification"] = best / 2
    criteria["landlord_history"] = 1.0 if history else 0.0
    criteria["training"] = 0.7 * min(
        c.training_hours / weights.training_hours_target, 1.0
    ) + 0.3 * min(c.positive_assessments, 1)
    criteria["waiting"] = min(c.days_in_path / weights.waiting_days_target, 1.0)
    contract_ok = not c.contract_preferences or v.contract in c.contract_preferences
    hours_ok = c.max_weekly_hours is None or v.weekly_hours <= c.max_weekly_hours
    criteria["preferences"] = (float(contract_ok) + float(hours_ok)) / 2
    total = sum(weights.points.values())
    score = round(sum(weights.points[name] * 100 / total * criteria[name] for name in CRITERIA), 2)
    return mask, criteria, score, distance
