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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from operator import attrgetter
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Row, String, cast

from app.domain.competencies import COMPETENCY_CODES
from app.domain.enums import ContractType, Phase
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
    # As text: decoded where the rows are decoded (off the event loop), not by the driver.
    cast(Vacancy.required_competencies, String).label("required_competencies"),
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


_VACANCY_NAMES = tuple(column.key or "" for column in VACANCY_COLUMNS)


Member = TypeVar("Member", bound=StrEnum)


def _by_member_and_value(codes: Mapping[Member, int]) -> dict[Any, int]:
    """Codes looked up by enum member or by its value: rows bring either (ORM objects
    members, result rows text)."""
    return {**codes, **{member.value: code for member, code in codes.items()}}


_KIND_CODES = _by_member_and_value(KIND_CODES)
_CONTRACT_CODES = _by_member_and_value(CONTRACT_CODES)


def decode_vacancies(rows: Sequence[Any], rncp: RncpIndex) -> VacancyTable:
    """Rows of VACANCY_COLUMNS (or ORM vacancies) to arrays. Certifications asked for get
    a column in `rncp` (all zero for candidates that never met them)."""
    m = len(rows)
    # Column by column: one pass to read the rows, then one list per column.
    col: dict[str, tuple[Any, ...]]
    if not m:
        col = dict.fromkeys(_VACANCY_NAMES, ())
    elif isinstance(rows[0], Row):
        # Result rows are tuples: transposed whole, named by their own fields.
        col = dict(zip(rows[0]._fields, zip(*rows, strict=True), strict=True))
    else:
        values = list(map(attrgetter(*_VACANCY_NAMES), rows))
        col = dict(zip(_VACANCY_NAMES, zip(*values, strict=True), strict=True))
    rncp.add(sorted({code for code in col["required_certification"] if code}))
    required = np.array(
        [
            [asked.get(code, 0) for code in COMPETENCY_CODES]
            for asked in map(_competency_levels, col["required_competencies"])
        ],
        dtype=np.float64,
    ).reshape(m, len(COMPETENCY_CODES))
    landlords = sorted(set(col["landlord_id"]))
    landlord_code = {landlord: i for i, landlord in enumerate(landlords)}
    arrays = VacancyArrays(
        lat=_floats(col["latitude"], m),
        lon=_floats(col["longitude"], m),
        departement=_codes(DEPARTEMENT_CODES, col["departement"], m),
        kind=_codes(_KIND_CODES, col["kind"], m),
        start=np.fromiter((d.toordinal() for d in col["start_date"]), dtype=np.int64, count=m),
        housing=np.array(col["onsite_housing"], dtype=np.bool_).reshape(m),
        licence=np.array(col["driving_licence_required"], dtype=np.bool_).reshape(m),
        required_certification=np.fromiter(
            (rncp[code] if code else -1 for code in col["required_certification"]),
            dtype=np.int64,
            count=m,
        ),
        required_competencies=required,
        contract=_codes(_CONTRACT_CODES, col["contract_type"], m),
        weekly_hours=np.array(col["weekly_hours"], dtype=np.float64).reshape(m),
        landlord=_codes(landlord_code, col["landlord_id"], m),
    )
    free = np.array(col["positions"], dtype=np.int64) - np.array(
        col["filled_positions"], dtype=np.int64
    )
    return VacancyTable(list(col["id"]), arrays, landlords, free.reshape(m))


def _competency_levels(asked: str | dict[str, int] | None) -> dict[str, int]:
    """JSON text from VACANCY_COLUMNS, a dict from an ORM vacancy."""
    if isinstance(asked, str):
        levels: dict[str, int] | None = json.loads(asked)
        return levels or {}
    return asked or {}


def _codes(codes: dict[Any, int], values: Iterable[Any], n: int) -> IntArray:
    return np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=n)


def widen_certifications(arrays: CandidateArrays, width: int) -> None:
    """Zero columns for certification codes added to the index after these rows."""
    missing = width - arrays.certifications.shape[1]
    if missing > 0:
        arrays.certifications = np.pad(arrays.certifications, ((0, 0), (0, missing)))
