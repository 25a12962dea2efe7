"""Matching: rankings of candidates for a vacancy (and back), and optimal assignments.

Every answer is computed from the database at request time: a bounding box on indexed
coordinates (or the département, for rows without coordinates) narrows the rows, the
columns are read with Core selects (no ORM objects on the hot path), and the rules of
app.domain.matching score them as numpy arrays. Suggestions only: nothing here decides
for a person; proposals are made only when an administrator asks for them.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    func,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.competencies import COMPETENCY_CODES
from app.domain.enums import (
    OPEN_PLACEMENT_STATUSES,
    POSITION_HOLDING_STATUSES,
    ActivityOutcome,
    ActivityType,
    AuditAction,
    CandidateView,
    ContractType,
    DistanceBand,
    Phase,
    PlacementStatus,
    Role,
    VacancyKind,
    VacancyStatus,
)
from app.domain.geography import DEPARTEMENT_REGION, DEPARTEMENTS
from app.domain.matching import (
    CARETAKER_RNCPS,
    CRITERIA,
    EARTH_RADIUS_KM,
    KIND_CODES,
    PHASE_CODES,
    CandidateArrays,
    PairScores,
    VacancyArrays,
    Weights,
    failed_filters,
    optimal_assignment_arrays,
    score_pairs,
)
from app.domain.pathway import ACTIVE_PHASES
from app.domain.placement_machine import PHASES_FOR_KIND
from app.errors import Forbidden, NotFound, ValidationFailed, field_error
from app.models import Activity, Candidate, Placement, Vacancy
from app.models.base import utcnow
from app.schemas.placements import PlacementCreate
from app.services import audit, placements, tenancy, visibility
from app.services.auth import Actor

DEPARTEMENT_CODES = {dep: i for i, dep in enumerate(sorted(DEPARTEMENTS))}
CONTRACT_CODES = {contract: i for i, contract in enumerate(ContractType)}
# The scorer's own sphere, and a hair of margin: the box must never cut off a candidate
# the scorer would accept.
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180 / 1.001

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
    # Levels read by the database, one column each: no JSON to decode per row here.
    *(
        Candidate.competencies[code].as_integer().label(f"level_{code}")
        for code in COMPETENCY_CODES
    ),
    # As text: most are empty lists, and decoding "[]" a hundred thousand times costs.
    cast(Candidate.certifications, String).label("certifications"),
    Candidate.training_hours,
    Candidate.positive_skills_assessments,
    Candidate.created_at,
    cast(Candidate.preferred_contract_types, String).label("preferred_contract_types"),
    Candidate.max_weekly_hours,
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


def weights_from(settings: Settings) -> Weights:
    return Weights(
        distance=settings.matching_weight_distance,
        competencies=settings.matching_weight_competencies,
        certification=settings.matching_weight_certification,
        landlord_history=settings.matching_weight_landlord_history,
        training=settings.matching_weight_training,
        waiting=settings.matching_weight_waiting,
        preferences=settings.matching_weight_preferences,
        training_hours_target=settings.pathway_min_training_hours,
        waiting_days_target=settings.matching_waiting_days_target,
    )


# --- from rows to arrays ----------------------------------------------------------------


@dataclass(slots=True)
class CandidateTable:
    ids: list[uuid.UUID]
    arrays: CandidateArrays
    index: dict[uuid.UUID, int]


@dataclass(slots=True)
class VacancyTable:
    ids: list[uuid.UUID]
    arrays: VacancyArrays
    landlords: list[uuid.UUID]
    free_positions: list[int]
    index: dict[uuid.UUID, int]


async def _rows(session: AsyncSession, stmt: Any) -> Any:
    """Run a column select on the session's connection: Core rows, no ORM loading."""
    connection = await session.connection()
    return await connection.execute(stmt)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


_RNCP_IN_TEXT = re.compile(r"RNCP[0-9]+")


def _rncp_index(candidate_rows: Sequence[Any], vacancy_rows: Sequence[Any]) -> dict[str, int]:
    codes = set(CARETAKER_RNCPS)
    # The codes, read off the JSON text (decoded once, later, by candidate_table).
    codes.update(
        _RNCP_IN_TEXT.findall(
            " ".join(r.certifications for r in candidate_rows if r.certifications != "[]")
        )
    )
    codes.update(row.required_certification for row in vacancy_rows if row.required_certification)
    return {code: i for i, code in enumerate(sorted(codes))}


def candidate_table(
    rows: Sequence[Any], rncp: dict[str, int], busy: set[uuid.UUID], today: date
) -> CandidateTable:
    """Rows to arrays, column by column (numpy reads a column's None as NaN)."""
    n = len(rows)
    names = [c.key for c in CANDIDATE_COLUMNS] if not n else list(rows[0]._fields)
    col = dict(zip(names, zip(*rows, strict=True), strict=True)) if n else dict.fromkeys(names, ())

    def floats(name: str) -> np.ndarray:
        return np.array(col[name], dtype=np.float64).reshape(n)

    certifications = np.zeros((n, len(rncp)), dtype=np.int64)
    preferences = np.zeros(n, dtype=np.int64)
    for i, (certs, prefs) in enumerate(
        zip(col["certifications"], col["preferred_contract_types"], strict=True)
    ):
        if certs != "[]":
            for entry in json.loads(certs):
                status = 2 if entry["status"] == "held" else 1
                column = rncp[entry["rncp_code"]]
                certifications[i, column] = max(certifications[i, column], status)
        if prefs != "[]":
            for contract in json.loads(prefs):
                preferences[i] |= 1 << CONTRACT_CODES[ContractType(contract)]
    caretaker_cols = [rncp[code] for code in CARETAKER_RNCPS]
    levels = (
        np.column_stack([floats(f"level_{code}") for code in COMPETENCY_CODES])
        if n
        else (np.zeros((0, len(COMPETENCY_CODES))))
    )
    today_ordinal = today.toordinal()
    ids: list[uuid.UUID] = list(col["id"])
    arrays = CandidateArrays(
        lat=floats("latitude"),
        lon=floats("longitude"),
        departement=np.array([DEPARTEMENT_CODES[d] for d in col["departement"]], dtype=np.int64),
        phase=np.array([PHASE_CODES[Phase(p)] for p in col["phase"]], dtype=np.int64),
        available_from=np.array(
            [d.toordinal() if d else 0 for d in col["available_from"]], dtype=np.int64
        ),
        max_commute_km=floats("max_commute_km"),
        licence=np.array(col["has_driving_licence"], dtype=np.bool_),
        housing=np.array(col["accepts_onsite_housing"], dtype=np.bool_),
        consent=np.array(col["consent_to_share"], dtype=np.bool_),
        competencies=np.nan_to_num(levels, nan=0.0),
        certifications=certifications,
        caretaker_certification=(
            certifications[:, caretaker_cols].max(axis=1) if n else np.zeros(0, dtype=np.int64)
        ),
        training_hours=floats("training_hours"),
        positive_assessments=floats("positive_skills_assessments"),
        days_in_path=np.array(
            [today_ordinal - t.date().toordinal() for t in col["created_at"]], dtype=np.float64
        ),
        contract_preferences=preferences,
        max_weekly_hours=floats("max_weekly_hours"),
        busy=np.array([i in busy for i in ids], dtype=np.bool_),
    )
    return CandidateTable(ids, arrays, {id_: i for i, id_ in enumerate(ids)})


def vacancy_table(rows: Sequence[Any], rncp: dict[str, int]) -> VacancyTable:
    m = len(rows)
    required = np.zeros((m, len(COMPETENCY_CODES)), dtype=np.float64)
    for i, row in enumerate(rows):
        required[i] = [row.required_competencies.get(code, 0) for code in COMPETENCY_CODES]
    landlords = sorted({r.landlord_id for r in rows})
    landlord_code = {landlord: i for i, landlord in enumerate(landlords)}
    arrays = VacancyArrays(
        lat=np.array([_nan(r.latitude) for r in rows], dtype=np.float64),
        lon=np.array([_nan(r.longitude) for r in rows], dtype=np.float64),
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
    ids = [r.id for r in rows]
    return VacancyTable(
        ids,
        arrays,
        landlords,
        [r.positions - r.filled_positions for r in rows],
        {id_: i for i, id_ in enumerate(ids)},
    )


# --- every candidate's features, kept in memory in step with the database --------------


def _fingerprint_columns() -> tuple[Any, ...]:
    """What changes whenever a candidate is added, deleted or updated (each update bumps
    its version): the store is reused only while these are unchanged."""
    return (func.count(Candidate.id), func.sum(Candidate.version), func.max(Candidate.created_at))


def _normalised(count: Any, versions: Any, newest: Any) -> tuple[Any, ...]:
    return (int(count or 0), int(versions or 0), newest)


@dataclass(slots=True)
class _Snapshot:
    fingerprint: tuple[Any, ...]
    day: date
    table: CandidateTable
    rncp: dict[str, int]


class CandidateStore:
    """All candidates' matching features as arrays, for assignments at national scale.

    Each use first asks the database for the fingerprint (one aggregate query); the
    arrays are rebuilt when it changed, so an answer always equals a fresh computation.
    The rows and their fingerprint are read in one statement, hence one snapshot.
    """

    def __init__(self) -> None:
        self._snapshot: _Snapshot | None = None
        self._lock = asyncio.Lock()

    async def table(self, session: AsyncSession) -> tuple[CandidateTable, dict[str, int]]:
        fingerprint = _normalised(*(await _rows(session, select(*_fingerprint_columns()))).one())
        today = utcnow().date()
        async with self._lock:
            snap = self._snapshot
            if snap is None or snap.fingerprint != fingerprint or snap.day != today:
                snap = await self._load(session, today)
                if snap.fingerprint == fingerprint:
                    self._snapshot = snap
            return snap.table, snap.rncp

    @staticmethod
    async def _load(session: AsyncSession, today: date) -> _Snapshot:
        count, versions, newest = _fingerprint_columns()
        rows = (
            await _rows(
                session,
                select(
                    *CANDIDATE_COLUMNS,
                    count.over().label("store_count"),
                    versions.over().label("store_versions"),
                    newest.over().label("store_newest"),
                ).order_by(Candidate.id),
            )
        ).all()
        fingerprint = (
            _normalised(rows[0].store_count, rows[0].store_versions, rows[0].store_newest)
            if rows
            else _normalised(0, 0, None)
        )
        rncp = _rncp_index(rows, [])
        return _Snapshot(fingerprint, today, candidate_table(rows, rncp, set(), today), rncp)


_STORES: weakref.WeakKeyDictionary[Any, CandidateStore] = weakref.WeakKeyDictionary()


def candidate_store(session: AsyncSession) -> CandidateStore:
    """One store per engine (per database), made on first use."""
    engine = session.get_bind()
    store = _STORES.get(engine)
    if store is None:
        store = _STORES[engine] = CandidateStore()
    return store


def take(table: CandidateTable, index: np.ndarray) -> CandidateTable:
    """The rows `index` of a table, as a table of its own."""
    arrays = CandidateArrays(
        **{f.name: getattr(table.arrays, f.name)[index] for f in dataclass_fields(CandidateArrays)}
    )
    ids = [table.ids[i] for i in index.tolist()]
    return CandidateTable(ids, arrays, {id_: i for i, id_ in enumerate(ids)})


def with_codes(table: CandidateTable, rncp: dict[str, int], codes: Iterable[str]) -> dict[str, int]:
    """Columns for certifications a vacancy asks for that no candidate holds (all zero)."""
    missing = sorted(set(codes) - set(rncp))
    if not missing:
        return rncp
    extended = dict(rncp)
    for code in missing:
        extended[code] = len(extended)
    table.arrays.certifications = np.pad(table.arrays.certifications, ((0, 0), (0, len(missing))))
    return extended


# --- what the database knows beyond the two rows ---------------------------------------


async def _busy(session: AsyncSession) -> set[uuid.UUID]:
    """Candidates holding an accepted or started job: not free for another one."""
    rows = await session.scalars(
        select(Placement.candidate_id).where(
            Placement.vacancy_kind == VacancyKind.JOB,
            Placement.status.in_(POSITION_HOLDING_STATUSES),
        )
    )
    return set(rows)


async def _open_pairs(
    session: AsyncSession, vacancy_ids: Iterable[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    ids = list(vacancy_ids)
    if not ids:
        return set()
    rows = await session.execute(
        select(Placement.candidate_id, Placement.vacancy_id).where(
            Placement.vacancy_id.in_(ids), Placement.status.in_(OPEN_PLACEMENT_STATUSES)
        )
    )
    return {(c, v) for c, v in rows}


async def _history(
    session: AsyncSession, landlord_ids: Iterable[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(candidate, landlord) pairs with a mission completed together."""
    ids = list(landlord_ids)
    if not ids:
        return set()
    completed = (
        select(Placement.candidate_id, Vacancy.landlord_id)
        .join(Vacancy, Vacancy.id == Placement.vacancy_id)
        .where(
            Vacancy.landlord_id.in_(ids),
            Placement.status == PlacementStatus.COMPLETED,
        )
    )
    missions = select(Activity.candidate_id, Activity.landlord_id).where(
        Activity.type == ActivityType.WORK_MISSION,
        Activity.outcome == ActivityOutcome.POSITIVE,
        Activity.landlord_id.in_(ids),
    )
    rows: Any = await session.execute(union(completed, missions))
    return {(c, landlord) for c, landlord in rows}


def _pair_flags(
    cands: CandidateTable,
    vacs: VacancyTable,
    ci: np.ndarray,
    vi: np.ndarray,
    history: set[tuple[uuid.UUID, uuid.UUID]],
    open_pairs: set[tuple[uuid.UUID, uuid.UUID]],
) -> tuple[np.ndarray, np.ndarray]:
    if history:
        by_candidate: dict[uuid.UUID, set[int]] = defaultdict(set)
        landlord_code = {landlord: i for i, landlord in enumerate(vacs.landlords)}
        for candidate, landlord in history:
            if landlord in landlord_code:
                by_candidate[candidate].add(landlord_code[landlord])
        landlord_of = vacs.arrays.landlord
        had = np.array(
            [
                landlord_of[v] in by_candidate.get(cands.ids[c], ())
                for c, v in zip(ci, vi, strict=True)
            ],
            dtype=np.bool_,
        )
    else:
        had = np.zeros(len(ci), dtype=np.bool_)
    if open_pairs:
        opened = np.array(
            [(cands.ids[c], vacs.ids[v]) in open_pairs for c, v in zip(ci, vi, strict=True)],
            dtype=np.bool_,
        )
    else:
        opened = np.zeros(len(ci), dtype=np.bool_)
    return had, opened


# --- geography -------------------------------------------------------------------------


def _box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    dlat = radius_km / KM_PER_DEGREE
    dlon = radius_km / (KM_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def _candidates_near(lat: float | None, lon: float | None, departement: str, radius: float) -> Any:
    """Candidates a vacancy could reach: in the box around it, or in its département when
    either side has no coordinates."""
    same_departement = Candidate.departement == departement
    if lat is None or lon is None:
        return same_departement
    south, north, west, east = _box(lat, lon, radius)
    in_box = and_(Candidate.latitude.between(south, north), Candidate.longitude.between(west, east))
    return or_(in_box, and_(Candidate.latitude.is_(None), same_departement))


Pairing = Callable[[CandidateTable, VacancyTable], tuple[np.ndarray, np.ndarray]]


def _every_candidate(cands: CandidateTable, vacs: VacancyTable) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate with the one vacancy."""
    return np.arange(len(cands.ids), dtype=np.int64), np.zeros(len(cands.ids), dtype=np.int64)


def _every_vacancy(cands: CandidateTable, vacs: VacancyTable) -> tuple[np.ndarray, np.ndarray]:
    """The one candidate with each vacancy."""
    return np.zeros(len(vacs.ids), dtype=np.int64), np.arange(len(vacs.ids), dtype=np.int64)


async def _score(
    session: AsyncSession,
    settings: Settings,
    candidate_rows: Sequence[Any],
    vacancy_rows: Sequence[Any],
    pairing: Pairing,
    *,
    coarse: bool = False,
) -> tuple[CandidateTable, VacancyTable, np.ndarray, np.ndarray, PairScores, Weights]:
    """Rows to arrays, the database's knowledge of the pairs, then the scorer. With
    `coarse`, people are placed at their grid cell (see visibility), not their home."""
    rncp = _rncp_index(candidate_rows, vacancy_rows)
    cands = candidate_table(candidate_rows, rncp, await _busy(session), utcnow().date())
    if coarse:
        cands.arrays.lat, cands.arrays.lon = visibility.coarse_locations(
            cands.arrays.lat, cands.arrays.lon
        )
    vacs = vacancy_table(vacancy_rows, rncp)
    return await _score_tables(session, settings, cands, vacs, pairing)


async def _score_tables(
    session: AsyncSession,
    settings: Settings,
    cands: CandidateTable,
    vacs: VacancyTable,
    pairing: Pairing,
) -> tuple[CandidateTable, VacancyTable, np.ndarray, np.ndarray, PairScores, Weights]:
    ci, vi = pairing(cands, vacs)
    had, opened = _pair_flags(
        cands,
        vacs,
        ci,
        vi,
        await _history(session, vacs.landlords),
        await _open_pairs(session, vacs.ids),
    )
    weights = weights_from(settings)
    scores = score_pairs(cands.arrays, vacs.arrays, ci, vi, weights, had, opened)
    return cands, vacs, ci, vi, scores, weights


# --- rankings --------------------------------------------------------------------------
# What a caller is told of each pair (who, which criteria, how precise a distance) is
# decided by app.services.visibility; this part computes and applies it.


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


def _explain(
    scores: PairScores, p: int, cands: CandidateTable, c: int, shown: frozenset[str]
) -> list[str]:
    """Each line speaks of one criterion; only the criteria the caller is told of."""
    criteria = scores.criteria[p]
    lines: list[tuple[str, str]] = []
    if scores.same_departement_fallback[p]:
        lines.append(("distance", "no coordinates on one side: matched on the same département"))
    else:
        lines.append(
            (
                "distance",
                f"{scores.distance_km[p]:.1f} km away, within a "
                f"{cands.arrays.max_commute_km[c]:g} km commute",
            )
        )
    if criteria[1] < 1:
        lines.append(("competencies", "some required competencies are below the level asked"))
    if criteria[2] == 1:
        lines.append(("certification", "certification held"))
    elif criteria[2] == 0.5:
        lines.append(("certification", "certification in progress"))
    if criteria[3] == 1:
        lines.append(("landlord_history", "completed a mission with this landlord"))
    return [line for criterion, line in lines if criterion in shown]


def _points(
    scores: PairScores, weights: Weights, criteria: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(contributions, score) of every pair on the given criteria, rescaled to 0-100."""
    idx = [CRITERIA.index(name) for name in criteria]
    w = weights.vector()[idx]
    scale = 100.0 / w.sum() if w.sum() > 0 else 0.0
    contributions = scores.criteria[:, idx] * (w * scale)
    if len(idx) == len(CRITERIA):
        return contributions, scores.score
    return contributions, np.round(contributions.sum(axis=1), 2)


def _located(lat: float, lon: float) -> tuple[float, float] | None:
    return None if math.isnan(lat) else (float(lat), float(lon))


def _rank(
    scores: PairScores,
    weights: Weights,
    cands: CandidateTable,
    vacs: VacancyTable,
    ci: np.ndarray,
    vi: np.ndarray,
    other_ids: list[uuid.UUID],
    limit: int,
    include_excluded: bool,
    criteria: tuple[str, ...],
    shown: Callable[[int], visibility.Disclosure],
    listed: np.ndarray,
) -> Ranking:
    """Rank the pairs `listed` (a boolean per pair) by score, each told as `shown(p)`
    allows."""
    contributions, score = _points(scores, weights, criteria)
    eligible = np.flatnonzero(listed)
    keys = [other_ids[p] for p in eligible]
    order = sorted(range(len(eligible)), key=lambda k: (-score[eligible[k]], keys[k]))
    items = []
    for k in order[:limit]:
        p = int(eligible[k])
        c, v = int(ci[p]), int(vi[p])
        disclosure = shown(p)
        told = visibility.criteria_shown(disclosure, criteria)
        distance = scores.distance_km[p]
        distance_km, band = visibility.told_distance(
            disclosure,
            None if math.isnan(distance) else round(float(distance), 2),
            _located(cands.arrays.lat[c], cands.arrays.lon[c]),
            _located(vacs.arrays.lat[v], vacs.arrays.lon[v]),
        )
        items.append(
            Ranked(
                id=keys[k],
                score=float(score[p]),
                distance_km=distance_km,
                distance_band=band,
                contributions={
                    name: round(float(contributions[p, j]), 2)
                    for j, name in enumerate(criteria)
                    if name in told
                },
                explanation=_explain(scores, p, cands, c, told),
            )
        )
    excluded = []
    if include_excluded:
        refused = np.flatnonzero(scores.mask != 0)
        refused_sorted = sorted(refused, key=lambda p: other_ids[p])
        excluded = [
            Excluded(
                id=other_ids[p],
                failed=failed_filters(int(scores.mask[p]) & shown(int(p)).filters),
            )
            for p in refused_sorted[:limit]
        ]
    return Ranking(items=items, excluded=excluded, considered=len(scores.mask), criteria=criteria)


def _others(
    scores: PairScores, weights: Weights, criteria: tuple[str, ...], eligible: np.ndarray
) -> Others:
    """Counts of eligible people by score band, on the ranking's own criteria."""
    _, score = _points(scores, weights, criteria)
    bands = [visibility.score_band(float(s)) for s in score[eligible]]
    return Others(
        eligible=visibility.rounded_count(int(eligible.sum())),
        by_score_band={
            label: visibility.rounded_count(bands.count(label))
            for label in visibility.score_band_labels()
        },
    )


async def _max_commute(session: AsyncSession) -> float:
    found = await session.scalar(select(func.max(Candidate.max_commute_km)))
    return float(found or 0)


def _prefilter(vacancy: Vacancy) -> list[ColumnElement[bool]]:
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
    radius = await _max_commute(session)
    vacancy_rows = (
        await _rows(session, select(*VACANCY_COLUMNS).where(Vacancy.id == vacancy.id))
    ).all()
    if rules.proposed_only:
        # The people proposed to the vacancy, whatever the filters say (why one fails
        # would tell a hidden field).
        where = [rules.named]
    else:
        near = _candidates_near(vacancy.latitude, vacancy.longitude, vacancy.departement, radius)
        where = [near, rules.named] + ([] if include_excluded else _prefilter(vacancy))
    candidate_rows = (await _rows(session, select(*CANDIDATE_COLUMNS).where(*where))).all()
    cands, vacs, ci, vi, scores, weights = await _score(
        session, settings, candidate_rows, vacancy_rows, _every_candidate
    )
    views = await visibility.candidate_views(session, actor, cands.ids)
    shown = {view: visibility.disclosure(view) for view in set(views.values())}

    def disclosure(p: int) -> visibility.Disclosure:
        return shown[views[cands.ids[int(ci[p])]]]

    listed = np.ones(len(ci), dtype=np.bool_) if rules.proposed_only else scores.mask == 0
    ranking = _rank(
        scores,
        weights,
        cands,
        vacs,
        ci,
        vi,
        cands.ids,
        limit,
        include_excluded,
        rules.criteria,
        disclosure,
        listed,
    )
    if rules.counts_of_others:
        ranking.others = await _others_near(
            session, settings, vacancy, vacancy_rows, radius, rules, set(cands.ids)
        )
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
    settings: Settings,
    vacancy: Vacancy,
    vacancy_rows: Sequence[Any],
    radius: float,
    rules: visibility.RankingRules,
    named: set[uuid.UUID],
) -> Others:
    """The eligible people not named, counted by score band. Who is eligible is decided
    from their grid cells (the box widened to hold every cell it reaches), so the counts
    do not change as someone moves within a cell: they cannot locate anyone."""
    near = _candidates_near(
        vacancy.latitude, vacancy.longitude, vacancy.departement, radius + visibility.CELL_REACH_KM
    )
    rows = (
        await _rows(session, select(*CANDIDATE_COLUMNS).where(near, *_prefilter(vacancy)))
    ).all()
    rows = [row for row in rows if row.id not in named]
    *_, scores, weights = await _score(
        session, settings, rows, vacancy_rows, _every_candidate, coarse=True
    )
    return _others(scores, weights, rules.criteria, scores.mask == 0)


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
    same_departement = Vacancy.departement == candidate.departement
    if candidate.latitude is not None and candidate.longitude is not None:
        south, north, west, east = _box(
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
    vacancy_rows = (await _rows(session, select(*VACANCY_COLUMNS).where(*where))).all()
    candidate_rows = (
        await _rows(session, select(*CANDIDATE_COLUMNS).where(Candidate.id == candidate.id))
    ).all()
    cands, vacs, ci, vi, scores, weights = await _score(
        session, settings, candidate_rows, vacancy_rows, _every_vacancy
    )
    criteria = tuple(c for c in CRITERIA if c in shown.criteria)
    ranking = _rank(
        scores,
        weights,
        cands,
        vacs,
        ci,
        vi,
        vacs.ids,
        limit,
        include_excluded,
        criteria,
        lambda p: shown,
        scores.mask == 0,
    )
    named = [r.id for r in ranking.items] + [e.id for e in ranking.excluded]
    ranking.rows = {
        v.id: v for v in await session.scalars(select(Vacancy).where(Vacancy.id.in_(named)))
    }
    await audit.record_views(session, actor, AuditAction.READ, views)
    return ranking


# --- assignment ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssignmentScope:
    departement: str | None = None
    region: str | None = None
    landlord_ids: tuple[uuid.UUID, ...] = ()
    vacancy_ids: tuple[uuid.UUID, ...] = ()


@dataclass(slots=True)
class Assignment:
    pairs: list[tuple[uuid.UUID, uuid.UUID, float]]  # vacancy, candidate, score
    unfilled_positions: int
    vacancies_considered: int
    candidates_considered: int
    edges: int
    proposals_created: int = 0


_open_placement = Placement.status.in_(OPEN_PLACEMENT_STATUSES)


def _mask(table: CandidateTable, ids: Iterable[uuid.UUID]) -> np.ndarray:
    mask = np.zeros(len(table.ids), dtype=np.bool_)
    positions = [table.index[i] for i in ids if i in table.index]
    mask[positions] = True
    return mask


async def _with_open_placement(session: AsyncSession) -> set[uuid.UUID]:
    rows = await session.scalars(select(Placement.candidate_id).where(_open_placement).distinct())
    return set(rows)


def _near_any(table: CandidateTable, vacancy_rows: Sequence[Any], radius: float) -> np.ndarray:
    """Candidates within the box around the scope's vacancies, or in their départements."""
    arrays = table.arrays
    codes = [DEPARTEMENT_CODES[r.departement] for r in vacancy_rows]
    near = np.isin(arrays.departement, codes)
    located = [(r.latitude, r.longitude) for r in vacancy_rows if r.latitude is not None]
    if located:
        lats = [lat for lat, _ in located]
        lons = [lon for _, lon in located]
        south, _, west, _ = _box(min(lats), min(lons), radius)
        _, north, _, east = _box(max(lats), max(lons), radius)
        with np.errstate(invalid="ignore"):
            near |= (
                (arrays.lat >= south)
                & (arrays.lat <= north)
                & (arrays.lon >= west)
                & (arrays.lon <= east)
            )
    return near


def _scope_condition(scope: AssignmentScope) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if scope.departement:
        conditions.append(Vacancy.departement == scope.departement)
    if scope.region:
        departements = [d for d, r in DEPARTEMENT_REGION.items() if r == scope.region]
        conditions.append(Vacancy.departement.in_(departements))
    if scope.landlord_ids:
        conditions.append(Vacancy.landlord_id.in_(scope.landlord_ids))
    if scope.vacancy_ids:
        conditions.append(Vacancy.id.in_(scope.vacancy_ids))
    return and_(*conditions) if conditions else true()


def candidate_pairs(
    cands: CandidateTable, vacs: VacancyTable, radius_km: float, nearest: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (candidate, vacancy) pairs worth scoring for an assignment.

    Per vacancy: its `nearest` candidates of a fitting phase within the largest commute
    (a k-d tree on 3-D unit vectors), plus, when either side has no coordinates, the
    fitting candidates of the same département. The scorer then applies every filter.
    """
    from scipy.spatial import cKDTree

    ca, va = cands.arrays, vacs.arrays
    c_located = ~np.isnan(ca.lat)
    v_located = ~np.isnan(va.lat)
    securing = ca.phase == PHASE_CODES[Phase.SECURING]
    early = np.isin(ca.phase, [PHASE_CODES[Phase.RECRUITMENT], PHASE_CODES[Phase.SUPPORT]])
    groups = (
        (va.kind == KIND_CODES[VacancyKind.JOB], securing),
        (va.kind == KIND_CODES[VacancyKind.MISSION], early),
    )
    chord = 2 * math.sin(min(radius_km / EARTH_RADIUS_KM, math.pi) / 2) * 1.0001
    ci_parts: list[np.ndarray] = []
    vi_parts: list[np.ndarray] = []
    for v_mask, c_mask in groups:
        c_idx = np.flatnonzero(c_located & c_mask)
        v_idx = np.flatnonzero(v_located & v_mask)
        if len(c_idx) and len(v_idx):
            k = min(nearest, len(c_idx))
            tree = cKDTree(_unit(ca.lat[c_idx], ca.lon[c_idx]))
            _, found = tree.query(
                _unit(va.lat[v_idx], va.lon[v_idx]), k=k, distance_upper_bound=chord, workers=-1
            )
            found = found.reshape(len(v_idx), k)
            valid = found < len(c_idx)
            ci_parts.append(c_idx[found[valid]])
            vi_parts.append(np.repeat(v_idx, k).reshape(len(v_idx), k)[valid])
        # Département fallback: either side without coordinates.
        pool_unlocated: dict[int, list[int]] = defaultdict(list)
        pool_located: dict[int, list[int]] = defaultdict(list)
        for c in np.flatnonzero(c_mask):
            target = pool_located if c_located[c] else pool_unlocated
            target[int(ca.departement[c])].append(int(c))
        for v in np.flatnonzero(v_mask):
            dep = int(va.departement[v])
            pool = pool_unlocated.get(dep, [])
            if not v_located[v]:
                pool = pool + pool_located.get(dep, [])
            if pool:
                ci_parts.append(np.asarray(pool, dtype=np.int64))
                vi_parts.append(np.full(len(pool), v, dtype=np.int64))
    if not ci_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ci_parts), np.concatenate(vi_parts)


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


async def assign(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    scope: AssignmentScope,
    *,
    min_score: float,
    create_proposals: bool,
) -> Assignment:
    if actor.role is not Role.ADMIN:
        # Pairing draws on every candidate in a territory: national administrators only.
        raise Forbidden("Only a national administrator computes assignments.")
    vacancy_rows = (
        await _rows(
            session,
            select(*VACANCY_COLUMNS)
            .where(
                _scope_condition(scope),
                tenancy.vacancies(actor),
                Vacancy.status == VacancyStatus.OPEN,
                Vacancy.filled_positions < Vacancy.positions,
            )
            .order_by(Vacancy.id),
        )
    ).all()
    if scope.vacancy_ids:
        missing = set(scope.vacancy_ids) - {r.id for r in vacancy_rows}
        if missing:
            raise ValidationFailed(
                [
                    field_error(
                        ["body", "scope", "vacancy_ids"],
                        f"{len(missing)} vacancies are unknown, not open or already full",
                        "value_error",
                    )
                ]
            )
    if not vacancy_rows:
        return Assignment([], 0, 0, 0, 0)
    radius = await _max_commute(session)
    everyone, rncp = await candidate_store(session).table(session)
    # A copy of what the store holds, narrowed to who may be paired now.
    arrays = everyone.arrays
    eligible = arrays.consent & np.isin(arrays.phase, [PHASE_CODES[p] for p in ACTIVE_PHASES])
    # Someone with a proposal under way is not paired again: a person is proposed for
    # one opening at a time by the assignment (staff may still propose more by hand).
    eligible &= ~_mask(everyone, await _with_open_placement(session))
    if scope != AssignmentScope():
        eligible &= _near_any(everyone, vacancy_rows, radius)
    cands = take(everyone, np.flatnonzero(eligible))
    cands.arrays.busy = _mask(cands, await _busy(session))
    rncp = with_codes(
        cands, rncp, (r.required_certification for r in vacancy_rows if r.required_certification)
    )
    vacs = vacancy_table(vacancy_rows, rncp)
    cands, vacs, ci, vi, scores, _ = await _score_tables(
        session,
        settings,
        cands,
        vacs,
        lambda c, v: candidate_pairs(c, v, radius, settings.matching_nearest),
    )
    keep = np.flatnonzero((scores.mask == 0) & (scores.score >= min_score))
    kv, kc, ks = vi[keep], ci[keep], scores.score[keep]
    # A sparse graph: each vacancy keeps its best k candidates (more for more positions).
    # Candidate indices follow their ids, so ties break by id.
    order = np.lexsort((kc, -ks, kv))
    kv, kc, ks = kv[order], kc[order], ks[order]
    free = np.array(vacs.free_positions, dtype=np.int64)
    if len(kv):
        starts = np.flatnonzero(np.r_[True, np.diff(kv) != 0])
        sizes = np.diff(np.r_[starts, len(kv)])
        rank = np.arange(len(kv)) - np.repeat(starts, sizes)
        best = rank < np.maximum(settings.matching_top_k, free * 3)[kv]
        kv, kc, ks = kv[best], kc[best], ks[best]
    # One slot per free position; every kept edge is repeated for each slot of its vacancy.
    slot_base = np.cumsum(free) - free
    copies = free[kv]
    first = np.repeat(np.cumsum(copies) - copies, copies)
    edge_slot = np.repeat(slot_base[kv], copies) + (np.arange(copies.sum()) - first)
    slot_vacancy = np.repeat(np.arange(len(free)), free)
    rows, cols, chosen_scores = optimal_assignment_arrays(
        int(free.sum()), len(cands.ids), edge_slot, np.repeat(kc, copies), np.repeat(ks, copies)
    )
    # Rows came ordered by id on both sides: index order is id order.
    chosen_vacancy = slot_vacancy[rows]
    order = np.lexsort((cols, chosen_vacancy))
    pairs = [
        (vacs.ids[v], cands.ids[c], float(score))
        for v, c, score in zip(
            chosen_vacancy[order].tolist(),
            cols[order].tolist(),
            chosen_scores[order].tolist(),
            strict=True,
        )
    ]
    views = await visibility.candidate_views(session, actor, [c for _, c, _ in pairs])
    await audit.record_views(session, actor, AuditAction.LIST, views)
    result = Assignment(
        pairs=pairs,
        unfilled_positions=int(free.sum()) - len(pairs),
        vacancies_considered=len(vacs.ids),
        candidates_considered=len(cands.ids),
        edges=len(edge_slot),
    )
    if create_proposals:
        for vacancy_id, candidate_id, _ in pairs:
            await placements.create(
                session, actor, PlacementCreate(candidate_id=candidate_id, vacancy_id=vacancy_id)
            )
        result.proposals_created = len(pairs)
    return result
