"""The assignment solver without a database: exact on every graph it is given, sparse
graphs that keep what matters, and reasons for empty positions.

Two oracles that share nothing with the solver: a brute force over every way of
placing every candidate (small instances), and scipy's LAPJVsp on the graph with one
row per free position and a "nobody" column per row (larger ones).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.enums import UnfilledReason
from app.domain.matching import solver

Instance = tuple[list[int], list[tuple[int, int, int]]]  # capacities, (v, c, cents)


def arrays(edges: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not edges:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    v, c, value = (np.array(column, dtype=np.int64) for column in zip(*edges, strict=True))
    return v, c, value


def brute_force(capacity: list[int], edges: list[tuple[int, int, int]]) -> int:
    """The best total over every way of giving each candidate one vacancy or none."""
    candidates = sorted({c for _, c, _ in edges})
    options: dict[int, list[tuple[int, int]]] = {c: [] for c in candidates}
    for v, c, value in edges:
        options[c].append((v, value))
    best = 0
    for choice in itertools.product(*[[None, *options[c]] for c in candidates]):
        used = [0] * len(capacity)
        total = 0
        for option in choice:
            if option is not None:
                used[option[0]] += 1
                total += option[1]
        if all(u <= cap for u, cap in zip(used, capacity, strict=True)):
            best = max(best, total)
    return best


def lapjv_optimum(capacity: list[int], edges: list[tuple[int, int, int]]) -> int:
    """An independent exact solver: scipy's min_weight_full_bipartite_matching on rows
    = free positions, columns = candidates plus one private "nobody" per row."""
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    slots = [v for v, cap in enumerate(capacity) for _ in range(cap)]
    if not slots or not edges:
        return 0
    n_candidates = max(c for _, c, _ in edges) + 1
    rows, cols, weights = [], [], []
    for s, v in enumerate(slots):
        for ev, c, value in edges:
            if ev == v:
                rows.append(s)
                cols.append(c)
                weights.append(20_001 - value)
        rows.append(s)
        cols.append(n_candidates + s)
        weights.append(20_001)
    graph = csr_array(
        (np.array(weights, dtype=float), (rows, cols)),
        shape=(len(slots), n_candidates + len(slots)),
    )
    r, c = min_weight_full_bipartite_matching(graph)
    return int(sum(20_001 - graph[i, j] for i, j in zip(r, c, strict=True) if j < n_candidates))


def check(capacity: list[int], edges: list[tuple[int, int, int]], chosen: np.ndarray) -> int:
    """What must hold of any answer; returns its total."""
    picked = [edges[i] for i in chosen.tolist()]
    candidates = [c for _, c, _ in picked]
    assert len(candidates) == len(set(candidates)), "a candidate used twice"
    for v, cap in enumerate(capacity):
        assert sum(1 for pv, _, _ in picked if pv == v) <= cap, "a capacity exceeded"
    return sum(value for _, _, value in picked)


@st.composite
def instances(draw: Any, max_vacancies: int = 4, max_candidates: int = 5) -> Instance:
    capacity = draw(st.lists(st.integers(1, 3), min_size=0, max_size=max_vacancies))
    n_candidates = draw(st.integers(0, max_candidates))
    grid = list(itertools.product(range(len(capacity)), range(n_candidates)))
    chosen = draw(st.lists(st.sampled_from(grid), unique=True)) if grid else []
    # Scores in cents on the API's scale; many ties on purpose.
    values = draw(
        st.lists(
            st.one_of(st.integers(0, 10_000), st.sampled_from([0, 4000, 5500, 7000])),
            min_size=len(chosen),
            max_size=len(chosen),
        )
    )
    return capacity, [(v, c, value) for (v, c), value in zip(chosen, values, strict=True)]


def solve(capacity: list[int], edges: list[tuple[int, int, int]]) -> np.ndarray:
    v, c, value = arrays(edges)
    return solver.optimal_assignment(np.array(capacity, dtype=np.int64), v, c, value)


@settings(max_examples=300, deadline=None)
@given(instances())
def test_the_total_equals_a_brute_force(instance: Instance) -> None:
    capacity, edges = instance
    assert check(capacity, edges, solve(capacity, edges)) == brute_force(capacity, edges)


@settings(max_examples=60, deadline=None)
@given(instances(max_vacancies=12, max_candidates=25))
def test_the_total_equals_an_independent_exact_solver(instance: Instance) -> None:
    capacity, edges = instance
    assert check(capacity, edges, solve(capacity, edges)) == lapjv_optimum(capacity, edges)


@settings(max_examples=150, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_the_same_edges_in_any_order_give_the_same_pairs(
    instance: Instance, rnd: random.Random
) -> None:
    capacity, edges = instance
    first = {edges[i][:2] for i in solve(capacity, edges).tolist()}
    shuffled = list(edges)
    rnd.shuffle(shuffled)
    assert {shuffled[i][:2] for i in solve(capacity, shuffled).tolist()} == first


def test_the_optimum_is_not_the_greedy_answer() -> None:
    """V0 has one position, V1 two. Taking the best pair first (c1 at V0, 70) ends at
    167.5; the optimum moves c1 to V1: 181.25."""
    edges = [(0, 1, 7000), (0, 2, 6250), (1, 1, 6375), (1, 3, 5500), (1, 4, 4250)]
    chosen = solve([1, 2], edges)
    assert check([1, 2], edges, chosen) == 18125
    assert {edges[i][:2] for i in chosen.tolist()} == {(0, 2), (1, 1), (1, 3)}


def test_edge_cases() -> None:
    assert solve([], []).tolist() == []
    assert solve([2], []).tolist() == []
    # One candidate wanted by two vacancies goes to the better one.
    edges = [(0, 0, 4000), (1, 0, 9000)]
    assert [edges[i] for i in solve([1, 1], edges).tolist()] == [(1, 0, 9000)]
    # A pair worth 0 still fills a position no one else can take.
    assert solve([1], [(0, 0, 0)]).tolist() == [0]


@settings(max_examples=200, deadline=None)
@given(instances(max_vacancies=6, max_candidates=10), st.integers(1, 2), st.integers(1, 2))
def test_a_sparse_graph_widened_where_it_starves_loses_no_position(
    instance: Instance, per_position: int, per_candidate: int
) -> None:
    """Solving the sparse graph, then giving every starving vacancy all its edges and
    solving again, as the service does: no vacancy is left with a free position while
    one of its candidates is free (so none can be filled by adding a pair)."""
    capacity, edges = instance
    cap = np.array(capacity, dtype=np.int64)
    v, c, value = arrays(edges)
    kept = solver.sparse_graph(cap, v, c, value, per_position, per_candidate)
    for _ in range(len(capacity) + 1):
        on = np.flatnonzero(kept)
        chosen = on[solver.optimal_assignment(cap, v[on], c[on], value[on])]
        starving = solver.starving(cap, v, kept, chosen)
        if not starving.any():
            break
        kept |= starving[v]
    used = set(c[chosen].tolist())
    free = cap - solver.filled(cap, v, chosen)
    for j in np.flatnonzero(free > 0).tolist():
        assert set(c[v == j].tolist()) <= used, "a free position next to a free candidate"
    assert check(capacity, edges, chosen) <= brute_force(capacity, edges)


def test_each_empty_position_has_its_reason() -> None:
    """Those already paired with a vacancy do not count for its other positions."""
    capacity = np.array([1, 2, 1, 1, 2, 2], dtype=np.int64)
    v = np.array([1, 3, 4, 5], dtype=np.int64)
    chosen = np.array([0, 1, 2, 3], dtype=np.int64)
    eligible = np.array([0, 3, 2, 4, 1, 3], dtype=np.int64)
    reaching = np.array([0, 3, 0, 1, 1, 1], dtype=np.int64)
    found = solver.unfilled(capacity, v, chosen, eligible, reaching)
    assert [(u.vacancy, u.positions, u.reason) for u in found] == [
        (0, 1, UnfilledReason.NOBODY_ELIGIBLE),
        (1, 1, UnfilledReason.BETTER_USED_ELSEWHERE),
        (2, 1, UnfilledReason.UNDER_MIN_SCORE),
        (4, 1, UnfilledReason.NOBODY_ELIGIBLE),
        (5, 1, UnfilledReason.UNDER_MIN_SCORE),
    ]


@pytest.mark.parametrize("score", [0.0, 30.01, 55.55, 99.99, 100.0])
def test_scores_become_whole_cents_exactly(score: float) -> None:
    assert solver.cents(np.array([score]))[0] == round(score * 100)
