"""Where people and vacancies are: distances on one sphere, search boxes, neighbours.

Every distance of matching is the great-circle distance on a sphere of the mean Earth
radius, computed from 3-D unit vectors (the chord between two points gives the same
number haversine does). The k-d trees below work on the same vectors, so "within r km"
means the same thing to the tree, the SQL box and the scorer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.domain.matching.features import BoolArray, CandidateArrays, FloatArray, IntArray

EARTH_RADIUS_KM = 6371.0088
# Degrees of latitude per km on that sphere, with a hair of margin: a box must never cut
# off a point the scorer would accept.
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180 / 1.001
# Commutes are grouped into bands for the search: each band is searched with its upper
# bound, then the scorer applies each person's own commute (0-300 km, a CHECK).
COMMUTE_BANDS_KM = (5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 300)


def unit_vectors(lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Points on the unit sphere: (n, 3); NaN coordinates give NaN rows."""
    phi, lam = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)))


def great_circle_km(chord: FloatArray) -> FloatArray:
    result: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(chord * 0.5, 1.0))
    return result


def chord_of_km(km: float) -> float:
    """The chord (on the unit sphere) of a great-circle distance, with a hair of margin."""
    return 2 * math.sin(min(km / EARTH_RADIUS_KM, math.pi) / 2) * 1.0001


def point_distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, on the scorer's sphere."""
    a = unit_vectors(np.array([lat1]), np.array([lon1]))[0]
    b = unit_vectors(np.array([lat2]), np.array([lon2]))[0]
    return float(great_circle_km(np.array([np.linalg.norm(a - b)]))[0])


def box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """(south, north, west, east) of a box holding every point within radius_km."""
    dlat = radius_km / KM_PER_DEGREE
    dlon = radius_km / (KM_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def commute_bands(largest_km: float) -> list[tuple[float, float]]:
    """(lower, upper] commute bands up to the largest commute: a vacancy is searched for
    people of each band within the band's upper bound, not the country's longest."""
    bands, lower = [], -1.0
    for upper in COMMUTE_BANDS_KM:
        bands.append((lower, float(upper)))
        if upper >= largest_km:
            break
        lower = float(upper)
    return bands


# --- neighbours ---------------------------------------------------------------------------


@dataclass(slots=True)
class Neighbours:
    """(candidate, vacancy) pairs worth scoring, as two index arrays, and, per vacancy
    queried, whether its nearest-candidates search stopped at the limit (more people may
    be within reach)."""

    ci: IntArray
    vi: IntArray
    cut: BoolArray

    @staticmethod
    def none(n_vacancies: int) -> Neighbours:
        empty = np.zeros(0, dtype=np.int64)
        return Neighbours(empty, empty.copy(), np.zeros(n_vacancies, dtype=np.bool_))


@dataclass(slots=True)
class _Group:
    """Candidates that pass one class of vacancies' fixed filters, ordered by id."""

    located: IntArray  # candidate indices, with coordinates
    unlocated: IntArray  # candidate indices, without
    tree: object | None  # cKDTree over the located ones
    largest_commute: float
    by_band: dict[tuple[float, float], tuple[object, IntArray]] = field(default_factory=dict)


class ReachIndex:
    """Who is near whom, for one set of candidates: a k-d tree per class of vacancies.

    A class is what a vacancy's fixed filters depend on (kind, housing, licence,
    certification asked): `fits(class_key)` gives the candidates passing them, so every
    neighbour found is worth scoring. Trees are built on first use and kept as long as
    the candidates do not change. Candidates enter each tree in the order `rank` (their
    ids' order), so ties in distance fall the same way whatever the memory layout.
    """

    def __init__(
        self,
        cands: CandidateArrays,
        rank: IntArray,
        fits: Callable[[tuple[int, ...]], BoolArray],
    ) -> None:
        self._cands = cands
        self._rank = rank
        self._fits = fits
        self._units = unit_vectors(cands.lat, cands.lon)
        self._groups: dict[tuple[int, ...], _Group] = {}

    @property
    def units(self) -> FloatArray:
        return self._units

    def _group(self, key: tuple[int, ...]) -> _Group:
        group = self._groups.get(key)
        if group is None:
            from scipy.spatial import cKDTree

            members = np.flatnonzero(self._fits(key))
            members = members[np.argsort(self._rank[members], kind="stable")]
            located = np.isnan(self._cands.lat[members]) == 0
            on_map = members[located]
            tree = cKDTree(self._units[on_map]) if len(on_map) else None
            largest = float(self._cands.max_commute_km[on_map].max()) if len(on_map) else 0.0
            group = _Group(on_map, members[~located], tree, largest)
            self._groups[key] = group
        return group

    def neighbours(
        self,
        key: tuple[int, ...],
        v_units: FloatArray,
        v_departements: IntArray,
        nearest: int | None,
    ) -> Neighbours:
        """Pairs for vacancies of one class (their unit vectors, NaN when unlocated).

        Located vacancies get their `nearest` fitting candidates within the largest
        commute of the class (all of them when `nearest` is None); every vacancy gets
        the fitting candidates without coordinates of its département, and a vacancy
        without coordinates every fitting candidate of its département (DOMAIN.md: the
        same département stands in for a distance).
        """
        group = self._group(key)
        m = len(v_units)
        parts_c: list[IntArray] = []
        parts_v: list[IntArray] = []
        cut = np.zeros(m, dtype=np.bool_)
        v_located = ~np.isnan(v_units[:, 0])
        queried = np.flatnonzero(v_located)
        if group.tree is not None and len(queried):
            if nearest is None:
                c, v = self._all_within(group, v_units[queried])
                parts_c.append(c)
                parts_v.append(queried[v])
            else:
                c, v, full = self._nearest(group, v_units[queried], nearest)
                parts_c.append(c)
                parts_v.append(queried[v])
                cut[queried] = full
        # The département stands in for a distance when either side has no coordinates.
        deps = self._cands.departement
        unlocated_by_dep = _by_departement(group.unlocated, deps)
        located_by_dep = _by_departement(group.located, deps)
        for v in range(m):
            dep = int(v_departements[v])
            pool = [unlocated_by_dep.get(dep, _EMPTY)]
            if not v_located[v]:
                pool.append(located_by_dep.get(dep, _EMPTY))
            found = np.concatenate(pool)
            if len(found):
                parts_c.append(found)
                parts_v.append(np.full(len(found), v, dtype=np.int64))
        if not parts_c:
            return Neighbours.none(m)
        return Neighbours(np.concatenate(parts_c), np.concatenate(parts_v), cut)

    def _nearest(
        self, group: _Group, points: FloatArray, k: int
    ) -> tuple[IntArray, IntArray, BoolArray]:
        tree = group.tree
        size = len(group.located)
        k = min(k, size)
        _, found = tree.query(  # type: ignore[attr-defined]
            points, k=k, distance_upper_bound=chord_of_km(group.largest_commute), workers=-1
        )
        found = np.asarray(found).reshape(len(points), k)
        valid = found < size
        # A search that filled its k places may have left people within reach.
        full = valid[:, -1] if k < size else np.zeros(len(points), dtype=np.bool_)
        rows = np.repeat(np.arange(len(points)), k).reshape(len(points), k)
        return group.located[found[valid]], rows[valid], full

    def _all_within(self, group: _Group, points: FloatArray) -> tuple[IntArray, IntArray]:
        """Every fitting candidate within their own commute band's reach, band by band."""
        from scipy.spatial import cKDTree

        commute = self._cands.max_commute_km[group.located]
        parts_c: list[IntArray] = []
        parts_v: list[IntArray] = []
        for lower, upper in commute_bands(group.largest_commute):
            band = group.by_band.get((lower, upper))
            if band is None:
                members = group.located[(commute > lower) & (commute <= upper)]
                band = (cKDTree(self._units[members]) if len(members) else None, members)
                group.by_band[(lower, upper)] = band
            tree, members = band
            if tree is None:
                continue
            found = tree.query_ball_point(  # type: ignore[attr-defined]
                points, chord_of_km(upper), workers=-1, return_sorted=True
            )
            lengths = np.fromiter((len(f) for f in found), dtype=np.int64, count=len(found))
            if lengths.sum():
                flat = np.fromiter(
                    (i for f in found for i in f), dtype=np.int64, count=int(lengths.sum())
                )
                parts_c.append(members[flat])
                parts_v.append(np.repeat(np.arange(len(points)), lengths))
        if not parts_c:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(parts_c), np.concatenate(parts_v)


_EMPTY = np.zeros(0, dtype=np.int64)


def _by_departement(members: IntArray, departements: IntArray) -> dict[int, IntArray]:
    if not len(members):
        return {}
    deps = departements[members]
    order = np.argsort(deps, kind="stable")
    sorted_deps = deps[order]
    starts = np.flatnonzero(np.r_[True, np.diff(sorted_deps) != 0])
    ends = np.r_[starts[1:], len(order)]
    return {int(sorted_deps[s]): members[order[s:e]] for s, e in zip(starts, ends, strict=True)}


def located(values: Sequence[float | None]) -> FloatArray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
