"""Scheduled jobs: one table, each job run once per period however many workers run.

A job's schedule is a cron expression (UTC; croniter computes its periods). A worker
that finds a period without a run claims it by inserting the (job, period) row, in the
transaction that runs the job: the unique key lets one worker win, on both databases,
and a job that fails rolls back with its claim, then leaves a failed run, so the next
period tries again. On PostgreSQL a try-lock first lets the other workers pass by
instead of waiting on the winner's insert. Only the latest period is run: a worker
that was down for three periods runs the job once when it comes back.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterError, croniter
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import IdempotencyKey, JobRun
from app.models.base import utcnow
from app.services import audit, data_rights, placements

logger = logging.getLogger("tremplin.jobs")

JobFunction = Callable[[AsyncSession, Settings], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    schedule: str  # cron, UTC; JOB_SCHEDULES overrides it
    description: str
    run: JobFunction  # does the work in the session it is given; returns a summary


async def _expire_proposals(session: AsyncSession, settings: Settings) -> str:
    closed = await placements.expire_proposals(session, settings)
    return f"expired {closed} proposals"


async def _follow_up_reminders(session: AsyncSession, settings: Settings) -> str:
    due = await placements.remind_follow_ups(session, utcnow().date())
    return f"announced {due} follow-ups due"


async def _purge_audit(session: AsyncSession, settings: Settings) -> str:
    removed = await audit.purge(session, settings.audit_retention_days)
    return f"purged {removed} audit entries"


async def purge_idempotency_keys(session: AsyncSession) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _purge_idempotency_keys(session: AsyncSession, settings: Settings) -> str:
    return f"purged {await purge_idempotency_keys(session)} idempotency keys"


# People anonymised per statement batch of the retention job (its run is one transaction).
RETENTION_BATCH = 500


async def _retention(session: AsyncSession, settings: Settings) -> str:
    done = 0
    while True:
        run = await data_rights.anonymise_inactive(
            session, settings, dry_run=False, limit=RETENTION_BATCH
        )
        done += run.anonymised
        if run.found < RETENTION_BATCH:
            return (
                f"anonymised {done} people inactive for {settings.retention_inactive_months} months"
            )


# The table of jobs.
JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            "expire_proposals",
            "15 2 * * *",
            "Close proposals unanswered for PROPOSAL_EXPIRY_DAYS",
            _expire_proposals,
        ),
        Job(
            "follow_up_reminders",
            "0 6 * * *",
            "Announce hires whose 6- or 12-month follow-up fell due (placement.follow_up_due)",
            _follow_up_reminders,
        ),
        Job(
            "purge_audit",
            "30 3 * * *",
            "Delete audit entries older than AUDIT_RETENTION_DAYS",
            _purge_audit,
        ),
        Job(
            "purge_idempotency_keys",
            "5 * * * *",
            "Delete expired idempotency keys",
            _purge_idempotency_keys,
        ),
        Job(
            "retention",
            "45 3 * * *",
            "Anonymise people with no change for RETENTION_INACTIVE_MONTHS",
            _retention,
        ),
    )
}

OFF = "off"


def schedule_of(job: Job, settings: Settings) -> str:
    return settings.job_schedules.get(job.name, job.schedule)


class ScheduleError(ValueError):
    """JOB_SCHEDULES names a job that does not exist or gives a schedule that cannot run."""


def check_schedules(jobs: Mapping[str, Job], settings: Settings) -> None:
    """Fail at start, not at 3 a.m.: every override names a job and is a valid schedule.

    Raises ScheduleError with every problem found, in one line naming JOB_SCHEDULES."""
    problems = []
    unknown = sorted(set(settings.job_schedules) - set(jobs))
    if unknown:
        problems.append(
            f"unknown job{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
            f" (the jobs are {', '.join(sorted(jobs))})"
        )
    now = utcnow()
    for job in jobs.values():
        expression = schedule_of(job, settings)
        if expression == OFF:
            continue
        # Valid syntax is not enough: "0 0 31 2 *" (February 31st) never comes.
        try:
            valid = croniter.is_valid(expression)
            if valid:
                current_period(expression, now)
        except (CroniterError, ValueError, KeyError, OverflowError):
            valid = False
        if not valid:
            problems.append(
                f"the schedule of {job.name} is neither a cron expression that ever fires nor"
                f' "{OFF}"'
            )
    if problems:
        raise ScheduleError(f"JOB_SCHEDULES: {'; '.join(problems)}")


def error_name(exc: BaseException) -> str:
    """What failed, for a log line: the driver's error class, never its message (which may
    hold the database URL, or SQL)."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    # asyncpg's errors come wrapped in SQLAlchemy's adapter class: name the driver's.
    return type(orig.__cause__ or orig).__name__


def has_no_schema(exc: BaseException) -> bool:
    return error_name(exc) == "UndefinedTableError" or "no such table" in str(exc)


def _lost_the_claim(exc: DBAPIError, dialect: str) -> bool:
    """Another worker won the period, or holds SQLite's write lock: its run counts."""
    if isinstance(exc, IntegrityError):
        return True
    return dialect == "sqlite" and isinstance(exc, OperationalError) and "locked" in str(exc.orig)


def current_period(expression: str, now: datetime) -> datetime:
    """The start of the period `now` falls in: the latest scheduled time at or before it."""
    # croniter's get_prev excludes its start: begin a microsecond later to include now.
    start = now.astimezone(UTC) + timedelta(microseconds=1)
    period: datetime = croniter(expression, start).get_prev(datetime)
    return period.astimezone(UTC).replace(microsecond=0)


def _lock_key(job: str) -> int:
    digest = hashlib.sha256(f"tremplin-job:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class RunResult:
    job: str
    period: datetime
    succeeded: bool
    summary: str
    # Set when the period could not be claimed: the run neither happened nor was recorded.
    unclaimed: BaseException | None = None


async def run_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    job: Job,
    period: datetime,
    worker: str,
) -> RunResult | None:
    """Run one job for one period, unless a run exists or another worker is at it.

    A failure of the job itself is recorded as a failed run (RunResult.succeeded False);
    a failure to claim the period (the database unreachable, no schema) is raised."""
    async with sessionmaker() as session:
        dialect = session.get_bind().dialect.name
        try:
            if dialect == "postgresql":
                got = await session.scalar(
                    select(func.pg_try_advisory_xact_lock(_lock_key(job.name)))
                )
                if not got:
                    return None
            done = await session.scalar(
                select(JobRun.id).where(JobRun.job == job.name, JobRun.period == period)
            )
            if done is not None:
                return None
            run = JobRun(job=job.name, period=period, worker=worker, started_at=utcnow())
            session.add(run)
            await session.flush()
        except DBAPIError as exc:
            if not _lost_the_claim(exc, dialect):
                raise
            await session.rollback()
            return None
        try:
            summary = await job.run(session, settings)
            run.summary = summary[:500]
            run.succeeded = True
            run.finished_at = utcnow()
            await session.commit()
            logger.info("job %s for %s: %s", job.name, period.isoformat(), summary)
            return RunResult(job.name, period, True, summary)
        except Exception as exc:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await session.rollback()
            failure = f"failed: {error_name(exc)}"
            _log_failure(job, period, exc)
    # The failure is recorded in a transaction of its own; the next period tries again.
    async with sessionmaker() as session:
        session.add(
            JobRun(
                job=job.name,
                period=period,
                worker=worker,
                finished_at=utcnow(),
                succeeded=False,
                summary=failure,
            )
        )
        try:
            await session.commit()
        except (IntegrityError, DBAPIError):
            await session.rollback()
    return RunResult(job.name, period, False, failure)


def _log_failure(job: Job, period: datetime, exc: BaseException) -> None:
    """One line. A database error is named by its class (its message may carry SQL or
    the URL); anything else is a bug and keeps its traceback, inside the JSON line."""
    fields = {"job": job.name, "period": period.isoformat(), "error": error_name(exc)}
    if isinstance(exc, SQLAlchemyError | OSError | TimeoutError):
        logger.error(
            "job %s for %s failed: %s", job.name, period.isoformat(), fields["error"], extra=fields
        )
    else:
        logger.exception("job %s for %s failed", job.name, period.isoformat(), extra=fields)


async def run_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    worker: str,
    now: datetime | None = None,
    jobs: Mapping[str, Job] = JOBS,
) -> list[RunResult]:
    """Run every job whose current period has no run yet.

    A job whose period could not even be claimed (the database unreachable, no schema)
    gives a failed RunResult whose `unclaimed` holds the error; the caller logs it (a
    worker whose database is down says so once, not once per job)."""
    now = now or utcnow()
    results = []
    for job in jobs.values():
        expression = schedule_of(job, settings)
        if expression == OFF:
            continue
        period = current_period(expression, now)
        try:
            result = await run_job(sessionmaker, settings, job, period, worker)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            result = RunResult(job.name, period, False, f"failed: {error_name(exc)}", exc)
        if result is not None:
            results.append(result)
    return results
