"""The facts of a batch of (candidate, vacancy) pairs that filters and criteria read.

Pair p is (cands[ci[p]], vacs[vi[p]]). Each fact is computed once, on first use, and
shared by every rule that reads it.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from app.domain.matching.features import (
    BoolArray,
    CandidateArrays,
    FloatArray,
    IntArray,
    VacancyArrays,
    cells,
)
from app.domain.matching.geography import great_circle_km, unit_vectors


class PairFacts:
    def __init__(
        self,
        cands: CandidateArrays,
        vacs: VacancyArrays,
        ci: IntArray,
        vi: IntArray,
        history: BoolArray,
        open_on_vacancy: BoolArray,
        *,
        training_hours_target: float,
        waiting_days_target: float,
        candidate_units: FloatArray | None = None,
    ) -> None:
        self.cands, self.vacs, self.ci, self.vi = cands, vacs, ci, vi
        # The candidate completed a mission with the vacancy's landlord.
        self.history = history
        # The candidate already has an open placement on this vacancy.
        self.open_on_vacancy = open_on_vacancy
        self.training_hours_target = training_hours_target
        self.waiting_days_target = waiting_days_target
        self._candidate_units = candidate_units

    def __len__(self) -> int:
        return len(self.ci)

    @cached_property
    def located(self) -> BoolArray:
        """Both sides have coordinates."""
        return ~(np.isnan(self.cands.lat[self.ci]) | np.isnan(self.vacs.lat[self.vi]))

    @cached_property
    def distance_km(self) -> FloatArray:
        """Great-circle distance; NaN when a side has no coordinates."""
        cu = self._candidate_units
        if cu is None:
            cu = unit_vectors(self.cands.lat, self.cands.lon)
        vu = unit_vectors(self.vacs.lat, self.vacs.lon)
        # Axis by axis on 1-D arrays: gathering (pairs x 3) rows costs twice as much.
        cu, vu = np.ascontiguousarray(cu.T), np.ascontiguousarray(vu.T)
        square = np.zeros(len(self))
        for axis in range(3):
            diff = cu[axis].take(self.ci) - vu[axis].take(self.vi)
            diff *= diff
            square += diff
        with np.errstate(invalid="ignore"):
            return great_circle_km(np.sqrt(square, out=square))

    @cached_property
    def commute_km(self) -> FloatArray:
        return self.cands.max_commute_km[self.ci]

    @cached_property
    def same_departement(self) -> BoolArray:
        same: BoolArray = self.cands.departement[self.ci] == self.vacs.departement[self.vi]
        return same

    @cached_property
    def required_certification(self) -> IntArray:
        """The certification column the vacancy asks for; -1 none."""
        return self.vacs.required_certification[self.vi]

    @cached_property
    def required_status(self) -> IntArray:
        """The candidate's status (0 none, 1 in progress, 2 held) for the certification
        the vacancy asks for; 0 when it asks for none."""
        required = self.required_certification
        if not self.cands.certifications.shape[1]:
            return np.zeros(len(self), dtype=np.int64)
        status = cells(self.cands.certifications, self.ci, np.maximum(required, 0))
        return np.where(required >= 0, status, 0)
