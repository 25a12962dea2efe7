"""The matching rules without a database: hard filters and soft criteria.

Every hand-computed case runs through both scorers, `score_pair_loop` (the plain
reference, tests/matching_reference.py) and app.domain.matching's `score_pairs` (numpy,
what the API uses), on the same inputs; the expected numbers are written out here from
the issue, not read from the module. A property test checks that the two agree on
random data. The solver has its own tests (test_matching_solver.py).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.competencies import COMPETENCY_CODES
from app.domain.enums import ContractType, Phase, VacancyKind
from app.domain.matching import (
    CARETAKER_RNCPS,
    CRITERIA,
    KIND_CODES,
    PHASE_CODES,
    CandidateArrays,
    Filter,
    VacancyArrays,
    Weights,
    failed_filters,
    score_pairs,
)
from app.domain.matching.features import cells
from tests.matching_reference import CandidateRecord, VacancyRecord, score_pair_loop

# Along a meridian, a great-circle distance is R * delta-latitude (in radians); with the
# mean Earth radius this places points at an exact number of km from each other.
EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180
ROUEN = (49.4431, 1.0993)
START = date(2027, 1, 4)
DEFAULT = Weights()
CONTRACT_BIT = {contract.value: i for i, contract in enumerate(ContractType)}


def north(km: float) -> tuple[float, float]:
    return ROUEN[0] + km / KM_PER_DEGREE, ROUEN[1]


# A candidate in recruitment at Rouen, ready for anything that asks nothing, and a test
# mission at the same spot asking nothing: distance 1, competencies 1 (none asked),
# certification 0, history 0, training 0, waiting 0, preferences 1 -> 25 + 25 + 5 = 55.
BASE_CANDIDATE = CandidateRecord(
    lat=ROUEN[0],
    lon=ROUEN[1],
    departement="76",
    phase=Phase.RECRUITMENT,
    available_from=None,
    max_commute_km=30,
    licence=False,
    housing=False,
    consent=True,
    competencies={},
    certifications={},
    training_hours=0,
    positive_assessments=0,
    days_in_path=0,
)
BASE_MISSION = VacancyRecord(
    lat=ROUEN[0],
    lon=ROUEN[1],
    departement="76",
    kind=VacancyKind.MISSION,
    start=START,
    housing=False,
    licence=False,
    required_certification=None,
    required_competencies={},
    contract="mission",
    weekly_hours=35,
)
BASE_JOB = replace(BASE_MISSION, kind=VacancyKind.JOB, contract="cdi")
SECURING = replace(BASE_CANDIDATE, phase=Phase.SECURING)


# --- records to arrays, the way the service lays them out ---------------------------


def to_arrays(
    cands: list[CandidateRecord], vacs: list[VacancyRecord]
) -> tuple[CandidateArrays, VacancyArrays]:
    codes = set(CARETAKER_RNCPS)
    for c in cands:
        codes.update(c.certifications)
    codes.update(v.required_certification for v in vacs if v.required_certification)
    column = {code: i for i, code in enumerate(sorted(codes))}
    deps = sorted({c.departement for c in cands} | {v.departement for v in vacs})
    dep_code = {dep: i for i, dep in enumerate(deps)}

    n = len(cands)
    competencies = np.zeros((n, len(COMPETENCY_CODES)))
    certifications = np.zeros((n, len(column)), dtype=np.int64)
    preferences = np.zeros(n, dtype=np.int64)
    for i, c in enumerate(cands):
        competencies[i] = [c.competencies.get(code, 0) for code in COMPETENCY_CODES]
        for code, status in c.certifications.items():
            certifications[i, column[code]] = 2 if status == "held" else 1
        for contract in c.contract_preferences:
            preferences[i] |= 1 << CONTRACT_BIT[contract]
    caretaker = certifications[:, [column[code] for code in CARETAKER_RNCPS]].max(axis=1)

    def nan(value: float | None) -> float:
        return math.nan if value is None else value

    candidate_arrays = CandidateArrays(
        lat=np.array([nan(c.lat) for c in cands], dtype=np.float64),
        lon=np.array([nan(c.lon) for c in cands], dtype=np.float64),
        departement=np.array([dep_code[c.departement] for c in cands], dtype=np.int64),
        phase=np.array([PHASE_CODES[c.phase] for c in cands], dtype=np.int64),
        available_from=np.array(
            [c.available_from.toordinal() if c.available_from else 0 for c in cands],
            dtype=np.int64,
        ),
        max_commute_km=np.array([c.max_commute_km for c in cands], dtype=np.float64),
        licence=np.array([c.licence for c in cands], dtype=np.bool_),
        housing=np.array([c.housing for c in cands], dtype=np.bool_),
        consent=np.array([c.consent for c in cands], dtype=np.bool_),
        competencies=competencies,
        certifications=certifications,
        caretaker_certification=caretaker,
        training_hours=np.array([c.training_hours for c in cands], dtype=np.float64),
        positive_assessments=np.array([c.positive_assessments for c in cands], dtype=np.float64),
        days_in_path=np.array([c.days_in_path for c in cands], dtype=np.float64),
        contract_preferences=preferences,
        max_weekly_hours=np.array([nan(c.max_weekly_hours) for c in cands], dtype=np.float64),
        busy=np.array([c.busy for c in cands], dtype=np.bool_),
    )
    m = len(vacs)
    required = np.zeros((m, len(COMPETENCY_CODES)))
    for j, v in enumerate(vacs):
        required[j] = [v.required_competencies.get(code, 0) for code in COMPETENCY_CODES]
    vacancy_arrays = VacancyArrays(
        lat=np.array([nan(v.lat) for v in vacs], dtype=np.float64),
        lon=np.array([nan(v.lon) for v in vacs], dtype=np.float64),
        departement=np.array([dep_code[v.departement] for v in vacs], dtype=np.int64),
        kind=np.array([KIND_CODES[v.kind] for v in vacs], dtype=np.int64),
        start=np.array([v.start.toordinal() for v in vacs], dtype=np.int64),
        housing=np.array([v.housing for v in vacs], dtype=np.bool_),
        licence=np.array([v.licence for v in vacs], dtype=np.bool_),
        required_certification=np.array(
            [column[v.required_certification] if v.required_certification else -1 for v in vacs],
            dtype=np.int64,
        ),
        required_competencies=required,
        contract=np.array([CONTRACT_BIT[v.contract] for v in vacs], dtype=np.int64),
        weekly_hours=np.array([v.weekly_hours for v in vacs], dtype=np.float64),
        landlord=np.zeros(m, dtype=np.int64),
    )
    return candidate_arrays, vacancy_arrays


@dataclass(frozen=True)
class Scored:
    mask: int
    criteria: dict[str, float]
    score: float
    distance: float | None

    @property
    def failed(self) -> set[str]:
        return set(failed_filters(self.mask))


def score(
    c: CandidateRecord,
    v: VacancyRecord,
    weights: Weights = DEFAULT,
    *,
    history: bool = False,
    open_on_vacancy: bool = False,
) -> Scored:
    """One pair through both scorers; they must agree before the numbers are checked."""
    mask, criteria, total, distance = score_pair_loop(c, v, weights, history, open_on_vacancy)
    cands, vacs = to_arrays([c], [v])
    one = np.zeros(1, dtype=np.int64)
    fast = score_pairs(
        cands, vacs, one, one, weights, np.array([history]), np.array([open_on_vacancy])
    )
    assert int(fast.mask[0]) == mask
    assert {name: float(fast.criteria[name][0]) for name in CRITERIA} == pytest.approx(
        criteria, abs=1e-9
    )
    assert abs(float(fast.score[0]) - total) <= 0.01 + 1e-9
    if distance is None:
        assert math.isnan(fast.distance_km[0])
        assert bool(fast.same_departement_fallback[0])
    else:
        assert float(fast.distance_km[0]) == pytest.approx(distance, abs=1e-9)
        assert not bool(fast.same_departement_fallback[0])
    return Scored(mask, criteria, total, distance)


# --- the base pair ---------------------------------------------------------------------


def test_base_pair_passes_every_filter_and_scores_55() -> None:
    got = score(BASE_CANDIDATE, BASE_MISSION)
    assert got.mask == 0
    assert got.failed == set()
    assert got.criteria == {
        "distance": 1.0,
        "competencies": 1.0,
        "certification": 0.0,
        "landlord_history": 0.0,
        "training": 0.0,
        "waiting": 0.0,
        "preferences": 1.0,
    }
    assert got.score == 55.0
    assert got.distance == pytest.approx(0.0, abs=1e-9)


def test_the_filter_bits_have_distinct_names() -> None:
    assert failed_filters(0) == []
    every = sum(Filter.NAMES)
    assert sorted(failed_filters(every)) == sorted(
        [
            "phase",
            "availability",
            "distance",
            "onsite_housing",
            "driving_licence",
            "certification",
            "consent",
            "conflicting_placement",
        ]
    )


# --- hard filters: one failing at a time -------------------------------------------------

FAR_31 = north(31)
HARD_FILTER_CASES: list[tuple[str, CandidateRecord, VacancyRecord, dict[str, bool], set[str]]] = [
    ("securing on a mission", SECURING, BASE_MISSION, {}, {"phase"}),
    ("recruitment on a job", BASE_CANDIDATE, BASE_JOB, {}, {"phase"}),
    (
        "support on a job",
        replace(BASE_CANDIDATE, phase=Phase.SUPPORT),
        BASE_JOB,
        {},
        {"phase"},
    ),
    (
        "employed on a mission",
        replace(BASE_CANDIDATE, phase=Phase.EMPLOYED),
        BASE_MISSION,
        {},
        {"phase"},
    ),
    ("exited on a job", replace(BASE_CANDIDATE, phase=Phase.EXITED), BASE_JOB, {}, {"phase"}),
    (
        "available the day after the start",
        replace(BASE_CANDIDATE, available_from=START + timedelta(days=1)),
        BASE_MISSION,
        {},
        {"availability"},
    ),
    (
        "31 km away with a 30 km commute",
        BASE_CANDIDATE,
        replace(BASE_MISSION, lat=FAR_31[0], lon=FAR_31[1]),
        {},
        {"distance"},
    ),
    (
        "commute of 0 km, vacancy 1 km away",
        replace(BASE_CANDIDATE, max_commute_km=0),
        replace(BASE_MISSION, lat=north(1)[0]),
        {},
        {"distance"},
    ),
    (
        "candidate without coordinates in another département",
        replace(BASE_CANDIDATE, lat=None, lon=None, departement="27"),
        BASE_MISSION,
        {},
        {"distance"},
    ),
    (
        "vacancy without coordinates in another département",
        BASE_CANDIDATE,
        replace(BASE_MISSION, lat=None, lon=None, departement="69"),
        {},
        {"distance"},
    ),
    (
        "housing required, not accepted",
        BASE_CANDIDATE,
        replace(BASE_MISSION, housing=True),
        {},
        {"onsite_housing"},
    ),
    (
        "licence required, not held",
        BASE_CANDIDATE,
        replace(BASE_MISSION, licence=True),
        {},
        {"driving_licence"},
    ),
    (
        "certification required, none",
        BASE_CANDIDATE,
        replace(BASE_MISSION, required_certification="RNCP40892"),
        {},
        {"certification"},
    ),
    (
        "certification required, another caretaker one held",
        replace(BASE_CANDIDATE, certifications={"RNCP40262": "held"}),
        replace(BASE_MISSION, required_certification="RNCP40892"),
        {},
        {"certification"},
    ),
    ("no consent", replace(BASE_CANDIDATE, consent=False), BASE_MISSION, {}, {"consent"}),
    (
        "open placement on this vacancy",
        BASE_CANDIDATE,
        BASE_MISSION,
        {"open_on_vacancy": True},
        {"conflicting_placement"},
    ),
    (
        "busy with an accepted or started job",
        replace(SECURING, busy=True),
        BASE_JOB,
        {},
        {"conflicting_placement"},
    ),
    (
        "no consent and no licence",
        replace(BASE_CANDIDATE, consent=False),
        replace(BASE_MISSION, licence=True),
        {},
        {"consent", "driving_licence"},
    ),
    (
        "four at once: securing, late, too far, unhoused",
        replace(SECURING, available_from=START + timedelta(days=30)),
        replace(BASE_MISSION, housing=True, lat=FAR_31[0], lon=FAR_31[1]),
        {},
        {"phase", "availability", "distance", "onsite_housing"},
    ),
]


@pytest.mark.parametrize(
    ("candidate", "vacancy", "flags", "expected"),
    [case[1:] for case in HARD_FILTER_CASES],
    ids=[case[0] for case in HARD_FILTER_CASES],
)
def test_hard_filter_fails(
    candidate: CandidateRecord,
    vacancy: VacancyRecord,
    flags: dict[str, bool],
    expected: set[str],
) -> None:
    got = score(candidate, vacancy, **flags)
    assert got.failed == expected
    bits = {name: bit for bit, name in Filter.NAMES.items()}
    assert got.mask == sum(bits[name] for name in expected)


HARD_FILTER_PASSES: list[tuple[str, CandidateRecord, VacancyRecord]] = [
    ("support on a mission", replace(BASE_CANDIDATE, phase=Phase.SUPPORT), BASE_MISSION),
    ("securing on a job", SECURING, BASE_JOB),
    ("available on the start day", replace(BASE_CANDIDATE, available_from=START), BASE_MISSION),
    (
        "available long before",
        replace(BASE_CANDIDATE, available_from=date(2026, 1, 1)),
        BASE_MISSION,
    ),
    ("29.99 km with a 30 km commute", BASE_CANDIDATE, replace(BASE_MISSION, lat=north(29.99)[0])),
    (
        "candidate without coordinates, same département",
        replace(BASE_CANDIDATE, lat=None, lon=None),
        BASE_MISSION,
    ),
    (
        "vacancy without coordinates, same département, even far",
        replace(BASE_CANDIDATE, lat=north(200)[0]),
        replace(BASE_MISSION, lat=None, lon=None),
    ),
    (
        "housing required and accepted",
        replace(BASE_CANDIDATE, housing=True),
        replace(BASE_MISSION, housing=True),
    ),
    (
        "licence required and held",
        replace(BASE_CANDIDATE, licence=True),
        replace(BASE_MISSION, licence=True),
    ),
    (
        "required certification in progress",
        replace(BASE_CANDIDATE, certifications={"RNCP40892": "in_progress"}),
        replace(BASE_MISSION, required_certification="RNCP40892"),
    ),
    (
        "required certification held",
        replace(BASE_CANDIDATE, certifications={"RNCP40892": "held"}),
        replace(BASE_MISSION, required_certification="RNCP40892"),
    ),
]


@pytest.mark.parametrize(
    ("candidate", "vacancy"),
    [case[1:] for case in HARD_FILTER_PASSES],
    ids=[case[0] for case in HARD_FILTER_PASSES],
)
def test_hard_filter_passes(candidate: CandidateRecord, vacancy: VacancyRecord) -> None:
    assert score(candidate, vacancy).failed == set()


# --- soft criteria ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("km", "commute", "expected", "total"),
    [
        (0, 30, 1.0, 55.0),
        (7.5, 30, 0.75, 48.75),
        (15, 30, 0.5, 42.5),
        (29.99, 30, 0.0, 30.0),
        (20, 40, 0.5, 42.5),
        (0, 0, 1.0, 55.0),
    ],
)
def test_distance_criterion(km: float, commute: float, expected: float, total: float) -> None:
    got = score(
        replace(BASE_CANDIDATE, max_commute_km=commute),
        replace(BASE_MISSION, lat=north(km)[0]),
    )
    assert got.mask == 0
    assert got.distance == pytest.approx(km, abs=1e-6)
    # 29.99 of 30 km leaves 0.0003: zero at the commute limit, to the rounding.
    assert got.criteria["distance"] == pytest.approx(expected, abs=5e-4)
    assert got.score == pytest.approx(total, abs=0.011)


def test_distance_at_the_commute_limit_scores_zero() -> None:
    """Just inside the limit the criterion is ~0; just beyond, the filter removes it."""
    inside = score(BASE_CANDIDATE, replace(BASE_MISSION, lat=north(29.9999)[0]))
    assert inside.mask == 0
    assert inside.criteria["distance"] == pytest.approx(0.0, abs=1e-5)
    beyond = score(BASE_CANDIDATE, replace(BASE_MISSION, lat=north(30.001)[0]))
    assert beyond.failed == {"distance"}
    assert beyond.criteria["distance"] == 0.0


@pytest.mark.parametrize(
    ("candidate", "vacancy"),
    [
        (replace(BASE_CANDIDATE, lat=None, lon=None), BASE_MISSION),
        (BASE_CANDIDATE, replace(BASE_MISSION, lat=None, lon=None)),
        (replace(BASE_CANDIDATE, lat=None, lon=None), replace(BASE_MISSION, lat=None, lon=None)),
    ],
    ids=["candidate without", "vacancy without", "neither"],
)
def test_without_coordinates_the_same_departement_counts_half(
    candidate: CandidateRecord, vacancy: VacancyRecord
) -> None:
    got = score(candidate, vacancy)
    assert got.mask == 0
    assert got.distance is None
    assert got.criteria["distance"] == 0.5
    assert got.score == 42.5  # 12.5 + 25 + 5


def test_without_coordinates_another_departement_counts_zero() -> None:
    got = score(replace(BASE_CANDIDATE, lat=None, lon=None, departement="27"), BASE_MISSION)
    assert got.failed == {"distance"}
    assert got.criteria["distance"] == 0.0


NEEDED = {"cleaning_hygiene": 2, "tenant_welcome": 2, "mediation": 3}


@pytest.mark.parametrize(
    ("levels", "needed", "expected"),
    [
        ({}, {}, 1.0),
        ({"cleaning_hygiene": 3}, {}, 1.0),
        ({}, NEEDED, 0.0),
        ({"safety_rounds": 3, "eco_practices": 3}, NEEDED, 0.0),
        # 3/2 capped at 1, 1/2, 0/3: (1 + 0.5 + 0) / 3
        ({"cleaning_hygiene": 3, "tenant_welcome": 1}, NEEDED, 0.5),
        ({"cleaning_hygiene": 2, "tenant_welcome": 2, "mediation": 3}, NEEDED, 1.0),
        ({"cleaning_hygiene": 3, "tenant_welcome": 3, "mediation": 3}, NEEDED, 1.0),
        # (1 + 1 + 2/3) / 3
        ({"cleaning_hygiene": 2, "tenant_welcome": 2, "mediation": 2}, NEEDED, 8 / 9),
        # a level-0 requirement is no requirement
        ({"cleaning_hygiene": 1}, {"cleaning_hygiene": 2, "mediation": 0}, 0.5),
    ],
)
def test_competency_coverage(
    levels: dict[str, int], needed: dict[str, int], expected: float
) -> None:
    got = score(
        replace(BASE_CANDIDATE, competencies=levels),
        replace(BASE_MISSION, required_competencies=needed),
    )
    assert got.mask == 0
    assert got.criteria["competencies"] == pytest.approx(expected)
    assert got.score == pytest.approx(round(55 - 25 + 25 * expected, 2), abs=0.011)


@pytest.mark.parametrize(
    ("held", "required", "expected", "failed"),
    [
        ({"RNCP40892": "held"}, None, 1.0, set()),
        ({"RNCP36455": "in_progress"}, None, 0.5, set()),
        ({}, None, 0.0, set()),
        ({"RNCP99999": "held"}, None, 0.0, set()),  # not a caretaker certification
        ({"RNCP40262": "in_progress", "RNCP23713": "held"}, None, 1.0, set()),
        ({"RNCP40892": "held"}, "RNCP40892", 1.0, set()),
        ({"RNCP40892": "in_progress"}, "RNCP40892", 0.5, set()),
        ({}, "RNCP40892", 0.0, {"certification"}),
        ({"RNCP12345": "held"}, "RNCP12345", 1.0, set()),
        ({"RNCP12345": "in_progress"}, "RNCP12345", 0.5, set()),
        # A caretaker certification does not stand in for another one that is required.
        ({"RNCP40892": "held"}, "RNCP12345", 0.0, {"certification"}),
    ],
)
def test_certification_criterion(
    held: dict[str, str], required: str | None, expected: float, failed: set[str]
) -> None:
    got = score(
        replace(BASE_CANDIDATE, certifications=held),
        replace(BASE_MISSION, required_certification=required),
    )
    assert got.failed == failed
    assert got.criteria["certification"] == expected
    assert got.score == 55 + 15 * expected


def test_landlord_history_criterion() -> None:
    without = score(BASE_CANDIDATE, BASE_MISSION, history=False)
    with_history = score(BASE_CANDIDATE, BASE_MISSION, history=True)
    assert without.criteria["landlord_history"] == 0.0
    assert with_history.criteria["landlord_history"] == 1.0
    assert with_history.mask == 0
    assert (without.score, with_history.score) == (55.0, 65.0)


@pytest.mark.parametrize(
    ("hours", "assessments", "target", "expected"),
    [
        (0, 0, 150, 0.0),
        (75, 0, 150, 0.35),
        (0, 1, 150, 0.3),
        (75, 1, 150, 0.65),
        (150, 1, 150, 1.0),
        (300, 3, 150, 1.0),
        (175, 0, 350, 0.35),
    ],
)
def test_training_criterion(hours: float, assessments: int, target: float, expected: float) -> None:
    weights = replace(DEFAULT, training_hours_target=target)
    got = score(
        replace(BASE_CANDIDATE, training_hours=hours, positive_assessments=assessments),
        BASE_MISSION,
        weights,
    )
    assert got.criteria["training"] == pytest.approx(expected)
    assert got.score == pytest.approx(55 + 10 * expected, abs=1e-9)


@pytest.mark.parametrize(
    ("days", "target", "expected"),
    [(0, 365, 0.0), (73, 365, 0.2), (365, 365, 1.0), (730, 365, 1.0), (15, 30, 0.5)],
)
def test_waiting_criterion(days: float, target: float, expected: float) -> None:
    weights = replace(DEFAULT, waiting_days_target=target)
    got = score(replace(BASE_CANDIDATE, days_in_path=days), BASE_MISSION, weights)
    assert got.criteria["waiting"] == pytest.approx(expected)
    assert got.score == pytest.approx(55 + 10 * expected, abs=1e-9)


@pytest.mark.parametrize(
    ("candidate", "vacancy", "expected"),
    [
        (BASE_CANDIDATE, BASE_MISSION, 1.0),
        (replace(BASE_CANDIDATE, contract_preferences=frozenset({"mission"})), BASE_MISSION, 1.0),
        (replace(BASE_CANDIDATE, contract_preferences=frozenset({"cdi"})), BASE_MISSION, 0.5),
        (replace(BASE_CANDIDATE, max_weekly_hours=30), BASE_MISSION, 0.5),
        (replace(BASE_CANDIDATE, max_weekly_hours=35), BASE_MISSION, 1.0),
        (
            replace(BASE_CANDIDATE, contract_preferences=frozenset({"cdi"}), max_weekly_hours=30),
            BASE_MISSION,
            0.0,
        ),
        (
            replace(SECURING, contract_preferences=frozenset({"cdi", "cdd"}), max_weekly_hours=40),
            replace(BASE_JOB, weekly_hours=39),
            1.0,
        ),
        (replace(SECURING, contract_preferences=frozenset({"cdd"})), BASE_JOB, 0.5),
    ],
    ids=[
        "no preference",
        "wanted contract",
        "other contract",
        "too many hours",
        "hours at the maximum",
        "neither",
        "job, both fit",
        "job, other contract",
    ],
)
def test_preferences_criterion(
    candidate: CandidateRecord, vacancy: VacancyRecord, expected: float
) -> None:
    got = score(candidate, vacancy)
    assert got.mask == 0
    assert got.criteria["preferences"] == expected
    assert got.score == 50 + 5 * expected


# One candidate touching every criterion: 15 km of a 30 km commute (0.5), half the
# competencies (0.5), a caretaker certification held (1), a mission with the landlord (1),
# 75 h of training and an assessment (0.35 + 0.3), 73 days waiting (0.2), a CDI wanted
# for a mission (0.5).
RICH = replace(
    BASE_CANDIDATE,
    competencies={"cleaning_hygiene": 3, "tenant_welcome": 1},
    certifications={"RNCP40892": "held"},
    training_hours=75,
    positive_assessments=1,
    days_in_path=73,
    contract_preferences=frozenset({"cdi"}),
)
RICH_VACANCY = replace(BASE_MISSION, lat=north(15)[0], required_competencies=NEEDED)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        # 12.5 + 12.5 + 15 + 10 + 6.5 + 2 + 2.5
        (DEFAULT, 61.0),
        # (0.5 + 0.5 + 1 + 1 + 0.65 + 0.2 + 0.5) / 7 * 100 = 62.142857...
        (
            Weights.of(
                distance=1,
                competencies=1,
                certification=1,
                landlord_history=1,
                training=1,
                waiting=1,
                preferences=1,
            ),
            62.14,
        ),
        # 40 * 0.5 + 20 * 1 + 20 * 0.65 + 10 * 0.2 + 10 * 0.5
        (
            Weights.of(
                distance=40,
                competencies=0,
                certification=20,
                landlord_history=0,
                training=20,
                waiting=10,
                preferences=10,
            ),
            60.0,
        ),
        # targets 75 h and 146 days: training 1.0, waiting 0.5 -> 20 + 20 + 20 + 5 + 5
        (
            Weights.of(
                distance=40,
                competencies=0,
                certification=20,
                landlord_history=0,
                training=20,
                waiting=10,
                preferences=10,
                training_hours_target=75,
                waiting_days_target=146,
            ),
            70.0,
        ),
        # relative weights: the same set doubled gives the same score
        (
            Weights.of(
                distance=80,
                competencies=0,
                certification=40,
                landlord_history=0,
                training=40,
                waiting=20,
                preferences=20,
            ),
            60.0,
        ),
        # only distance counts
        (
            Weights.of(
                distance=1,
                competencies=0,
                certification=0,
                landlord_history=0,
                training=0,
                waiting=0,
                preferences=0,
            ),
            50.0,
        ),
    ],
)
def test_exact_score_for_a_chosen_weights_set(weights: Weights, expected: float) -> None:
    got = score(RICH, RICH_VACANCY, weights, history=True)
    assert got.mask == 0
    assert got.score == pytest.approx(expected, abs=1e-9)


def test_a_batch_scores_each_pair_with_its_own_rows() -> None:
    """Several pairs at once: the rows are picked by ci/vi, not by position."""
    cands = [BASE_CANDIDATE, RICH, replace(BASE_CANDIDATE, consent=False)]
    vacs = [BASE_MISSION, RICH_VACANCY, BASE_JOB]
    ca, va = to_arrays(cands, vacs)
    ci = np.array([2, 1, 0, 1, 0], dtype=np.int64)
    vi = np.array([0, 1, 1, 2, 0], dtype=np.int64)
    history = np.array([False, True, False, False, True])
    opened = np.array([False, False, False, False, True])
    fast = score_pairs(ca, va, ci, vi, DEFAULT, history, opened)
    assert [set(failed_filters(int(m))) for m in fast.mask] == [
        {"consent"},
        set(),
        set(),
        {"phase"},
        {"conflicting_placement"},
    ]
    # 55; RICH as above, 61; the base candidate 15 km away, no competency: 12.5 + 5.
    assert fast.score.tolist()[:3] == [55.0, 61.0, 17.5]
    for p, (c, v) in enumerate(zip(ci, vi, strict=True)):
        loop = score_pair_loop(cands[c], vacs[v], DEFAULT, bool(history[p]), bool(opened[p]))
        assert int(fast.mask[p]) == loop[0]
        assert float(fast.score[p]) == pytest.approx(loop[2], abs=0.011)


# --- property: the two scorers agree on random data ------------------------------------

RNCP_POOL = [*CARETAKER_RNCPS, "RNCP12345", "RNCP99999"]
DEPS = ["76", "27", "69"]
DATES = st.dates(min_value=date(2026, 6, 1), max_value=date(2027, 6, 30))
LEVELS = st.dictionaries(st.sampled_from(COMPETENCY_CODES), st.integers(0, 3), max_size=6)
JOB_CONTRACTS = ["cdi", "cdd", "professionalisation", "apprenticeship"]


@st.composite
def coordinates(draw: Any) -> tuple[float | None, float | None]:
    if draw(st.booleans()) and draw(st.booleans()):
        return None, None
    # Around Rouen: from 0 to ~130 km apart, both sides of typical commutes.
    return draw(st.floats(48.9, 49.9)), draw(st.floats(0.4, 1.8))


@st.composite
def candidates(draw: Any) -> CandidateRecord:
    lat, lon = draw(coordinates())
    return CandidateRecord(
        lat=lat,
        lon=lon,
        departement=draw(st.sampled_from(DEPS)),
        phase=draw(st.sampled_from(list(Phase))),
        available_from=draw(st.none() | DATES),
        max_commute_km=draw(st.integers(0, 80)),
        licence=draw(st.booleans()),
        housing=draw(st.booleans()),
        consent=draw(st.booleans()),
        competencies=draw(LEVELS),
        certifications=draw(
            st.dictionaries(
                st.sampled_from(RNCP_POOL), st.sampled_from(["held", "in_progress"]), max_size=3
            )
        ),
        training_hours=draw(st.floats(0, 400)),
        positive_assessments=draw(st.integers(0, 3)),
        days_in_path=draw(st.integers(0, 900)),
        contract_preferences=draw(st.frozensets(st.sampled_from([c.value for c in ContractType]))),
        max_weekly_hours=draw(st.none() | st.integers(10, 48)),
        busy=draw(st.booleans()),
    )


@st.composite
def vacancies(draw: Any) -> VacancyRecord:
    lat, lon = draw(coordinates())
    kind = draw(st.sampled_from(list(VacancyKind)))
    return VacancyRecord(
        lat=lat,
        lon=lon,
        departement=draw(st.sampled_from(DEPS)),
        kind=kind,
        start=draw(DATES),
        housing=draw(st.booleans()),
        licence=draw(st.booleans()),
        required_certification=draw(st.none() | st.sampled_from(RNCP_POOL)),
        required_competencies=draw(LEVELS),
        contract="mission" if kind is VacancyKind.MISSION else draw(st.sampled_from(JOB_CONTRACTS)),
        weekly_hours=draw(st.sampled_from([20, 24.5, 30, 35, 39, 42])),
    )


WEIGHTS = st.builds(
    Weights.of,
    distance=st.floats(0.5, 50),
    competencies=st.floats(0, 50),
    certification=st.floats(0, 50),
    landlord_history=st.floats(0, 50),
    training=st.floats(0, 50),
    waiting=st.floats(0, 50),
    preferences=st.floats(0, 50),
    training_hours_target=st.floats(1, 500),
    waiting_days_target=st.floats(1, 800),
)


@settings(max_examples=150, deadline=None)
@given(
    cands=st.lists(candidates(), min_size=1, max_size=6),
    vacs=st.lists(vacancies(), min_size=1, max_size=4),
    weights=st.one_of(st.just(DEFAULT), WEIGHTS),
    data=st.data(),
)
def test_vectorised_scorer_agrees_with_the_loop(
    cands: list[CandidateRecord],
    vacs: list[VacancyRecord],
    weights: Weights,
    data: st.DataObject,
) -> None:
    pairs = list(itertools.product(range(len(cands)), range(len(vacs))))
    flags = data.draw(
        st.lists(st.tuples(st.booleans(), st.booleans()), min_size=len(pairs), max_size=len(pairs))
    )
    ca, va = to_arrays(cands, vacs)
    ci = np.array([c for c, _ in pairs], dtype=np.int64)
    vi = np.array([v for _, v in pairs], dtype=np.int64)
    history = np.array([h for h, _ in flags], dtype=np.bool_)
    opened = np.array([o for _, o in flags], dtype=np.bool_)
    fast = score_pairs(ca, va, ci, vi, weights, history, opened)
    for p, (c, v) in enumerate(pairs):
        mask, criteria, total, distance = score_pair_loop(
            cands[c], vacs[v], weights, bool(history[p]), bool(opened[p])
        )
        assert int(fast.mask[p]) == mask, (p, failed_filters(mask))
        assert abs(float(fast.score[p]) - total) <= 0.01 + 1e-9
        assert 0 <= total <= 100
        assert {name: float(fast.criteria[name][p]) for name in CRITERIA} == pytest.approx(
            criteria, abs=1e-9
        )
        if distance is None:
            assert math.isnan(fast.distance_km[p])
        else:
            assert float(fast.distance_km[p]) == pytest.approx(distance, abs=1e-9)


def test_cells_read_what_2d_indexing_reads_and_refuse_a_column_past_the_matrix() -> None:
    matrix = np.arange(12).reshape(3, 4)
    rows, columns = np.array([0, 2, 1, 2]), np.array([3, 0, 1, 3])
    assert cells(matrix, rows, columns).tolist() == matrix[rows, columns].tolist()
    with pytest.raises(IndexError):
        cells(matrix, np.array([0]), np.array([4]))  # flat, it would read row 1's first cell
