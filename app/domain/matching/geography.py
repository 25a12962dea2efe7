"""Where people and vacancies are: distances on one sphere, search boxes, neighbours.

Every distance of matching is the great-circle distance on a sphere of the mean Earth
radius, computed from 3-D unit vectors (the chord between two points gives the same
number haversine does). The k-d trees below work on the same vectors, so "within r km"
means the same thing to the tree, the SQL box and the scorer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    reach_chord: FloatArray  # each located member's commute, as a chord
    unlocated_by_dep: tuple[IntArray, IntArray, IntArray]  # see _by_departement
    located_by_dep: tuple[IntArray, IntArray, IntArray]
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
            commute = self._cands.max_commute_km[on_map]
            largest = float(commute.max()) if len(on_map) else 0.0
            reach = 2 * np.sin(np.minimum(commute / EARTH_RADIUS_KM, np.pi) / 2) * 1.0001
            deps = self._cands.departement
            group = _Group(
                on_map,
                members[~located],
                tree,
                largest,
                reach,
                _by_departement(members[~located], deps),
                _by_departement(on_map, deps),
            )
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
        every = np.arange(m, dtype=np.int64)
        c, v = _same_departement(group.unlocated_by_dep, v_departements, every)
        parts_c.append(c)
        parts_v.append(v)
        unlocated = np.flatnonzero(~v_located)
        c, v = _same_departement(group.located_by_dep, v_departements[unlocated], unlocated)
        parts_c.append(c)
        parts_v.append(v)
        return Neighbours(np.concatenate(parts_c), np.concatenate(parts_v), cut)

    def _nearest(
        self, group: _Group, points: FloatArray, k: int
    ) -> tuple[IntArray, IntArray, BoolArray]:
        tree = group.tree
        size = len(group.located)
        k = min(k, size)
        # Threads pay off on large searches only: starting them costs more than a small one.
        workers = -1 if len(points) * k >= _PARALLEL_SEARCH else 1
        chords, found = tree.query(  # type: ignore[attr-defined]
            points, k=k, distance_upper_bound=chord_of_km(group.largest_commute), workers=workers
        )
        found = np.asarray(found).reshape(len(points), k)
        chords = np.asarray(chords).reshape(len(points), k)
        valid = found < size
        # A search that filled its k places may have left people within reach.
        full = valid[:, -1] if k < size else np.zeros(len(points), dtype=np.bool_)
        rows = np.repeat(np.arange(len(points)), k).reshape(len(points), k)
        members = group.located[found[valid]]
        # Beyond their own commute, people are not worth scoring (the margin of
        # chord_of_km keeps anyone the scorer would accept).
        within = chords[valid] <= group.reach_chord[found[valid]]
        return members[within], rows[valid][within], full

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
# Results (searches x places) from which a k-d tree search uses every core.
_PARALLEL_SEARCH = 100_000


def _by_departement(
    members: IntArray, departements: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Members grouped by département: (members sorted, start and count per code)."""
    size = int(departements.max(initial=0)) + 1 if len(departements) else 1
    deps = departements[members]
    order = np.argsort(deps, kind="stable")
    counts = np.bincount(deps, minlength=size).astype(np.int64)
    starts = np.cumsum(counts) - counts
    return members[order], starts, counts


def _same_departement(
    grouped: tuple[IntArray, IntArray, IntArray], v_departements: IntArray, v_index: IntArray
) -> tuple[IntArray, IntArray]:
    """Every member of each vacancy's département: (members, vacancy) pairs."""
    members, starts, counts = grouped
    inside = v_departements < len(counts)
    v_departements, v_index = v_departements[inside], v_index[inside]
    per = counts[v_departements]
    total = int(per.sum())
    if not total:
        return _EMPTY, _EMPTY
    offsets = np.repeat(starts[v_departements] - (np.cumsum(per) - per), per)
    return members[offsets + np.arange(total)], np.repeat(v_index, per)
