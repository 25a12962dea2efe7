"""Rankings: candidates for a vacancy, vacancies for a candidate.

Each answer is computed from the database at request time: SQL narrows the rows to
those within reach (a box on indexed coordinates, then each person's own commute, or
the département for rows without coordinates) and to the cheap hard filters, reads the
columns (and what placements say of each pair) in one statement, and the scorer of
app.domain.matching does the rest in a worker thread. What a caller is told of each
pair (who, which criteria, how precise a distance) is decided by app.services.visibility.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    any_,
    bindparam,
    exists,
    func,
    or_,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.enums import (
    OPEN_PLACEMENT_STATUSES,
    POSITION_HOLDING_STATUSES,
    ActivityOutcome,
    ActivityType,
    AuditAction,
    CandidateView,
    DistanceBand,
    PlacementStatus,
    VacancyKind,
    VacancyStatus,
)
from app.domain.matching import CRITERIA, PairScores, Weights, failed_filters, score_pairs
from app.domain.matching.features import BoolArray, IntArray
from app.domain.matching.geography import KM_PER_DEGREE, box, commute_bands
from app.domain.matching.scorer import explain, points
from app.domain.placement_machine import PHASES_FOR_KIND
from app.errors import NotFound
from app.models import Activity, Candidate, Placement, Vacancy
from app.models.base import utcnow
from app.services import audit, tenancy, visibility
from app.services.auth import Actor
from app.services.common import is_postgres
from app.services.matching.offload import in_thread
from app.services.matching.rows import (
    CANDIDATE_COLUMNS,
    VACANCY_COLUMNS,
    RncpIndex,
    decode_candidates,
    decode_vacancies,
    widen_certifications,
)
from app.services.matching.weights import weights_from

_INTEGERS = ARRAY(Integer())


@dataclass(slots=True)
class Ranked:
    id: uuid.UUID
    score: float
    distance_km: float | None
    distance_band: DistanceBand | None
    contributions: dict[str, float]
    explanation: list[str]


@dataclass(slots=True)
class Excluded:
    id: uuid.UUID
    failed: list[str]


@dataclass(slots=True)
class Others:
    """The eligible people a caller may not name: counts only (visibility rounds them)."""

    eligible: int
    by_score_band: dict[str, int]


@dataclass(slots=True)
class Ranking:
    items: list[Ranked]
    excluded: list[Excluded] = field(default_factory=list)
    considered: int | None = 0
    criteria: tuple[str, ...] = CRITERIA
    others: Others | None = None
    # The rows the items and exclusions name (candidates or vacancies), by id, and for
    # candidates the view the caller has of each.
    rows: dict[uuid.UUID, Any] = field(default_factory=dict)
    views: dict[uuid.UUID, CandidateView] = field(default_factory=dict)


# --- which rows ----------------------------------------------------------------------------


async def largest_commute(session: AsyncSession) -> float:
    """The longest commute anyone has (an indexed maximum): the bands to search."""
    found = await session.scalar(select(func.max(Candidate.max_commute_km)))
    return float(found or 0)


def _within_commute(lat: float, lon: float, extra_km: float) -> ColumnElement[bool]:
    """Plausibly within the person's own commute of the point: a flat-earth distance,
    with the smallest east-west scale of the box and a margin, never above the true one
    (the scorer then measures exactly)."""
    north_south = Candidate.latitude - lat
    east_west = Candidate.longitude - lon
    reach = (Candidate.max_commute_km + extra_km) * 1.02 + 0.1
    lat_scale = KM_PER_DEGREE
    lon_scale = KM_PER_DEGREE * max(math.cos(math.radians(min(abs(lat) + 3.0, 89.0))), 0.01)
    return (north_south * lat_scale) * (north_south * lat_scale) + (east_west * lon_scale) * (
        east_west * lon_scale
    ) <= reach * reach


def candidates_near(
    lat: float | None,
    lon: float | None,
    departement: str,
    largest: float,
    extra_km: float = 0,
    *,
    beyond_commute: bool = False,
    arrays: bool = False,
) -> ColumnElement[bool]:
    """People who could reach a place: in the box of their commute band around it and
    within their own commute, or in its département when either side has no coordinates
    (DOMAIN.md). The search is sized by the commutes of each band, not by the longest.
    With `beyond_commute`, everyone within the longest commute, so that those too far
    for their own can be listed as excluded by the distance filter. With `arrays`
    (PostgreSQL), each band's commutes are one array parameter rather than a list
    expanded into one parameter per value, each statement rebuilt."""
    same_departement = Candidate.departement == departement
    if lat is None or lon is None:
        return same_departement
    if beyond_commute:
        south, north, west, east = box(lat, lon, largest + extra_km)
        around = and_(
            Candidate.latitude.between(south, north), Candidate.longitude.between(west, east)
        )
        return or_(around, and_(Candidate.latitude.is_(None), same_departement))
    bands = []
    for lower, upper in commute_bands(largest):
        south, north, west, east = box(lat, lon, upper + extra_km)
        # Commutes are whole km (an integer column): each value of the band is one
        # descent of the (commute, latitude, longitude) index.
        values = list(range(max(int(lower) + 1, 0), int(upper) + 1))
        commute = (
            Candidate.max_commute_km == any_(bindparam(None, values, type_=_INTEGERS))
            if arrays
            else Candidate.max_commute_km.in_(values)
        )
        bands.append(
            and_(
                commute,
                Candidate.latitude.between(south, north),
                Candidate.longitude.between(west, east),
            )
        )
    located = and_(or_(*bands), _within_commute(lat, lon, extra_km))
    return or_(located, and_(Candidate.latitude.is_(None), same_departement))


def prefilter(vacancy: Vacancy) -> list[ColumnElement[bool]]:
    """The cheap hard filters, in SQL too; the scorer checks them all again."""
    where = [
        Candidate.consent_to_share.is_(True),
        Candidate.phase.in_(PHASES_FOR_KIND[vacancy.kind]),
        or_(
            Candidate.available_from.is_(None),
            Candidate.available_from <= vacancy.start_date,
        ),
    ]
    if vacancy.driving_licence_required:
        where.append(Candidate.has_driving_licence.is_(True))
    if vacancy.onsite_housing:
        where.append(Candidate.accepts_onsite_housing.is_(True))
    return where


def _busy(candidate_id: Any) -> ColumnElement[bool]:
    """Holds an accepted or started job: not free for another one."""
    return exists(
        select(Placement.id).where(
            Placement.candidate_id == candidate_id,
            Placement.vacancy_kind == VacancyKind.JOB,
            Placement.status.in_(POSITION_HOLDING_STATUSES),
        )
    )


def _worked_with(candidate_id: Any, landlord_id: Any) -> ColumnElement[bool]:
    """A mission completed together: a completed placement or a positive work mission."""
    completed = exists(
        select(Placement.id)
        .join(Vacancy, Vacancy.id == Placement.vacancy_id)
        .where(
            Placement.candidate_id == candidate_id,
            Vacancy.landlord_id == landlord_id,
            Placement.status == PlacementStatus.COMPLETED,
        )
    )
    mission = exists(
        select(Activity.id).where(
            Activity.candidate_id == candidate_id,
            Activity.landlord_id == landlord_id,
            Activity.type == ActivityType.WORK_MISSION,
            Activity.outcome == ActivityOutcome.POSITIVE,
        )
    )
    return or_(completed, mission)


def ranking_statement(vacancy: Vacancy, where: Sequence[ColumnElement[bool]]) -> Any:
    """The one statement a vacancy's ranking reads: the candidates' columns and, per row,
    what placements say of the pair (who is proposed here and who worked with this
    landlord: a few rows each, joined; who holds a job: an indexed probe per row)."""
    open_here = (
        select(Placement.candidate_id)
        .where(Placement.vacancy_id == vacancy.id, Placement.status.in_(OPEN_PLACEMENT_STATUSES))
        .subquery("open_here")
    )
    worked = union(
        select(Placement.candidate_id.label("candidate_id"))
        .join(Vacancy, Vacancy.id == Placement.vacancy_id)
        .where(
            Vacancy.landlord_id == vacancy.landlord_id,
            Placement.status == PlacementStatus.COMPLETED,
        ),
        select(Activity.candidate_id.label("candidate_id")).where(
            Activity.landlord_id == vacancy.landlord_id,
            Activity.type == ActivityType.WORK_MISSION,
            Activity.outcome == ActivityOutcome.POSITIVE,
        ),
    ).subquery("worked")
    return (
        select(
            *CANDIDATE_COLUMNS,
            _busy(Candidate.id).label("busy"),
            open_here.c.candidate_id.is_not(None).label("open_here"),
            worked.c.candidate_id.is_not(None).label("history"),
        )
        .select_from(Candidate)
        .outerjoin(open_here, open_here.c.candidate_id == Candidate.id)
        .outerjoin(worked, worked.c.candidate_id == Candidate.id)
        .where(*where)
    )


async def vacancy_candidates_where(
    session: AsyncSession, vacancy: Vacancy, named: ColumnElement[bool], include_excluded: bool
) -> list[ColumnElement[bool]]:
    largest = await largest_commute(session)
    near = candidates_near(
        vacancy.latitude,
        vacancy.longitude,
        vacancy.departement,
        largest,
        beyond_commute=include_excluded,
        arrays=is_postgres(session),
    )
    return [near, named] + ([] if include_excluded else prefilter(vacancy))


# --- scoring, off the event loop ---------------------------------------------------------


@dataclass(slots=True)
class _Scored:
    ids: list[uuid.UUID]  # of the side ranked
    lat: np.ndarray
    lon: np.ndarray
    commute: np.ndarray
    ci: IntArray
    vi: IntArray
    scores: PairScores


def _flags(rows: Sequence[Any], name: str) -> BoolArray:
    return np.fromiter((bool(getattr(r, name)) for r in rows), dtype=np.bool_, count=len(rows))


def _score_candidates(
    candidate_rows: Sequence[Any], vacancy: Any, weights: Weights, coarse: bool
) -> _Scored:
    """Every candidate row against the one vacancy. With `coarse`, people are placed at
    their grid cell (see visibility), not their home."""
    rncp = RncpIndex()
    decoded = decode_candidates(candidate_rows, rncp, utcnow().date())
    vacs = decode_vacancies([vacancy], rncp)
    cands = decoded.arrays
    widen_certifications(cands, len(rncp))
    cands.busy = _flags(candidate_rows, "busy")
    if coarse:
        cands.lat, cands.lon = visibility.coarse_locations(cands.lat, cands.lon)
    n = len(decoded.ids)
    ci, vi = np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    scores = score_pairs(
        cands,
        vacs.arrays,
        ci,
        vi,
        weights,
        _flags(candidate_rows, "history"),
        _flags(candidate_rows, "open_here"),
    )
    return _Scored(decoded.ids, cands.lat, cands.lon, cands.max_commute_km, ci, vi, scores)


def _score_vacancies(
    candidate_row: Any, vacancy_rows: Sequence[Any], weights: Weights
) -> tuple[_Scored, np.ndarray, np.ndarray]:
    """The one candidate against every vacancy row."""
    rncp = RncpIndex()
    decoded = decode_candidates([candidate_row], rncp, utcnow().date())
    vacs = decode_vacancies(vacancy_rows, rncp)
    cands = decoded.arrays
    widen_certifications(cands, len(rncp))
    cands.busy = np.array([bool(candidate_row.busy)])
    m = len(vacancy_rows)
    ci, vi = np.zeros(m, dtype=np.int64), np.arange(m, dtype=np.int64)
    scores = score_pairs(
        cands,
        vacs.arrays,
        ci,
        vi,
        weights,
        _flags(vacancy_rows, "history"),
        _flags(vacancy_rows, "open_here"),
    )
    scored = _Scored(vacs.ids, cands.lat, cands.lon, cands.max_commute_km, ci, vi, scores)
    return scored, vacs.arrays.lat, vacs.arrays.lon


def _located(lat: float, lon: float) -> tuple[float, float] | None:
    return None if math.isnan(lat) else (float(lat), float(lon))


def _rank(
    scored: _Scored,
    place: Callable[[int], tuple[tuple[float, float] | None, tuple[float, float] | None]],
    weights: Weights,
    limit: int,
    include_excluded: bool,
    criteria: tuple[str, ...],
    shown: Callable[[int], visibility.Disclosure],
    listed: BoolArray,
) -> Ranking:
    """Rank the pairs `listed` by score (ties by id), each told as `shown(p)` allows;
    `place(p)` gives the (person, place) coordinates of pair p."""
    scores = scored.scores
    contributions, score = points(scores, weights, criteria)
    eligible = np.flatnonzero(listed)
    keys = [scored.ids[p] for p in eligible]
    order = sorted(range(len(eligible)), key=lambda k: (-score[eligible[k]], keys[k]))
    items = []
    for k in order[:limit]:
        p = int(eligible[k])
        disclosure = shown(p)
        told = visibility.criteria_shown(disclosure, criteria)
        distance = scores.distance_km[p]
        person, where = place(p)
        distance_km, band = visibility.told_distance(
            disclosure, None if math.isnan(distance) else round(float(distance), 2), person, where
        )
        items.append(
            Ranked(
                id=keys[k],
                score=float(score[p]),
                distance_km=distance_km,
                distance_band=band,
                contributions={
                    name: round(float(contributions[name][p]), 2)
                    for name in criteria
                    if name in told
                },
                explanation=explain(scores, p, float(scored.commute[scored.ci[p]]), told),
            )
        )
    excluded = []
    if include_excluded:
        refused = sorted(np.flatnonzero(scores.mask != 0).tolist(), key=lambda p: scored.ids[p])
        excluded = [
            Excluded(
                id=scored.ids[p], failed=failed_filters(int(scores.mask[p]) & shown(p).filters)
            )
            for p in refused[:limit]
        ]
    return Ranking(items=items, excluded=excluded, considered=len(scores), criteria=criteria)


def _others(scores: PairScores, weights: Weights, criteria: tuple[str, ...]) -> Others:
    """Counts of eligible people by score band, on the ranking's own criteria."""
    _, score = points(scores, weights, criteria)
    eligible = scores.mask == 0
    bands = [visibility.score_band(float(s)) for s in score[eligible]]
    return Others(
        eligible=visibility.rounded_count(int(eligible.sum())),
        by_score_band={
            label: visibility.rounded_count(bands.count(label))
            for label in visibility.score_band_labels()
        },
    )


# --- the two rankings ----------------------------------------------------------------------


async def _rows(session: AsyncSession, stmt: Any) -> list[Any]:
    connection = await session.connection()
    return list((await connection.execute(stmt)).all())


async def vacancy_matches(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    vacancy_id: uuid.UUID,
    limit: int,
    include_excluded: bool,
) -> tuple[Vacancy, Ranking]:
    vacancy = await session.scalar(
        select(Vacancy).where(Vacancy.id == vacancy_id, tenancy.vacancies(actor))
    )
    if vacancy is None:
        raise NotFound("No vacancy with this id.")
    rules = visibility.vacancy_ranking(actor, vacancy, include_excluded=include_excluded)
    weights = weights_from(settings)
    if rules.proposed_only:
        # The people proposed to the vacancy, whatever the filters say (why one fails
        # would tell a hidden field).
        where: list[ColumnElement[bool]] = [rules.named]
    else:
        where = await vacancy_candidates_where(session, vacancy, rules.named, include_excluded)
    candidate_rows = await _rows(session, ranking_statement(vacancy, where))
    views = await visibility.candidate_views(session, actor, [row.id for row in candidate_rows])
    shown = {view: visibility.disclosure(view) for view in set(views.values())}
    place_of_vacancy = (
        (vacancy.latitude, vacancy.longitude)
        if vacancy.latitude is not None and vacancy.longitude is not None
        else None
    )

    def rank() -> tuple[_Scored, Ranking]:
        # The ORM vacancy has the columns decode_vacancies reads.
        scored = _score_candidates(candidate_rows, vacancy, weights, False)

        def disclosure(p: int) -> visibility.Disclosure:
            return shown[views[scored.ids[p]]]

        def place(p: int) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
            return _located(scored.lat[p], scored.lon[p]), place_of_vacancy

        scores = scored.scores
        listed = np.ones(len(scores), dtype=np.bool_) if rules.proposed_only else scores.mask == 0
        ranking = _rank(
            scored, place, weights, limit, include_excluded, rules.criteria, disclosure, listed
        )
        return scored, ranking

    scored, ranking = await in_thread(rank)
    if rules.counts_of_others:
        ranking.others = await _others_near(session, weights, vacancy, rules, set(scored.ids))
        ranking.considered = None
    named = [r.id for r in ranking.items] + [e.id for e in ranking.excluded]
    ranking.views = {c: views[c] for c in named}
    ranking.rows = {
        c.id: c for c in await session.scalars(select(Candidate).where(Candidate.id.in_(named)))
    }
    await audit.record_views(session, actor, AuditAction.LIST, ranking.views)
    return vacancy, ranking


async def _others_near(
    session: AsyncSession,
    weights: Weights,
    vacancy: Vacancy,
    rules: visibility.RankingRules,
    named: set[uuid.UUID],
) -> Others:
    """The eligible people not named, counted by score band. Who is eligible is decided
    from their grid cells (the search widened to hold every cell it reaches), so the
    counts do not change as someone moves within a cell: they cannot locate anyone."""
    near = candidates_near(
        vacancy.latitude,
        vacancy.longitude,
        vacancy.departement,
        await largest_commute(session),
        visibility.CELL_REACH_KM,
        arrays=is_postgres(session),
    )
    rows = await _rows(session, ranking_statement(vacancy, [near, *prefilter(vacancy)]))
    rows = [row for row in rows if row.id not in named]
    scored = await in_thread(_score_candidates, rows, vacancy, weights, True)
    return _others(scored.scores, weights, rules.criteria)


async def candidate_matches(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    candidate_id: uuid.UUID,
    limit: int,
    include_excluded: bool,
) -> Ranking:
    candidate = await session.scalar(
        select(Candidate).where(Candidate.id == candidate_id, tenancy.candidates(actor))
    )
    if candidate is None:
        raise NotFound("No candidate with this id.")
    views = await visibility.candidate_views(session, actor, [candidate.id])
    view = views[candidate.id]
    visibility.candidate_ranking(view, actor, include_excluded=include_excluded)
    shown = visibility.disclosure(view)
    weights = weights_from(settings)
    same_departement = Vacancy.departement == candidate.departement
    if candidate.latitude is not None and candidate.longitude is not None:
        south, north, west, east = box(
            candidate.latitude, candidate.longitude, candidate.max_commute_km
        )
        near = or_(
            and_(Vacancy.latitude.between(south, north), Vacancy.longitude.between(west, east)),
            and_(Vacancy.latitude.is_(None), same_departement),
        )
    else:
        near = same_departement
    where = [near, tenancy.vacancies(actor), Vacancy.status == VacancyStatus.OPEN]
    if not include_excluded:
        kinds = [kind for kind, phases in PHASES_FOR_KIND.items() if candidate.phase in phases]
        where.append(Vacancy.kind.in_(kinds))
    vacancy_rows = await _rows(
        session,
        select(
            *VACANCY_COLUMNS,
            exists(
                select(Placement.id).where(
                    Placement.candidate_id == candidate.id,
                    Placement.vacancy_id == Vacancy.id,
                    Placement.status.in_(OPEN_PLACEMENT_STATUSES),
                )
            ).label("open_here"),
            _worked_with(candidate.id, Vacancy.landlord_id).label("history"),
        ).where(*where),
    )
    candidate_row = (
        await _rows(
            session,
            select(*CANDIDATE_COLUMNS, _busy(Candidate.id).label("busy")).where(
                Candidate.id == candidate.id
            ),
        )
    )[0]
    scored, v_lat, v_lon = await in_thread(_score_vacancies, candidate_row, vacancy_rows, weights)
    person = _located(scored.lat[0], scored.lon[0]) if len(scored.lat) else None

    def place(p: int) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        return person, _located(v_lat[p], v_lon[p])

    criteria = tuple(c for c in CRITERIA if c in shown.criteria)
    ranking = await in_thread(
        _rank,
        scored,
        place,
        weights,
        limit,
        include_excluded,
        criteria,
        lambda p: shown,
        scored.scores.mask == 0,
    )
    named = [r.id for r in ranking.items] + [e.id for e in ranking.excluded]
    ranking.rows = {
        v.id: v for v in await session.scalars(select(Vacancy).where(Vacancy.id.in_(named)))
    }
    await audit.record_views(session, actor, AuditAction.READ, views)
    return ranking
