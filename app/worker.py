"""The worker process (`python -m app worker`): sequences the change feed, delivers
webhooks and runs the scheduled jobs. Run as many as you like: leases, row locks and
(job, period) claims keep every delivery attempt and every job run single.

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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker, session_scope
from app.services import delivery, events, jobs

logger = logging.getLogger("tremplin.worker")

JOB_CHECK_INTERVAL_S = 1.0
RECORD_BATCH = 100


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
        jobs.check_schedules(job_table, settings)

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
                    busy = await self._tick(sessionmaker, http)
                    if time.monotonic() >= next_jobs:
                        await self._jobs(sessionmaker)
                        next_jobs = time.monotonic() + JOB_CHECK_INTERVAL_S
                    if once:
                        break
                    if self._waiting_for_room():
                        # Wait for room rather than asking the database again.
                        await asyncio.wait(
                            self.in_flight,
                            timeout=self.settings.worker_poll_interval_s,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    elif not busy:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(
                                self.stopping.wait(), self.settings.worker_poll_interval_s
                            )
                if self.in_flight:
                    await asyncio.wait(self.in_flight)
                await self.finished.join()
                recorder.cancel()
        finally:
            await engine.dispose()
            logger.info("worker %s stopped", self.name)

    async def _tick(
        self, sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
    ) -> bool:
        """One round: sequence, fan out, claim what there is room for. True if busy."""
        try:
            async with session_scope(sessionmaker) as session:
                sequenced = await events.sequence(session)
            async with session_scope(sessionmaker) as session:
                created = await delivery.fan_out(session)
            room = self.settings.webhook_concurrency - len(self.in_flight)
            claimed: list[delivery.Claimed] = []
            if not self._waiting_for_room():
                async with session_scope(sessionmaker) as session:
                    claimed = await delivery.claim(session, self.settings, self.name, room)
        except Exception:
            # A database hiccup: log it, wait a poll interval, try again.
            logger.exception("worker %s: a round failed", self.name)
            return False
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
            except Exception:
                # Unrecorded: the leases expire and the deliveries are attempted again.
                logger.exception("worker %s: recording attempts failed", self.name)
            finally:
                for _ in batch:
                    self.finished.task_done()

    async def _jobs(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        try:
            await jobs.run_due(sessionmaker, self.settings, self.name, jobs=self.job_table)
        except Exception:
            logger.exception("worker %s: scheduled jobs failed", self.name)


async def serve(settings: Settings, *, name: str | None = None, once: bool = False) -> None:
    worker = Worker(settings, name=name)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run(once=once)
