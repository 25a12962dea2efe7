"""The worker process (`python -m app worker`): sequences the change feed, delivers
webhooks and runs the scheduled jobs. Run as many as you like: leases, row locks and
(job, period) claims keep every delivery attempt and every job run single.

While the database fails (unreachable, no schema), it says so in one line, tries again
after a pause that doubles up to MAX_BACKOFF_S, and says so again when it is back.
`--once` does one round and reports each failure in one line (Worker.failures).

SIGTERM (or SIGINT) stops it gracefully: it claims nothing more, lets the attempts in
flight finish (each is bounded by WEBHOOK_TIMEOUT_S), records them and exits. A worker
killed outright loses nothing either: its leases expire and another worker takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Mapping

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker, session_scope
from app.services import delivery, events, jobs

logger = logging.getLogger("tremplin.worker")

JOB_CHECK_INTERVAL_S = 1.0
RECORD_BATCH = 100
# While the database fails, the pause between rounds doubles from the poll interval up
# to this.
MAX_BACKOFF_S = 30.0

# Failures of the database or of reaching it: named by their class, no traceback.
DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


class Misconfigured(Exception):
    """A configuration the worker refuses to start with (production rules, JOB_SCHEDULES)."""


def reason(exc: BaseException) -> str:
    """An error in a few words: its class, and what to do when the schema is missing.
    Never its message, which may hold the database URL or SQL."""
    name = jobs.error_name(exc)
    if jobs.has_no_schema(exc):
        return f"{name}: the database has no schema, run `python -m app migrate`"
    return name


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        name: str | None = None,
        job_table: Mapping[str, jobs.Job] = jobs.JOBS,
    ) -> None:
        self.settings = settings
        self.name = (name or default_name())[:100]
        self.job_table = job_table
        self.stopping = asyncio.Event()
        self.in_flight: set[asyncio.Task[None]] = set()
        # Finished attempts wait here to be recorded, several per transaction.
        self.finished: asyncio.Queue[tuple[delivery.Claimed, delivery.Outcome]] = asyncio.Queue()
        # Failures of the last `--once` round (each logged in one line).
        self.failures = 0
        # While rounds fail: since when, the error last logged, the next pause.
        self._failing_since: float | None = None
        self._failing_error = ""
        self._backoff = settings.worker_poll_interval_s
        problems = settings.production_problems()
        if problems:
            raise Misconfigured(f"refusing to run in production: {'; '.join(problems)}")
        try:
            jobs.check_schedules(job_table, settings)
        except jobs.ScheduleError as exc:
            raise Misconfigured(str(exc)) from None

    def stop(self) -> None:
        self.stopping.set()

    async def run(self, *, once: bool = False) -> None:
        engine = create_engine(self.settings)
        sessionmaker = create_sessionmaker(engine)
        logger.info("worker %s started", self.name)
        try:
            async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
                recorder = asyncio.create_task(self._recorder(sessionmaker))
                next_jobs = 0.0
                while not self.stopping.is_set():
                    failure: BaseException | None = None
                    try:
                        busy = await self._tick(sessionmaker, http)
                    except Exception as exc:
                        failure, busy = exc, False
                        if once:
                            self._count_failure("the round (feed, deliveries)", exc)
                    # --once runs the jobs whatever the round did, to report each of them,
                    # unless the database could not be reached at all: each job would wait
                    # out the same connect timeout to say the same thing.
                    if once and isinstance(failure, OSError):
                        self._jobs_not_run(failure)
                    elif once or (failure is None and time.monotonic() >= next_jobs):
                        failure = await self._jobs(sessionmaker, once=once) or failure
                        next_jobs = time.monotonic() + JOB_CHECK_INTERVAL_S
                    if once:
                        break
                    if failure is not None:
                        self._database_failing(failure)
                        await self._pause(self._backoff)
                        self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
                        continue
                    self._database_back()
                    if self._waiting_for_room():
                        # Wait for room rather than asking the database again.
                        await asyncio.wait(
                            self.in_flight,
                            timeout=self.settings.worker_poll_interval_s,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    elif not busy:
                        await self._pause(self.settings.worker_poll_interval_s)
                if self.in_flight:
                    await asyncio.wait(self.in_flight)
                await self.finished.join()
                recorder.cancel()
        finally:
            await engine.dispose()
            logger.info("worker %s stopped", self.name)

    async def _pause(self, seconds: float) -> None:
        """Wait this long, or until asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    def _count_failure(self, what: str, exc: BaseException, job: str | None = None) -> None:
        """--once: one line per failure."""
        self.failures += 1
        fields = {"error": jobs.error_name(exc), "job": job}
        if isinstance(exc, DATABASE_ERRORS):
            logger.error("worker %s: %s failed: %s", self.name, what, reason(exc), extra=fields)
        else:  # a bug: its traceback, inside the one JSON line
            logger.error("worker %s: %s failed", self.name, what, exc_info=exc, extra=fields)

    def _jobs_not_run(self, exc: OSError) -> None:
        """--once, the database unreachable: one line for the jobs instead of one each."""
        self.failures += 1
        logger.error(
            "worker %s: the scheduled jobs were not run, the database could not be reached: %s",
            self.name,
            reason(exc),
            extra={"error": jobs.error_name(exc), "job": None},
        )

    def _database_failing(self, exc: BaseException) -> None:
        """One line when rounds start failing (or fail differently), none while they go on."""
        text = reason(exc)
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        elif text == self._failing_error:
            return
        self._failing_error = text
        fields = {"error": jobs.error_name(exc), "max_backoff_s": MAX_BACKOFF_S}
        message = "worker %s: the database fails (%s); trying again, less often, up to every %g s"
        args = (self.name, text, MAX_BACKOFF_S)
        if isinstance(exc, DATABASE_ERRORS):
            logger.warning(message, *args, extra=fields)
        else:
            logger.error(message, *args, exc_info=exc, extra=fields)

    def _database_back(self) -> None:
        if self._failing_since is None:
            return
        down_s = round(time.monotonic() - self._failing_since, 1)
        logger.info(
            "worker %s: the database answers again, after %g s",
            self.name,
            down_s,
            extra={"down_s": down_s},
        )
        self._failing_since = None
        self._failing_error = ""
        self._backoff = self.settings.worker_poll_interval_s

    async def _tick(
        self, sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
    ) -> bool:
        """One round: sequence, fan out, claim what there is room for. True if busy.
        A failure (the database's, mostly) is raised."""
        async with session_scope(sessionmaker) as session:
            sequenced = await events.sequence(session)
        async with session_scope(sessionmaker) as session:
            created = await delivery.fan_out(session)
        room = self.settings.webhook_concurrency - len(self.in_flight)
        claimed: list[delivery.Claimed] = []
        if not self._waiting_for_room():
            async with session_scope(sessionmaker) as session:
                claimed = await delivery.claim(session, self.settings, self.name, room)
        for job in claimed:
            task = asyncio.create_task(self._deliver(sessionmaker, http, job))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        return bool(sequenced or created or claimed)

    def _waiting_for_room(self) -> bool:
        """Claim in batches: with attempts in flight, wait until a quarter is free."""
        room = self.settings.webhook_concurrency - len(self.in_flight)
        return bool(self.in_flight) and room < max(1, self.settings.webhook_concurrency // 4)

    async def _deliver(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        job: delivery.Claimed,
    ) -> None:
        outcome = await delivery.send(http, self.settings, job)
        self.finished.put_nowait((job, outcome))

    async def _recorder(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Record finished attempts, as many as are waiting, in one transaction."""
        while True:
            batch = [await self.finished.get()]
            while not self.finished.empty() and len(batch) < RECORD_BATCH:
                batch.append(self.finished.get_nowait())
            try:
                async with session_scope(sessionmaker) as session:
                    await delivery.record_many(session, self.settings, self.name, batch)
            except Exception as exc:
                # Unrecorded: the leases expire and the deliveries are attempted again.
                logger.error(
                    "worker %s: recording %d attempts failed: %s",
                    self.name,
                    len(batch),
                    reason(exc),
                    exc_info=None if isinstance(exc, DATABASE_ERRORS) else exc,
                    extra={"error": jobs.error_name(exc)},
                )
            finally:
                for _ in batch:
                    self.finished.task_done()

    async def _jobs(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, once: bool = False
    ) -> BaseException | None:
        """Run the jobs due. Returns the error of a job that could not even be claimed
        (the database failing): the caller backs off. A job's own failure is logged and
        recorded by run_job, and counted here with --once."""
        try:
            results = await jobs.run_due(
                sessionmaker, self.settings, self.name, jobs=self.job_table
            )
        except Exception as exc:
            if once:
                self._count_failure("the scheduled jobs", exc)
            return exc
        unclaimed: BaseException | None = None
        for result in results:
            if result.unclaimed is not None:
                unclaimed = result.unclaimed
                if once:
                    self._count_failure(f"job {result.job}", result.unclaimed, result.job)
            elif not result.succeeded and once:
                self.failures += 1  # run_job logged it
        return unclaimed


async def serve(worker: Worker, *, once: bool = False) -> int:
    """Run a worker until SIGTERM (or one round); returns the failures of a `--once` round."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run(once=once)
    return worker.failures
