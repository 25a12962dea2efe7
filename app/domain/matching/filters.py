"""Hard filters: a pair failing any of them is never ranked as eligible nor assigned.

Each filter is a named bit of a pair's mask (a pair passes when its mask is 0) and one
function of the pair's facts; `FIXED` are those that depend on the vacancy only through
its kind, housing, licence and certification asked, so that candidates can be sorted
out per class of vacancies before any pair is formed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.domain.matching.features import ALLOWED_PHASES, BoolArray, cells
from app.domain.matching.pairs import PairFacts


class Filter:
    """Bits of a pair's mask."""

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


@dataclass(frozen=True, slots=True)
class HardFilter:
    bit: int
    fails: Callable[[PairFacts], BoolArray]


def _phase(f: PairFacts) -> BoolArray:
    """The placement machine's phases per kind of vacancy."""
    allowed: BoolArray = cells(ALLOWED_PHASES, f.vacs.kind.take(f.vi), f.cands.phase.take(f.ci))
    return ~allowed


def _availability(f: PairFacts) -> BoolArray:
    available = f.cands.available_from[f.ci]
    late: BoolArray = (available != 0) & (available > f.vacs.start[f.vi])
    return late


def _distance(f: PairFacts) -> BoolArray:
    """Beyond the person's commute; without coordinates, another département."""
    with np.errstate(invalid="ignore"):
        near = np.where(f.located, f.distance_km <= f.commute_km, f.same_departement)
    return ~near


def _housing(f: PairFacts) -> BoolArray:
    return f.vacs.housing[f.vi] & ~f.cands.housing[f.ci]


def _licence(f: PairFacts) -> BoolArray:
    return f.vacs.licence[f.vi] & ~f.cands.licence[f.ci]


def _certification(f: PairFacts) -> BoolArray:
    """Asked for and neither held nor in progress."""
    missing: BoolArray = (f.required_certification >= 0) & (f.required_status == 0)
    return missing


def _consent(f: PairFacts) -> BoolArray:
    return ~f.cands.consent[f.ci]


def _placement(f: PairFacts) -> BoolArray:
    """Already open on this vacancy, or holding an accepted or started job."""
    return f.open_on_vacancy | f.cands.busy[f.ci]


HARD_FILTERS: tuple[HardFilter, ...] = (
    HardFilter(Filter.PHASE, _phase),
    HardFilter(Filter.AVAILABILITY, _availability),
    HardFilter(Filter.DISTANCE, _distance),
    HardFilter(Filter.HOUSING, _housing),
    HardFilter(Filter.LICENCE, _licence),
    HardFilter(Filter.CERTIFICATION, _certification),
    HardFilter(Filter.CONSENT, _consent),
    HardFilter(Filter.PLACEMENT, _placement),
)
FIXED = Filter.PHASE | Filter.HOUSING | Filter.LICENCE | Filter.CERTIFICATION | Filter.CONSENT


def mask_of(facts: PairFacts, bits: int = sum(Filter.NAMES)) -> np.ndarray:
    """The failed filters of each pair, among `bits`."""
    mask = np.zeros(len(facts), dtype=np.int64)
    for rule in HARD_FILTERS:
        if rule.bit & bits:
            np.bitwise_or(mask, rule.bit, out=mask, where=rule.fails(facts))
    return mask


def failed_filters(mask: int) -> list[str]:
    return [name for bit, name in Filter.NAMES.items() if mask & bit]
