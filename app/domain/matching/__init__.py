"""Matching as pure domain code: features, hard filters, criteria, scorer, geography and
the assignment solver. Services read the database and call these; nothing here does I/O.
"""

from app.domain.matching.criteria import CRITERIA, CRITERIA_RULES, Criterion, Weights
from app.domain.matching.features import (
    CARETAKER_RNCPS,
    CONTRACT_CODES,
    DEPARTEMENT_CODES,
    KIND_CODES,
    PHASE_CODES,
    CandidateArrays,
    VacancyArrays,
)
from app.domain.matching.filters import Filter, failed_filters
from app.domain.matching.geography import EARTH_RADIUS_KM, point_distance_km
from app.domain.matching.scorer import SCORING_VERSION, PairScores, score_pairs

__all__ = [
    "CARETAKER_RNCPS",
    "CONTRACT_CODES",
    "CRITERIA",
    "CRITERIA_RULES",
    "DEPARTEMENT_CODES",
    "EARTH_RADIUS_KM",
    "KIND_CODES",
    "PHASE_CODES",
    "SCORING_VERSION",
    "CandidateArrays",
    "Criterion",
    "Filter",
    "PairScores",
    "VacancyArrays",
    "Weights",
    "failed_filters",
    "point_distance_km",
    "score_pairs",
]
