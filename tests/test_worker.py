"""Scheduled jobs: once per period whatever the number of workers, failures recorded,
follow-up reminders announced once; the follow-up lookup."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import PROJECT_ROOT, Settings
from app.db import create_engine, create_sessionmaker
from app.models import JobRun
from app.services import jobs
from tests.conftest import Backend, make_settings
from tests.factories import candidate_payload, create, create_structure, job_payload
from tests.test_webhooks import stop_worker, worker_env


class Counting:
    """A job that counts its runs per period, slow enough for workers to overlap."""

    def __init__(self) -> None:
        self.runs: Counter[datetime] = Counter()
        self.period: datetime | None = None

    def job(self, name: str = "counting") -> jobs.Job:
        async def run(session: AsyncSession, settings: Settings) -> str:
            assert self.period is not None
            self.runs[self.period] += 1
            await asyncio.sleep(0.2)
            return "counted"

        return jobs.Job(name, "*/10 * * * *", "counts its runs", run)


async def test_each_job_runs_once_per_period_however_many_workers(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    """Three workers, each with its own engine (as separate processes have), reach the
    same periods at the same time: every period runs exactly once."""
    settings = make_settings(backend.url)
    engines = [create_engine(settings) for _ in range(3)]
    makers = [create_sessionmaker(e) for e in engines]
    counting = Counting()
    table = {"counting": counting.job()}
    try:
        start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
        for minutes in (0, 3, 10, 12, 20, 31):
            now = start + timedelta(minutes=minutes)
            counting.period = jobs.current_period("*/10 * * * *", now)
            results = await asyncio.gather(
                *(
                    jobs.run_due(maker, settings, f"worker-{n}", now=now, jobs=table)
                    for n, maker in enumerate(makers)
                )
            )
            assert sum(len(r) for r in results) <= 1
    finally:
        for engine in engines:
            await engine.dispose()
    assert counting.runs == Counter({start + timedelta(minutes=m): 1 for m in (0, 10, 20, 30)})


async def test_a_failed_run_is_recorded_and_the_next_period_tries_again(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    settings = make_settings(backend.url)
    calls: list[str] = []

    async def flaky(session: AsyncSession, settings: Settings) -> str:
        calls.append("run")
        if len(calls) == 1:
            raise RuntimeError("the first run breaks")
        return "fine"

    table = {"flaky": jobs.Job("flaky", "0 * * * *", "breaks once", flaky)}
    first = datetime(2026, 3, 1, 8, 5, tzinfo=UTC)
    [failed] = await jobs.run_due(sessionmaker, settings, "w", now=first, jobs=table)
    assert (failed.succeeded, failed.summary) == (False, "failed: RuntimeError")
    # The same period is not tried again; the next one is.
    assert await jobs.run_due(sessionmaker, settings, "w", now=first, jobs=table) == []
    [ok] = await jobs.run_due(
        sessionmaker, settings, "w", now=first + timedelta(hours=1), jobs=table
    )
    assert ok.succeeded
    async with sessionmaker() as session:
        rows = (await session.execute(select(JobRun.succeeded).order_by(JobRun.period))).all()
    assert [r.succeeded for r in rows] == [False, True]


@pytest.mark.parametrize(
    "schedules",
    [{"no_such_job": "0 3 * * *"}, {"expire_proposals": "every day"}],
)
def test_bad_job_schedules_are_refused_at_start(schedules: dict[str, str]) -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", job_schedules=schedules)
    with pytest.raises(ValueError, match=r"JOB_SCHEDULES|cron"):
        jobs.check_schedules(jobs.JOBS, settings)


async def started_hire(admin: httpx.AsyncClient, days_ago: int) -> dict[str, object]:
    structure = await create_structure(admin, "insertion")
    landlord = await create_structure(admin, "landlord")
    # The whole path dated before the start, as a history import gives it.
    start = date.today() - timedelta(days=days_ago)

    def before(days: int) -> str:
        return f"{(start - timedelta(days=days)).isoformat()}T09:00:00Z"

    person = (
        await create(
            admin,
            "/v1/candidates",
            candidate_payload(structure["id"], entered_at=before(60)),
        )
    )["id"]
    for phase, days in (("support", 40), ("securing", 20)):
        moved = await admin.post(
            f"/v1/candidates/{person}/transitions",
            json={
                "to": phase,
                "force": True,
                "note": "set up for the follow-up tests",
                "effective_at": before(days),
            },
        )
        assert moved.status_code == 200, moved.text
    vacancy = await create(admin, "/v1/vacancies", job_payload(landlord["id"]))
    placement = await create(
        admin,
        "/v1/placements",
        {"candidate_id": person, "vacancy_id": vacancy["id"], "proposed_at": before(10)},
    )
    accepted = (start - timedelta(days=5)).isoformat()
    for move in ({"to": "accepted", "on": accepted}, {"to": "started", "on": start.isoformat()}):
        response = await admin.post(f"/v1/placements/{placement['id']}/transitions", json=move)
        assert response.status_code == 200, response.text
    return placement


async def test_follow_ups_due_are_listed_and_announced_once(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    due = await started_hire(client, days_ago=200)
    not_yet = await started_hire(client, days_ago=100)
    listed = await client.get("/v1/placements", params={"follow_up_due": "true"})
    assert [p["id"] for p in listed.json()["items"]] == [due["id"]]
    others = await client.get("/v1/placements", params={"follow_up_due": "false"})
    assert [p["id"] for p in others.json()["items"]] == [not_yet["id"]]

    settings = make_settings(backend.url)
    table = {"follow_up_reminders": jobs.JOBS["follow_up_reminders"]}
    now = datetime.now(UTC)
    [run] = await jobs.run_due(sessionmaker, settings, "w", now=now, jobs=table)
    assert run.summary == "announced 1 follow-ups due"
    [later] = await jobs.run_due(
        sessionmaker, settings, "w", now=now + timedelta(days=1), jobs=table
    )
    assert later.summary == "announced 0 follow-ups due"
    reminders = (
        await client.get("/v1/events", params={"types": "placement.follow_up_due"})
    ).json()["items"]
    assert [(e["data"]["placement_id"], e["data"]["milestone_months"]) for e in reminders] == [
        (due["id"], 6)
    ]
    recorded = await client.post(
        f"/v1/placements/{due['id']}/follow-ups",
        json={"at": date.today().isoformat(), "in_post": True},
    )
    assert recorded.status_code == 200, recorded.text
    listed = await client.get("/v1/placements", params={"follow_up_due": "true"})
    assert listed.json()["items"] == []


async def test_two_worker_processes_share_the_schedule(
    client: httpx.AsyncClient,
    backend: Backend,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    if not backend.is_postgres:
        pytest.skip("concurrent workers are proven on PostgreSQL")
    every_second = dict.fromkeys(jobs.JOBS, "* * * * * *")
    env = worker_env(backend, JOB_SCHEDULES=json.dumps(every_second))
    workers = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
            [sys.executable, "-m", "app", "worker", "--name", f"w{n}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=(tmp_path / f"w{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for n in (1, 2)
    ]

    async def periods() -> int:
        async with sessionmaker() as session:
            return int(await session.scalar(select(func.count(func.distinct(JobRun.period)))) or 0)

    try:
        for _ in range(600):
            if await periods() >= 4:
                break
            await asyncio.sleep(0.1)
    finally:
        codes = [await stop_worker(w) for w in workers]
    assert codes == [0, 0], [(tmp_path / f"w{n}.log").read_text() for n in (1, 2)]
    async with sessionmaker() as session:
        runs = (await session.execute(select(JobRun.job, JobRun.period, JobRun.succeeded))).all()
    assert all(r.succeeded for r in runs)
    per_period = Counter((r.job, r.period) for r in runs)
    assert set(per_period.values()) == {1}
    assert {r.job for r in runs} == set(jobs.JOBS)
