"""Matching's CPU work runs off the event loop: numpy and scipy in a worker thread (they
release the GIL in their loops), the solver in a worker process when its graph is large
(OR-Tools holds the GIL while it solves)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import ParamSpec, TypeVar

from app.domain.matching import solver
from app.domain.matching.features import IntArray

P = ParamSpec("P")
R = TypeVar("R")

_pool: ProcessPoolExecutor | None = None
SOLVER_NICENESS = 10

# While matching's CPU work runs in a thread, the event loop waits for the GIL up to one
# switch interval each time it needs it (5 ms by default, several times per request):
# 1 ms keeps /healthz and reads quick meanwhile. Only meanwhile: the rest of the time the
# default costs less (SQLite's reads hop to the driver's thread; a 1 ms interval made
# their GETs cost 13% more CPU, measured with bench-api).
FAST_SWITCH_INTERVAL_S = 0.001
_DEFAULT_SWITCH_INTERVAL_S = sys.getswitchinterval()
_in_flight = 0  # matching jobs in threads; only the event loop's thread counts them


async def in_thread(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    global _in_flight
    if _in_flight == 0:
        sys.setswitchinterval(FAST_SWITCH_INTERVAL_S)
    _in_flight += 1
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    finally:
        _in_flight -= 1
        if _in_flight == 0:
            sys.setswitchinterval(_DEFAULT_SWITCH_INTERVAL_S)


def _process_pool() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        # A process of its own, started once: its imports are paid on first use only.
        # At a lower priority: while it solves, the server's own threads (requests,
        # probes) come first for the CPU.
        _pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=os.nice,
            initargs=(SOLVER_NICENESS,),
        )
    return _pool


def shutdown() -> None:
    """Stop the solver's process with the server: a solve in flight is abandoned (its
    request is being shut down too), and no process outlives the server that started it."""
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
    # Python 3.11 has no terminate_workers(): the processes are reached directly.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


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
