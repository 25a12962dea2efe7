"""The assignment: which candidate for which free position, maximising the total score.

An exact solver (OR-Tools' min-cost flow) runs on a graph of eligible pairs: every pair
when there are few, otherwise a sparse graph that keeps, for each vacancy, its best
candidates (a few per free position) and, for each candidate, their best vacancies; a
vacancy left with free positions while some of its eligible candidates were left out of
the graph gets them all back, and the graph is solved again (see `starving`). Pure
functions on index arrays; vacancy and candidate indices must follow their ids, so that
the same data gives the same answer whatever the order rows were read in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.domain.enums import UnfilledReason
from app.domain.matching.features import BoolArray, IntArray


class SolverFailed(RuntimeError):
    pass


def cents(score: np.ndarray) -> IntArray:
    """Scores have two decimals: the solver works on whole cents, exactly."""
    result: IntArray = np.rint(np.asarray(score) * 100).astype(np.int64)
    return result


def optimal_assignment(capacity: IntArray, v: IntArray, c: IntArray, value: IntArray) -> IntArray:
    """The indices of the edges (v[e], c[e]) worth value[e] (>= 0) that maximise the total
    value, each candidate used at most once, each vacancy at most capacity[v] times.

    Among equal totals, more pairs (a position filled at 0 rather than left empty).
    The edges are given to the solver sorted by (vacancy, candidate), so ties fall the
    same way for the same edges in any order.
    """
    from ortools.graph.python import min_cost_flow

    if not len(v):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((c, v))
    v_sorted, c_sorted, value_sorted = v[order], c[order], value[order]
    vacancies, v_node = np.unique(v_sorted, return_inverse=True)
    candidates, c_node = np.unique(c_sorted, return_inverse=True)
    caps = capacity[vacancies].astype(np.int64)
    n_v, n_c = len(vacancies), len(candidates)
    source, sink = n_v + n_c, n_v + n_c + 1
    supply = int(min(caps.sum(), n_c))
    # Each cent outweighs any number of pairs; one more pair breaks ties between totals.
    per_cent = supply + 1
    arcs_tail = np.concatenate(
        (np.full(n_v, source), v_node, n_v + np.arange(n_c), np.array([source]))
    )
    arcs_head = np.concatenate((np.arange(n_v), n_v + c_node, np.full(n_c, sink), np.array([sink])))
    arcs_capacity = np.concatenate(
        (caps, np.ones(len(v_sorted), np.int64), np.ones(n_c, np.int64), np.array([supply]))
    )
    arcs_cost = np.concatenate(
        (
            np.zeros(n_v, np.int64),
            -(value_sorted * per_cent + 1),
            np.zeros(n_c, np.int64),
            np.zeros(1, np.int64),
        )
    )
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        arcs_tail.astype(np.int32),
        arcs_head.astype(np.int32),
        arcs_capacity,
        arcs_cost,
    )
    flow.set_node_supply(source, supply)
    flow.set_node_supply(sink, -supply)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise SolverFailed(f"min-cost flow ended with status {status}")
    used = flow.flows(np.arange(n_v, n_v + len(v_sorted))) > 0
    chosen: IntArray = np.sort(order[used])
    return chosen


def _rank_within(group: IntArray, value: IntArray, tie: IntArray) -> IntArray:
    """Each edge's rank within its group, best value first, ties by `tie`."""
    if not len(group):
        return np.zeros(0, dtype=np.int64)
    # One int64 key (group, best value first, tie) when it fits: one sort, not three.
    span_value = int(value.max()) + 1
    span_tie = int(tie.max()) + 1
    if (int(group.max()) + 1) * span_value * span_tie < (1 << 62):
        key = (group * span_value + (span_value - 1 - value)) * span_tie + tie
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((tie, -value, group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(g)])
    rank = np.empty(len(g), dtype=np.int64)
    rank[order] = np.arange(len(g)) - np.repeat(starts, sizes)
    return rank


def sparse_graph(
    capacity: IntArray,
    v: IntArray,
    c: IntArray,
    value: IntArray,
    per_position: int,
    per_candidate: int,
) -> BoolArray:
    """Edges kept: each vacancy's best per_position x its capacity, and each candidate's
    best per_candidate vacancies among those where they rank within four times that
    (so that no one a vacancy might want is only ever its last choice, and people no
    vacancy ranks near its top do not weigh on the solver)."""
    rank = _rank_within(v, value, c)
    room = per_position * np.maximum(capacity[v], 1)
    contender = rank < 4 * room
    by_candidate = np.zeros(len(v), dtype=np.bool_)
    on = np.flatnonzero(contender)
    by_candidate[on] = _rank_within(c[on], value[on], v[on]) < per_candidate
    kept: BoolArray = (rank < room) | by_candidate
    return kept


def filled(capacity: IntArray, v: IntArray, chosen: IntArray) -> IntArray:
    result: IntArray = np.bincount(v[chosen], minlength=len(capacity)).astype(np.int64)
    return result


def starving(capacity: IntArray, v: IntArray, kept: BoolArray, chosen: IntArray) -> BoolArray:
    """Vacancies with free positions left while some of their eligible candidates were
    not in the graph: the only ones whose answer a larger graph could change."""
    free = capacity - filled(capacity, v, chosen)
    left_out = np.bincount(v[~kept], minlength=len(capacity)) > 0
    result: BoolArray = (free > 0) & left_out
    return result


@dataclass(frozen=True, slots=True)
class UnfilledVacancy:
    vacancy: int
    positions: int
    reason: UnfilledReason


def unfilled(
    capacity: IntArray,
    v: IntArray,
    chosen: IntArray,
    eligible: IntArray,
    reaching_min: IntArray,
) -> list[UnfilledVacancy]:
    """Each vacancy with free positions left, and why: `eligible[j]` candidates passed
    its hard filters, `reaching_min[j]` of them with a score at least min_score; those
    already paired with it are not counted. In an optimal answer with positions free,
    every other candidate reaching min_score is paired elsewhere (or the total could
    grow), hence the third reason."""
    here = filled(capacity, v, chosen)
    free = capacity - here
    result = []
    for j in np.flatnonzero(free > 0).tolist():
        if eligible[j] - here[j] <= 0:
            reason = UnfilledReason.NOBODY_ELIGIBLE
        elif reaching_min[j] - here[j] <= 0:
            reason = UnfilledReason.UNDER_MIN_SCORE
        else:
            reason = UnfilledReason.BETTER_USED_ELSEWHERE
        result.append(UnfilledVacancy(j, int(free[j]), reason))
    return result
