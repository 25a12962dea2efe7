"""Database rows to the scorer's arrays: which columns are read, and how they decode.

Columns are read with Core selects (no ORM objects on these paths). Competency levels are
read by the database, one column each; certifications and contract preferences come as
JSON text, decoded only when not empty (most are).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import String, cast

from app.domain.competencies import COMPETENCY_CODES
from app.domain.enums import ContractType, Phase, VacancyKind
from app.domain.matching import (
    CARETAKER_RNCPS,
    CONTRACT_CODES,
    DEPARTEMENT_CODES,
    KIND_CODES,
    PHASE_CODES,
    CandidateArrays,
    VacancyArrays,
)
from app.domain.matching.features import FloatArray, IntArray
from app.models import Candidate, Vacancy

CANDIDATE_COLUMNS = (
    Candidate.id,
    Candidate.latitude,
    Candidate.longitude,
    Candidate.departement,
    Candidate.phase,
    Candidate.available_from,
    Candidate.max_commute_km,
    Candidate.has_driving_licence,
    Candidate.accepts_onsite_housing,
    Candidate.consent_to_share,
    *(
        Candidate.competencies[code].as_integer().label(f"level_{code}")
        for code in COMPETENCY_CODES
    ),
    cast(Candidate.certifications, String).label("certifications"),
    Candidate.training_hours,
    Candidate.positive_skills_assessments,
    Candidate.entered_at,
    cast(Candidate.preferred_contract_types, String).label("preferred_contract_types"),
    Candidate.max_weekly_hours,
    Candidate.version,
)
VACANCY_COLUMNS = (
    Vacancy.id,
    Vacancy.latitude,
    Vacancy.longitude,
    Vacancy.departement,
    Vacancy.kind,
    Vacancy.start_date,
    Vacancy.onsite_housing,
    Vacancy.driving_licence_required,
    Vacancy.required_certification,
    Vacancy.required_competencies,
    Vacancy.contract_type,
    Vacancy.weekly_hours,
    Vacancy.landlord_id,
    Vacancy.positions,
    Vacancy.filled_positions,
)
_RNCP_IN_TEXT = re.compile(r"RNCP[0-9]+")
_EMPTY_JSON_LIST = "[]"


class RncpIndex:
    """A column per certification code: the caretaker ones first, others as they come."""

    def __init__(self) -> None:
        self._columns: dict[str, int] = {}
        self.add(CARETAKER_RNCPS)

    def add(self, codes: Iterable[str]) -> None:
        for code in codes:
            if code not in self._columns:
                self._columns[code] = len(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __getitem__(self, code: str) -> int:
        return self._columns[code]

    def get(self, code: str) -> int | None:
        return self._columns.get(code)

    @property
    def caretaker(self) -> list[int]:
        return [self._columns[code] for code in CARETAKER_RNCPS]


def _floats(values: Iterable[float | None], n: int) -> FloatArray:
    return np.fromiter(
        (math.nan if v is None else float(v) for v in values), dtype=np.float64, count=n
    )


@dataclass(slots=True)
class DecodedCandidates:
    ids: list[uuid.UUID]
    arrays: CandidateArrays  # days_in_path as of `today`; busy all False
    entered_day: IntArray  # date ordinal of each entry into the path
    versions: IntArray


def decode_candidates(rows: Sequence[Any], rncp: RncpIndex, today: date) -> DecodedCandidates:
    """Rows of CANDIDATE_COLUMNS to arrays, column by column. Certification codes met
    for the first time are added to `rncp`."""
    n = len(rows)
    col: dict[str, Sequence[Any]] = (
        dict(zip(rows[0]._fields, zip(*rows, strict=True), strict=True))
        if n
        else {c.key: () for c in CANDIDATE_COLUMNS}
    )
    certs_text = [t for t in col["certifications"] if t != _EMPTY_JSON_LIST]
    if certs_text:
        rncp.add(sorted(set(_RNCP_IN_TEXT.findall(" ".join(certs_text)))))
    certifications = np.zeros((n, len(rncp)), dtype=np.int64)
    preferences = np.zeros(n, dtype=np.int64)
    for i, (certs, prefs) in enumerate(
        zip(col["certifications"], col["preferred_contract_types"], strict=True)
    ):
        if certs != _EMPTY_JSON_LIST:
            for entry in json.loads(certs):
                status = 2 if entry["status"] == "held" else 1
                column = rncp[entry["rncp_code"]]
                certifications[i, column] = max(certifications[i, column], status)
        if prefs != _EMPTY_JSON_LIST:
            for contract in json.loads(prefs):
                preferences[i] |= 1 << CONTRACT_CODES[ContractType(contract)]
    levels = np.column_stack(
        [_floats(col[f"level_{code}"], n) for code in COMPETENCY_CODES]
    ).reshape(n, len(COMPETENCY_CODES))
    entered_day = np.fromiter(
        (t.date().toordinal() for t in col["entered_at"]), dtype=np.int64, count=n
    )
    arrays = CandidateArrays(
        lat=_floats(col["latitude"], n),
        lon=_floats(col["longitude"], n),
        departement=np.fromiter(
            (DEPARTEMENT_CODES[d] for d in col["departement"]), dtype=np.int64, count=n
        ),
        phase=np.fromiter((PHASE_CODES[Phase(p)] for p in col["phase"]), dtype=np.int64, count=n),
        available_from=np.fromiter(
            (d.toordinal() if d else 0 for d in col["available_from"]), dtype=np.int64, count=n
        ),
        max_commute_km=_floats(col["max_commute_km"], n),
        licence=np.fromiter(col["has_driving_licence"], dtype=np.bool_, count=n),
        housing=np.fromiter(col["accepts_onsite_housing"], dtype=np.bool_, count=n),
        consent=np.fromiter(col["consent_to_share"], dtype=np.bool_, count=n),
        competencies=np.nan_to_num(levels, nan=0.0),
        certifications=certifications,
        caretaker_certification=(
            certifications[:, rncp.caretaker].max(axis=1) if n else np.zeros(0, dtype=np.int64)
        ),
        training_hours=_floats(col["training_hours"], n),
        positive_assessments=_floats(col["positive_skills_assessments"], n),
        days_in_path=(today.toordinal() - entered_day).astype(np.float64),
        contract_preferences=preferences,
        max_weekly_hours=_floats(col["max_weekly_hours"], n),
        busy=np.zeros(n, dtype=np.bool_),
    )
    versions = np.fromiter(col["version"], dtype=np.int64, count=n)
    return DecodedCandidates(list(col["id"]), arrays, entered_day, versions)


@dataclass(slots=True)
class VacancyTable:
    ids: list[uuid.UUID]
    arrays: VacancyArrays
    landlords: list[uuid.UUID]  # by landlord code
    free_positions: IntArray


def decode_vacancies(rows: Sequence[Any], rncp: RncpIndex) -> VacancyTable:
    """Rows of VACANCY_COLUMNS to arrays. Certifications asked for get a column in
    `rncp` (all zero for candidates that never met them)."""
    m = len(rows)
    rncp.add(sorted({r.required_certification for r in rows if r.required_certification}))
    required = np.zeros((m, len(COMPETENCY_CODES)), dtype=np.float64)
    for i, row in enumerate(rows):
        required[i] = [row.required_competencies.get(code, 0) for code in COMPETENCY_CODES]
    landlords = sorted({r.landlord_id for r in rows})
    landlord_code = {landlord: i for i, landlord in enumerate(landlords)}
    arrays = VacancyArrays(
        lat=_floats((r.latitude for r in rows), m),
        lon=_floats((r.longitude for r in rows), m),
        departement=np.array([DEPARTEMENT_CODES[r.departement] for r in rows], dtype=np.int64),
        kind=np.array([KIND_CODES[VacancyKind(r.kind)] for r in rows], dtype=np.int64),
        start=np.array([r.start_date.toordinal() for r in rows], dtype=np.int64),
        housing=np.array([r.onsite_housing for r in rows], dtype=np.bool_),
        licence=np.array([r.driving_licence_required for r in rows], dtype=np.bool_),
        required_certification=np.array(
            [rncp[r.required_certification] if r.required_certification else -1 for r in rows],
            dtype=np.int64,
        ),
        required_competencies=required,
        contract=np.array(
            [CONTRACT_CODES[ContractType(r.contract_type)] for r in rows], dtype=np.int64
        ),
        weekly_hours=np.array([r.weekly_hours for r in rows], dtype=np.float64),
        landlord=np.array([landlord_code[r.landlord_id] for r in rows], dtype=np.int64),
    )
    return VacancyTable(
        [r.id for r in rows],
        arrays,
        landlords,
        np.array([r.positions - r.filled_positions for r in rows], dtype=np.int64),
    )


def widen_certifications(arrays: CandidateArrays, width: int) -> None:
    """Zero columns for certification codes added to the index after these rows."""
    missing = width - arrays.certifications.shape[1]
    if missing > 0:
        arrays.certifications = np.pad(arrays.certifications, ((0, 0), (0, missing)))
