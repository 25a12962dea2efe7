"""Prometheus metrics, served at /metrics.

Requests by route template and status, latency histograms, requests in flight, the
database pool (size, in use, overflow, waiting), the log lines dropped (app/logs.py) and
the event backlog, which the change feed registers with `register_event_backlog`. Route
labels are templates (`/v1/candidates/{candidate_id}`), never raw paths, so that
cardinality stays low.

With several worker processes, set PROMETHEUS_MULTIPROC_DIR to a folder (made if missing)
before the server starts: every process then writes its values there and /metrics,
whichever process answers, adds them up (prometheus-client's multiprocess mode). Pool
gauges are sampled at the end of each request and at each scrape, so each worker's
figures are as fresh as its last request; a dead worker's stop counting at the next
scrape.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from app.errors import Forbidden, problem_response

logger = logging.getLogger("tremplin.metrics")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

if _folder := os.environ.get(MULTIPROCESS_ENV):
    # A gauge without labels writes its file as it is made, below: the folder must exist.
    Path(_folder).mkdir(parents=True, exist_ok=True)

REQUESTS = Counter(
    "tremplin_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "tremplin_http_request_duration_seconds",
    "Time to answer a request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
IN_FLIGHT = Gauge(
    "tremplin_http_requests_in_flight",
    "Requests being served.",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "tremplin_db_pool_size",
    "Connections the database pool keeps (overflow excluded).",
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "tremplin_db_pool_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "tremplin_db_pool_overflow",
    "Connections opened beyond the pool size.",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "tremplin_db_pool_waiting",
    "Requests waiting for a database connection.",
    multiprocess_mode="livesum",
)
LOG_LINES_DROPPED = Counter(
    "tremplin_log_lines_dropped",
    "Log lines dropped because stderr did not keep up (app/logs.py).",
)
EVENT_BACKLOG = Gauge(
    "tremplin_event_backlog",
    "Work waiting for workers, read at each scrape: `unsequenced` events committed "
    "without a feed position yet, `undelivered` webhook attempts still pending.",
    ["stage"],
    multiprocess_mode="mostrecent",
)

BacklogReader = Callable[[AsyncSession], Awaitable[Mapping[str, int]]]
BACKLOG_READ_TIMEOUT_S = 2.0


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


def prepare_multiprocess_dir() -> None:
    """Empty the multiprocess folder before the workers start: values left by an earlier
    run would be added to this one's. Call it in the parent process, once. This process's
    own files stay: a metric made at import (no labels) already writes to its file."""
    folder = multiprocess_dir()
    if folder is None:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for stale in path.glob("*.db"):
        if not stale.name.endswith(own):
            stale.unlink()


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def _forget_dead_workers() -> None:
    """A worker killed without its shutdown (SIGKILL, out of memory) left its live gauges
    (requests in flight, pool figures) behind, and its replacement adds its own: what a
    process no longer running wrote stops counting at the next scrape."""
    folder = multiprocess_dir()
    if folder is None:
        return
    for path in Path(folder).glob("gauge_live*.db"):
        match = _LIVE_GAUGE_FILE.match(path.name)
        if match and not _running(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)))  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def mark_process_dead() -> None:
    """At a worker's shutdown: its live gauges stop counting."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


# Each series' child, looked up once: `labels()` takes a lock and builds its key on
# every call. Routes are templates and statuses few, so these stay small.
_counters: dict[tuple[str, str, int], Any] = {}
_histograms: dict[tuple[str, str], Any] = {}


def observe_request(method: str, route: str, status: int, duration_s: float) -> None:
    label = method if method in KNOWN_METHODS else "OTHER"
    counter = _counters.get((label, route, status))
    if counter is None:
        counter = _counters[label, route, status] = REQUESTS.labels(label, route, str(status))
    histogram = _histograms.get((label, route))
    if histogram is None:
        histogram = _histograms[label, route] = LATENCY.labels(label, route)
    counter.inc()
    histogram.observe(duration_s)


def _waiting(pool: Any) -> int:
    """Callers queued for a connection. SQLAlchemy does not publish this figure: it is
    the number of pending getters on the async pool's queue (0 if the pool is of
    another kind, or its queue was never waited on)."""
    queue = vars(getattr(pool, "_pool", None) or object()).get("_queue")
    getters = getattr(queue, "_getters", None) or ()
    return sum(1 for getter in getters if not getter.done())


def sample_pool(engine: AsyncEngine | None) -> None:
    if engine is None:
        return
    pool = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    checked_out = getattr(pool, "checkedout", None)
    overflow = getattr(pool, "overflow", None)
    if callable(size):
        POOL_SIZE.set(size())
    if callable(checked_out):
        POOL_IN_USE.set(checked_out())
    if callable(overflow):
        # QueuePool counts unopened capacity as negative overflow.
        POOL_OVERFLOW.set(max(overflow(), 0))
    POOL_WAITING.set(_waiting(pool))


def register_event_backlog(app: FastAPI, reader: BacklogReader) -> None:
    """Fill tremplin_event_backlog: `reader` counts the waiting work by stage, given a
    session; it runs at each scrape, bounded by BACKLOG_READ_TIMEOUT_S."""
    app.state.event_backlog_reader = reader


async def _refresh_backlog(app: Any) -> None:
    reader: BacklogReader | None = getattr(app.state, "event_backlog_reader", None)
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(app.state, "sessionmaker", None)
    if reader is None or sessionmaker is None:
        return
    try:
        async with asyncio.timeout(BACKLOG_READ_TIMEOUT_S), sessionmaker() as session:
            for stage, count in (await reader(session)).items():
                EVENT_BACKLOG.labels(stage).set(count)
    except Exception as exc:  # a scrape must answer even when the database does not
        logger.warning("event backlog not read: %s", type(exc).__name__)


def _allowed(request: Request, networks: list[Any]) -> bool:
    if not networks:
        return True
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


async def metrics_endpoint(request: Request) -> Response:
    settings = request.app.state.settings
    if not _allowed(request, settings.metrics_allow_from):
        exc = Forbidden("Metrics are not served to this address.")
        return problem_response(
            request, status=exc.status, type_=exc.type, title=exc.title, detail=exc.detail
        )
    sample_pool(getattr(request.app.state, "engine", None))
    await _refresh_backlog(request.app)
    if multiprocess_dir() is not None:
        _forget_dead_workers()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    return Response(data, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
