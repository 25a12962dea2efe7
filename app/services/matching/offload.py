"""Matching's CPU work runs off the event loop: numpy and scipy in a worker thread (they
release the GIL in their loops), the solver in a worker process when its graph is large
(OR-Tools holds the GIL while it solves)."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import ParamSpec, TypeVar

from app.domain.matching import solver
from app.domain.matching.features import IntArray

P = ParamSpec("P")
R = TypeVar("R")

_pool: ProcessPoolExecutor | None = None


async def in_thread(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await asyncio.to_thread(fn, *args, **kwargs)


def _process_pool() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        # A process of its own, started once: its imports are paid on first use only.
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


async def solve(
    capacity: IntArray, v: IntArray, c: IntArray, value: IntArray, *, process_from: int
) -> IntArray:
    """solver.optimal_assignment, in a worker process from `process_from` edges on."""
    if len(v) >= process_from:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            _process_pool(), solver.optimal_assignment, capacity, v, c, value
        )
    return await in_thread(solver.optimal_assignment, capacity, v, c, value)
