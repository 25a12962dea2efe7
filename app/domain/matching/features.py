"""What the scorer knows of candidates and vacancies: one numpy row each.

Services decode database rows into these (app.services.matching.rows); tests build
them by hand. Codes (phase, kind, département, contract, certification columns) are
small integers so that every rule is an array operation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from app.domain.enums import ContractType, Phase, VacancyKind
from app.domain.geography import DEPARTEMENTS
from app.domain.placement_machine import PHASES_FOR_KIND

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def cells(matrix: npt.NDArray[np.generic], rows: IntArray, columns: IntArray) -> np.ndarray:
    """matrix[rows[p], columns[p]] for every p, through flat positions: 2-D fancy indexing
    costs about three times more on the scorer's pair arrays. A column past the matrix
    raises, as 2-D indexing does (a flat position would read the next row's cell)."""
    width = matrix.shape[1]
    if len(columns) and int(columns.max()) >= width:
        raise IndexError(f"column {int(columns.max())} is out of bounds for width {width}")
    found: np.ndarray = np.ascontiguousarray(matrix).ravel().take(rows * width + columns)
    return found


# Certifications of the caretaker trade (DOMAIN.md): held ones count for any vacancy.
CARETAKER_RNCPS = ("RNCP40892", "RNCP36455", "RNCP40262", "RNCP23713")

PHASE_CODES = {phase: code for code, phase in enumerate(Phase)}
KIND_CODES = {VacancyKind.JOB: 0, VacancyKind.MISSION: 1}
DEPARTEMENT_CODES = {dep: i for i, dep in enumerate(sorted(DEPARTEMENTS))}
CONTRACT_CODES = {contract: i for i, contract in enumerate(ContractType)}


def _allowed_table() -> BoolArray:
    """ALLOWED[kind code, phase code]: the placement machine's phases per kind, as codes."""
    table = np.zeros((len(KIND_CODES), len(PHASE_CODES)), dtype=np.bool_)
    for kind, phases in PHASES_FOR_KIND.items():
        for phase in phases:
            table[KIND_CODES[kind], PHASE_CODES[phase]] = True
    return table


ALLOWED_PHASES = _allowed_table()


@dataclass(slots=True)
class CandidateArrays:
    """Matching features of candidates, one row each."""

    lat: FloatArray  # NaN when unknown
    lon: FloatArray
    departement: IntArray  # DEPARTEMENT_CODES
    phase: IntArray  # PHASE_CODES
    available_from: IntArray  # date ordinal; 0 when available now
    max_commute_km: FloatArray
    licence: BoolArray
    housing: BoolArray
    consent: BoolArray
    competencies: FloatArray  # (n, len(COMPETENCY_CODES))
    certifications: IntArray  # (n, k): 2 held, 1 in progress, 0 none; columns: rncp index
    caretaker_certification: IntArray  # best status over CARETAKER_RNCPS
    training_hours: FloatArray
    positive_assessments: FloatArray
    days_in_path: FloatArray
    contract_preferences: IntArray  # bit mask of CONTRACT_CODES; 0: any
    max_weekly_hours: FloatArray  # NaN: any
    busy: BoolArray  # holds an accepted or started job: not available for another

    def __len__(self) -> int:
        return len(self.lat)

    def take(self, index: IntArray) -> CandidateArrays:
        """The rows `index`, as arrays of their own."""
        return CandidateArrays(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass(slots=True)
class VacancyArrays:
    lat: FloatArray
    lon: FloatArray
    departement: IntArray
    kind: IntArray  # KIND_CODES
    start: IntArray  # date ordinal
    housing: BoolArray
    licence: BoolArray
    required_certification: IntArray  # rncp index; -1 none
    required_competencies: FloatArray  # (m, len(COMPETENCY_CODES)); 0: not required
    contract: IntArray  # CONTRACT_CODES
    weekly_hours: FloatArray
    landlord: IntArray  # a code per landlord

    def __len__(self) -> int:
        return len(self.lat)

    def take(self, index: IntArray) -> VacancyArrays:
        return VacancyArrays(**{f.name: getattr(self, f.name)[index] for f in fields(self)})
