"""Random candidates and vacancies, both as records (for the plain scorer) and as arrays
(for the vectorised one): shared by the scorer tests and `make bench-matching`."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np

from app.domain.competencies import COMPETENCY_CODES
from app.domain.enums import ContractType, Phase, VacancyKind
from app.domain.matching import (
    CARETAKER_RNCPS,
    KIND_CODES,
    PHASE_CODES,
    CandidateArrays,
    VacancyArrays,
)
from tests.matching_reference import CandidateRecord, VacancyRecord

CONTRACTS = {c.value: i for i, c in enumerate(ContractType)}
DEPARTEMENTS = ["76", "69", "75", "2A", "974"]
RNCPS = sorted({*CARETAKER_RNCPS, "RNCP12345"})
TODAY = date(2026, 11, 28)


def candidate_arrays(records: Sequence[CandidateRecord]) -> CandidateArrays:
    n = len(records)
    rncp = {code: i for i, code in enumerate(RNCPS)}
    certs = np.zeros((n, len(RNCPS)), dtype=np.int64)
    for i, r in enumerate(records):
        for code, status in r.certifications.items():
            certs[i, rncp[code]] = 2 if status == "held" else 1
    caretaker = certs[:, [rncp[c] for c in CARETAKER_RNCPS]].max(axis=1) if n else np.zeros(0)
    return CandidateArrays(
        lat=np.array([math.nan if r.lat is None else r.lat for r in records], dtype=np.float64),
        lon=np.array([math.nan if r.lon is None else r.lon for r in records], dtype=np.float64),
        departement=np.array([DEPARTEMENTS.index(r.departement) for r in records]),
        phase=np.array([PHASE_CODES[r.phase] for r in records], dtype=np.int64),
        available_from=np.array(
            [r.available_from.toordinal() if r.available_from else 0 for r in records],
            dtype=np.int64,
        ),
        max_commute_km=np.array([r.max_commute_km for r in records], dtype=np.float64),
        licence=np.array([r.licence for r in records], dtype=np.bool_),
        housing=np.array([r.housing for r in records], dtype=np.bool_),
        consent=np.array([r.consent for r in records], dtype=np.bool_),
        competencies=np.array(
            [[r.competencies.get(c, 0) for c in COMPETENCY_CODES] for r in records],
            dtype=np.float64,
        ).reshape(n, len(COMPETENCY_CODES)),
        certifications=certs,
        caretaker_certification=caretaker.astype(np.int64),
        training_hours=np.array([r.training_hours for r in records], dtype=np.float64),
        positive_assessments=np.array([r.positive_assessments for r in records], dtype=np.float64),
        days_in_path=np.array([r.days_in_path for r in records], dtype=np.float64),
        contract_preferences=np.array(
            [sum(1 << CONTRACTS[c] for c in r.contract_preferences) for r in records],
            dtype=np.int64,
        ),
        max_weekly_hours=np.array(
            [math.nan if r.max_weekly_hours is None else r.max_weekly_hours for r in records],
            dtype=np.float64,
        ),
        busy=np.array([r.busy for r in records], dtype=np.bool_),
    )


def vacancy_arrays(records: Sequence[VacancyRecord]) -> VacancyArrays:
    m = len(records)
    rncp = {code: i for i, code in enumerate(RNCPS)}
    return VacancyArrays(
        lat=np.array([math.nan if r.lat is None else r.lat for r in records], dtype=np.float64),
        lon=np.array([math.nan if r.lon is None else r.lon for r in records], dtype=np.float64),
        departement=np.array([DEPARTEMENTS.index(r.departement) for r in records]),
        kind=np.array([KIND_CODES[r.kind] for r in records], dtype=np.int64),
        start=np.array([r.start.toordinal() for r in records], dtype=np.int64),
        housing=np.array([r.housing for r in records], dtype=np.bool_),
        licence=np.array([r.licence for r in records], dtype=np.bool_),
        required_certification=np.array(
            [rncp[r.required_certification] if r.required_certification else -1 for r in records],
            dtype=np.int64,
        ),
        required_competencies=np.array(
            [[r.required_competencies.get(c, 0) for c in COMPETENCY_CODES] for r in records],
            dtype=np.float64,
        ).reshape(m, len(COMPETENCY_CODES)),
        contract=np.array([CONTRACTS[r.contract] for r in records], dtype=np.int64),
        weekly_hours=np.array([r.weekly_hours for r in records], dtype=np.float64),
        landlord=np.zeros(m, dtype=np.int64),
    )


def random_candidate(rng: random.Random) -> CandidateRecord:
    located = rng.random() < 0.85
    return CandidateRecord(
        lat=rng.uniform(45.5, 46.0) if located else None,
        lon=rng.uniform(4.6, 5.1) if located else None,
        departement=rng.choice(DEPARTEMENTS[:2]),
        phase=rng.choice(list(Phase)),
        available_from=None if rng.random() < 0.5 else TODAY + timedelta(rng.randint(-30, 30)),
        max_commute_km=float(rng.choice([0, 5, 10, 20, 40])),
        licence=rng.random() < 0.5,
        housing=rng.random() < 0.5,
        consent=rng.random() < 0.85,
        competencies={c: rng.randint(0, 3) for c in COMPETENCY_CODES if rng.random() < 0.7},
        certifications={
            code: rng.choice(["held", "in_progress"]) for code in RNCPS if rng.random() < 0.25
        },
        training_hours=float(rng.choice([0, 35, 150, 400])),
        positive_assessments=rng.randint(0, 2),
        days_in_path=float(rng.randint(0, 800)),
        contract_preferences=frozenset(rng.sample(list(CONTRACTS), rng.randint(0, 2))),
        max_weekly_hours=None if rng.random() < 0.6 else float(rng.choice([20, 35])),
        busy=rng.random() < 0.05,
    )


def random_vacancy(rng: random.Random) -> VacancyRecord:
    located = rng.random() < 0.85
    kind = rng.choice(list(VacancyKind))
    return VacancyRecord(
        lat=rng.uniform(45.5, 46.0) if located else None,
        lon=rng.uniform(4.6, 5.1) if located else None,
        departement=rng.choice(DEPARTEMENTS[:2]),
        kind=kind,
        start=TODAY + timedelta(rng.randint(-10, 40)),
        housing=rng.random() < 0.3,
        licence=rng.random() < 0.3,
        required_certification=None if rng.random() < 0.6 else rng.choice(RNCPS),
        # Vacancies ask for a few competencies each, as real ones do.
        required_competencies={
            c: rng.randint(1, 3) for c in rng.sample(COMPETENCY_CODES, rng.randint(0, 3))
        },
        contract="mission" if kind is VacancyKind.MISSION else rng.choice(["cdi", "cdd"]),
        weekly_hours=float(rng.choice([24, 35, 39])),
    )


def random_instance(
    rng: random.Random, n_candidates: int, n_vacancies: int, pairs: int
) -> tuple[Any, ...]:
    c_records = [random_candidate(rng) for _ in range(n_candidates)]
    v_records = [random_vacancy(rng) for _ in range(n_vacancies)]
    ci = np.array([rng.randrange(n_candidates) for _ in range(pairs)], dtype=np.int64)
    vi = np.array([rng.randrange(n_vacancies) for _ in range(pairs)], dtype=np.int64)
    history = np.array([rng.random() < 0.1 for _ in range(pairs)], dtype=np.bool_)
    opened = np.array([rng.random() < 0.05 for _ in range(pairs)], dtype=np.bool_)
    return (
        candidate_arrays(c_records),
        vacancy_arrays(v_records),
        c_records,
        v_records,
        ci,
        vi,
        history,
        opened,
    )
