"""Assignments: the pairing of candidates to a territory's free positions that maximises
the total score, optionally turned into proposals.

1. Pairs: each vacancy's nearest candidates among those passing its fixed filters (from
   the candidate store), plus the same-département pairs of rows without coordinates.
2. Placements and past missions of the candidates at hand (one statement each), then
   the scorer: eligible pairs reaching min_score are the edges.
3. The solver (app.domain.matching.solver) on every edge when they are few, otherwise
   on a sparse graph; a vacancy left with free positions gets every candidate that could
   take them (its search widened to everyone within reach when it was cut short), and
   the graph is solved again, until no such vacancy is left.
4. Each pair's criteria points; each unfilled position's reason; the journal; proposals.
CPU work runs off the event loop (offload.py).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.enums import AuditAction, Role, StructureKind, UnfilledReason, VacancyStatus
from app.domain.geography import DEPARTEMENT_REGION
from app.domain.matching import CRITERIA, Weights, score_pairs, solver
from app.domain.matching.features import BoolArray, FloatArray, IntArray
from app.domain.matching.geography import Neighbours, unit_vectors
from app.domain.matching.scorer import points
from app.errors import Forbidden, ValidationFailed, field_error
from app.models import Vacancy
from app.models.base import utcnow
from app.services import audit, placements, structures, tenancy, visibility
from app.services.auth import Actor
from app.services.common import one_of
from app.services.matching import context
from app.services.matching.offload import in_thread, solve
from app.services.matching.rows import VACANCY_COLUMNS, VacancyTable, decode_vacancies
from app.services.matching.store import View, candidate_store
from app.services.matching.weights import weights_from

# Rounds of "solve, then give starving vacancies everyone": one or two in practice.
MAX_ROUNDS = 8
_ROWS_PER_SLICE = 1000


@dataclass(frozen=True, slots=True)
class AssignmentScope:
    departement: str | None = None
    region: str | None = None
    landlord_ids: tuple[uuid.UUID, ...] = ()
    vacancy_ids: tuple[uuid.UUID, ...] = ()


@dataclass(slots=True)
class AssignedPair:
    vacancy_id: uuid.UUID
    candidate_id: uuid.UUID
    score: float
    contributions: dict[str, float]


@dataclass(slots=True)
class UnfilledPositions:
    vacancy_id: uuid.UUID
    positions: int
    reason: UnfilledReason
    eligible: int  # candidates passing the hard filters
    reaching_min_score: int


@dataclass(slots=True)
class Assignment:
    pairs: list[AssignedPair]
    unfilled: list[UnfilledPositions] = field(default_factory=list)
    vacancies_considered: int = 0
    candidates_considered: int = 0
    edges: int = 0
    proposals_created: int = 0

    @property
    def unfilled_positions(self) -> int:
        return sum(u.positions for u in self.unfilled)

    @property
    def total_score(self) -> float:
        return round(sum(p.score for p in self.pairs), 2)


def _scope_condition(session: AsyncSession, scope: AssignmentScope) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if scope.departement:
        conditions.append(Vacancy.departement == scope.departement)
    if scope.region:
        departements = [d for d, r in DEPARTEMENT_REGION.items() if r == scope.region]
        conditions.append(Vacancy.departement.in_(departements))
    if scope.landlord_ids:
        conditions.append(one_of(session, Vacancy.landlord_id, scope.landlord_ids))
    if scope.vacancy_ids:
        conditions.append(one_of(session, Vacancy.id, scope.vacancy_ids))
    return and_(*conditions) if conditions else true()


# --- the graph, built and solved in rounds -------------------------------------------------


def _class_keys(vacs: VacancyTable) -> list[tuple[int, int, int, int]]:
    a = vacs.arrays
    return [
        (int(k), int(h), int(lic), int(c))
        for k, h, lic, c in zip(
            a.kind.tolist(),
            a.housing.tolist(),
            a.licence.tolist(),
            a.required_certification.tolist(),
            strict=True,
        )
    ]


def neighbours(view: View, vacs: VacancyTable, which: IntArray, nearest: int | None) -> Neighbours:
    """Pairs for the vacancies `which`, class by class of fixed filters."""
    keys = _class_keys(vacs)
    units = unit_vectors(vacs.arrays.lat, vacs.arrays.lon)
    by_class: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for j in which.tolist():
        by_class[keys[j]].append(j)
    ci: list[IntArray] = []
    vi: list[IntArray] = []
    cut = np.zeros(len(vacs.ids), dtype=np.bool_)
    for key, members in sorted(by_class.items()):
        idx = np.array(members, dtype=np.int64)
        found = view.reach.neighbours(key, units[idx], vacs.arrays.departement[idx], nearest)
        ci.append(found.ci)
        vi.append(idx[found.vi])
        cut[idx] = found.cut
    if not ci:
        return Neighbours.none(len(vacs.ids))
    return Neighbours(np.concatenate(ci), np.concatenate(vi), cut)


@dataclass(slots=True)
class _Edges:
    """Every pair scored so far, and the eligible ones reaching min_score (the edges)."""

    n_vacancies: int
    seen: BoolArray  # per candidate slot: scored at least once
    pair_keys: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    eligible: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    reaching: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    v: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    slot: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    score: FloatArray = field(default_factory=lambda: np.zeros(0))
    considered: int = 0  # candidates scored (after those with an open placement)

    def __post_init__(self) -> None:
        self.eligible = np.zeros(self.n_vacancies, dtype=np.int64)
        self.reaching = np.zeros(self.n_vacancies, dtype=np.int64)


def _fresh(
    edges: _Edges, found: Neighbours, size: int, asked: BoolArray
) -> tuple[IntArray, IntArray, IntArray]:
    """The pairs not scored before, and their candidates whose placements are unread."""
    if not len(edges.pair_keys):
        ci, vi = found.ci, found.vi  # a first search finds each pair once
    else:
        keys = found.vi * size + found.ci
        keys, first = np.unique(keys, return_index=True)
        new = ~np.isin(keys, edges.pair_keys, assume_unique=True)
        ci, vi = found.ci[first[new]], found.vi[first[new]]
    # A mask, not np.unique: sorting a national search's pairs costs tens of ms.
    unread = np.zeros(size, dtype=np.bool_)
    unread[ci] = True
    unread &= ~asked
    return ci, vi, np.flatnonzero(unread)


def _score_into(
    edges: _Edges,
    view: View,
    vacs: VacancyTable,
    ci: IntArray,
    vi: IntArray,
    taken: BoolArray,
    worked: set[tuple[int, int]],
    weights: Weights,
    min_score: float,
) -> None:
    """Score new pairs; keep the eligible ones reaching min_score as edges. `taken[s]`:
    the candidate in slot s has an open placement (a person is proposed for one opening
    at a time by the assignment: that is a conflicting placement here)."""
    size = len(view)
    edges.pair_keys = np.concatenate((edges.pair_keys, vi * size + ci))
    keep = ~taken[ci]
    ci, vi = ci[keep], vi[keep]
    seen_before = int(np.count_nonzero(edges.seen))
    edges.seen[ci] = True
    edges.considered += int(np.count_nonzero(edges.seen)) - seen_before
    n_landlords = max(len(vacs.landlords), 1)
    landlord = vacs.arrays.landlord[vi]
    if worked:
        known = np.array([s * n_landlords + code for s, code in worked], dtype=np.int64)
        had = np.isin(ci * n_landlords + landlord, known)
    else:
        had = np.zeros(len(ci), dtype=np.bool_)
    scores = score_pairs(
        view.arrays,
        vacs.arrays,
        ci,
        vi,
        weights,
        had,
        np.zeros(len(ci), dtype=np.bool_),
        candidate_units=view.reach.units,
    )
    ok = scores.mask == 0
    ci, vi, scores.score = ci[ok], vi[ok], scores.score[ok]
    edges.eligible += np.bincount(vi, minlength=edges.n_vacancies)
    reaching = scores.score >= min_score
    edges.reaching += np.bincount(vi[reaching], minlength=edges.n_vacancies)
    edges.v = np.concatenate((edges.v, vi[reaching]))
    edges.slot = np.concatenate((edges.slot, ci[reaching]))
    edges.score = np.concatenate((edges.score, scores.score[reaching]))


async def _facts_for(
    session: AsyncSession,
    view: View,
    vacs: VacancyTable,
    slots: IntArray,
    taken: BoolArray,
    worked: set[tuple[int, int]],
    everyone: bool,
) -> None:
    """Placements and past missions of the candidates in `slots` not read yet (with
    `everyone`, the scope is the country: all of them, without naming anyone)."""
    people = None if everyone else await in_thread(view.ids_of, slots)
    facts = await context.placement_facts(session, people)
    for c in facts.with_open:
        slot = view.slot_of(c)
        if slot is not None:
            taken[slot] = True
    landlord_code = {landlord: i for i, landlord in enumerate(vacs.landlords)}
    for c, landlord in await context.history(session, people, vacs.landlords):
        slot = view.slot_of(c)
        if slot is not None:
            worked.add((slot, landlord_code[landlord]))


async def _pairs_and_edges(
    session: AsyncSession,
    view: View,
    vacs: VacancyTable,
    which: IntArray,
    nearest: int | None,
    edges: _Edges,
    taken: BoolArray,
    asked: BoolArray,
    worked: set[tuple[int, int]],
    weights: Weights,
    min_score: float,
    national: bool = False,
) -> BoolArray:
    """Find, read and score the pairs of the vacancies `which`; returns which searches
    were cut short at `nearest`."""
    found = await in_thread(neighbours, view, vacs, which, nearest)
    ci, vi, unread = await in_thread(_fresh, edges, found, len(view), asked)
    if len(unread):
        everyone = nearest is not None and len(which) == len(vacs.ids) and national
        await _facts_for(session, view, vacs, unread, taken, worked, everyone)
        asked[unread] = True
    await in_thread(_score_into, edges, view, vacs, ci, vi, taken, worked, weights, min_score)
    return found.cut


async def _solve(
    settings: Settings,
    view: View,
    vacs: VacancyTable,
    edges: _Edges,
    kept: BoolArray,
) -> IntArray:
    """The chosen edges (indices into `edges`), solving the graph `kept`."""
    on, v, rank, value = await in_thread(_graph, view, edges, kept)
    chosen = await solve(
        vacs.free_positions, v, rank, value, process_from=settings.matching_solver_process_edges
    )
    result: IntArray = on[chosen]
    return result


def _graph(
    view: View, edges: _Edges, kept: BoolArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The kept edges as the solver takes them: (edge index, vacancy, rank, cents)."""
    on = np.flatnonzero(kept)
    return on, edges.v[on], view.rank[edges.slot[on]], solver.cents(edges.score[on])


def _contributions(
    view: View,
    vacs: VacancyTable,
    v: IntArray,
    slot: IntArray,
    worked: set[tuple[int, int]],
    weights: Weights,
) -> dict[str, FloatArray]:
    """Each chosen pair's points per criterion (scored again: a few thousand pairs)."""
    landlords = vacs.arrays.landlord[v].tolist()
    had = np.fromiter(
        ((s, code) in worked for s, code in zip(slot.tolist(), landlords, strict=True)),
        dtype=np.bool_,
        count=len(slot),
    )
    scores = score_pairs(
        view.arrays,
        vacs.arrays,
        slot,
        v,
        weights,
        had,
        np.zeros(len(slot), dtype=np.bool_),
        candidate_units=view.reach.units,
    )
    contributions, _ = points(scores, weights, CRITERIA)
    return contributions


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
    landlords = scope.landlord_ids
    await structures.require_all_kind(
        session, landlords, StructureKind.LANDLORD, "landlord_ids", within=("body", "scope")
    )
    connection = await session.connection()
    # Read a slice at a time: ten thousand rows decoded at once would hold the event
    # loop for tens of ms.
    vacancy_rows: list[Any] = []
    async with connection.stream(
        select(*VACANCY_COLUMNS)
        .where(
            _scope_condition(session, scope),
            tenancy.vacancies(actor),
            Vacancy.status == VacancyStatus.OPEN,
            Vacancy.filled_positions < Vacancy.positions,
        )
        .order_by(Vacancy.id)
        .execution_options(yield_per=_ROWS_PER_SLICE)
    ) as streamed:
        async for part in streamed.partitions():
            vacancy_rows.extend(part)
    if scope.vacancy_ids:
        missing = set(scope.vacancy_ids) - {r.id for r in vacancy_rows}
        if missing:
            raise ValidationFailed(
                [
                    field_error(
                        ["body", "scope", "vacancy_ids"],
                        (
                            "1 vacancy is unknown, not open or already full"
                            if len(missing) == 1
                            else f"{len(missing)} vacancies are unknown, not open or already full"
                        ),
                        "value_error",
                    )
                ]
            )
    if not vacancy_rows:
        return Assignment([])
    weights = weights_from(settings)
    store = candidate_store(session)
    async with store.lock:
        await store.sync(session)
        vacs = await in_thread(decode_vacancies, vacancy_rows, store.rncp)
        view = await in_thread(store.view, utcnow().date())
        national = scope == AssignmentScope()
        result = await _assign(session, settings, view, vacs, weights, min_score, national)
    people = await in_thread(lambda: [p.candidate_id for p in result.pairs])
    views = await visibility.candidate_views(session, actor, people)
    await in_thread(_tell, result.pairs, views)
    await audit.record_views(session, actor, AuditAction.LIST, views)
    if create_proposals and result.pairs:
        await placements.propose_many(
            session, actor, [(p.vacancy_id, p.candidate_id) for p in result.pairs]
        )
        result.proposals_created = len(result.pairs)
    return result


async def _assign(
    session: AsyncSession,
    settings: Settings,
    view: View,
    vacs: VacancyTable,
    weights: Weights,
    min_score: float,
    national: bool,
) -> Assignment:
    size = len(view)
    m = len(vacs.ids)
    capacity = vacs.free_positions
    edges = _Edges(m, np.zeros(size, dtype=np.bool_))
    taken = np.zeros(size, dtype=np.bool_)
    asked = np.zeros(size, dtype=np.bool_)
    worked: set[tuple[int, int]] = set()
    # Few vacancies can afford more candidates each: up to the pair budget.
    nearest = max(settings.matching_nearest, settings.matching_pair_budget // max(m, 1))
    cut = await _pairs_and_edges(
        session,
        view,
        vacs,
        np.arange(m),
        nearest,
        edges,
        taken,
        asked,
        worked,
        weights,
        min_score,
        national,
    )
    if len(edges.v) <= settings.matching_exact_edges:
        kept = np.ones(len(edges.v), dtype=np.bool_)
    else:
        kept = await in_thread(
            solver.sparse_graph,
            capacity,
            edges.v,
            view.rank[edges.slot],
            solver.cents(edges.score),
            settings.matching_top_k,
            settings.matching_candidate_top_k,
        )
    chosen = await _solve(settings, view, vacs, edges, kept)
    for _ in range(MAX_ROUNDS):
        free = capacity - solver.filled(capacity, edges.v, chosen)
        widen = np.flatnonzero((free > 0) & cut)
        before = len(edges.v)
        if len(widen):
            # Cut short and not full: everyone within reach of these vacancies.
            await _pairs_and_edges(
                session, view, vacs, widen, None, edges, taken, asked, worked, weights, min_score
            )
            cut[widen] = False
            kept = np.concatenate((kept, np.zeros(len(edges.v) - before, dtype=np.bool_)))
        starving = solver.starving(capacity, edges.v, kept, chosen)
        if not starving.any():
            break
        kept |= starving[edges.v]
        chosen = await _solve(settings, view, vacs, edges, kept)
    return await in_thread(_answer, view, vacs, edges, kept, chosen, worked, weights)


def _tell(pairs: list[AssignedPair], views: dict[uuid.UUID, Any]) -> None:
    """Each pair's points on the criteria the caller's view of the person shows."""
    told = {view: visibility.disclosure(view).criteria for view in set(views.values())}
    for pair in pairs:
        shown = told[views[pair.candidate_id]]
        pair.contributions = {k: v for k, v in pair.contributions.items() if k in shown}


def _answer(
    view: View,
    vacs: VacancyTable,
    edges: _Edges,
    kept: BoolArray,
    chosen: IntArray,
    worked: set[tuple[int, int]],
    weights: Weights,
) -> Assignment:
    v, slot, score = edges.v[chosen], edges.slot[chosen], edges.score[chosen]
    # Vacancies come ordered by id; candidates by their rank in id order.
    order = np.lexsort((view.rank[slot], v))
    v, slot, score = v[order], slot[order], score[order]
    contributions = _contributions(view, vacs, v, slot, worked, weights)
    # Column by column as Python floats: indexing numpy arrays pair by pair costs more.
    points_by_name = {
        name: [round(x, 2) for x in contributions[name].tolist()] for name in CRITERIA
    }
    per_pair = zip(*points_by_name.values(), strict=True)
    points_by_pair = [dict(zip(CRITERIA, each, strict=True)) for each in per_pair]
    pairs = [
        AssignedPair(
            vacancy_id=vacs.ids[j], candidate_id=candidate_id, score=value, contributions=points
        )
        for j, candidate_id, value, points in zip(
            v.tolist(), view.ids_of(slot), score.tolist(), points_by_pair, strict=True
        )
    ]
    capacity = vacs.free_positions
    everyone = np.arange(len(v))
    unfilled = [
        UnfilledPositions(
            vacancy_id=vacs.ids[u.vacancy],
            positions=u.positions,
            reason=u.reason,
            eligible=int(edges.eligible[u.vacancy]),
            reaching_min_score=int(edges.reaching[u.vacancy]),
        )
        for u in solver.unfilled(capacity, v, everyone, edges.eligible, edges.reaching)
    ]
    return Assignment(
        pairs=pairs,
        unfilled=unfilled,
        vacancies_considered=len(vacs.ids),
        candidates_considered=edges.considered,
        edges=int(kept.sum()),
    )
