"""`python -m app worker` and `python -m app jobs` as a user runs them: bad configuration
gets one line and a non-zero exit before anything is touched; `--once` reports each
failure in one JSON log line and exits 1; a long-running worker whose database fails
says so once, backs off, and says so again when the database is back."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app import migrations
from app.config import DEFAULT_SQLITE_URL, PROJECT_ROOT
from app.services.jobs import JOBS
from tests.conftest import (
    Backend,
    _asyncpg_dsn,
    _sqlalchemy_url,
    create_postgres_database,
    drop_postgres_database,
    require_postgres,
)
from tests.live_server import free_port
from tests.test_cli import run_cli
from tests.test_webhooks import stop_worker, worker_env

BAD_SCHEDULES = [
    ({"nope": "* * * * *"}, ["nope"]),
    ({"retention": "not cron"}, ["retention"]),
    ({"retention": "not cron", "nope": "x"}, ["retention", "nope"]),
    ({"retention": "0 0 31 2 *"}, ["retention"]),  # February 31st never comes
]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of the text is one JSON object (fails otherwise)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(("schedules", "named"), BAD_SCHEDULES)
@pytest.mark.parametrize("command", [["worker", "--once"], ["jobs"]])
def test_bad_job_schedules_get_one_line_naming_them(
    tmp_path: Path, command: list[str], schedules: dict[str, str], named: list[str]
) -> None:
    database = tmp_path / "never.db"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "JOB_SCHEDULES": json.dumps(schedules),
    }
    done = run_cli(command, env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{command[0]}: JOB_SCHEDULES: ")
    for name in named:
        assert name in lines[0]
    assert done.stdout == ""
    assert not database.exists()  # refused before connecting


def test_the_worker_refuses_production_on_the_sqlite_default(tmp_path: Path) -> None:
    """As the API does (Settings.production_problems): one line, exit 2, nothing created.
    Run from elsewhere so that no .env is read."""
    default = Path(DEFAULT_SQLITE_URL.split("///", 1)[1])
    existed = {p: p.exists() for p in (default, default.parent)}
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(PROJECT_ROOT),
        "ENVIRONMENT": "production",
    }
    done = run_cli(["worker", "--once"], env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("worker: refusing to run in production")
    assert "DATABASE_URL" in lines[0]
    assert {p: p.exists() for p in existed} == existed
    assert list(tmp_path.iterdir()) == []


def test_once_with_the_database_down_reports_each_failure_and_exits_1() -> None:
    password = "s3cret-" + secrets.token_hex(4)  # must not be logged
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql+asyncpg://postgres:{password}@127.0.0.1:{free_port()}/x",
        "ENVIRONMENT": "test",
        "JOB_SCHEDULES": "{}",
    }
    done = run_cli(["worker", "--once"], env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert password not in done.stderr + done.stdout
    records = json_lines(done.stderr)
    failures = [r for r in records if r["level"] == "ERROR"]
    # The round, then the jobs, not run: one line each, naming the error class.
    assert len(failures) == 2, done.stderr
    assert {r["error"] for r in failures} == {"ConnectionRefusedError"}
    assert [r["job"] for r in failures] == [None, None]
    assert "jobs were not run" in failures[1]["message"]
    assert all("exc_info" not in r for r in records)


def test_once_against_a_host_that_never_answers_waits_one_connect_timeout() -> None:
    """A host that takes the connection and never answers: the round waits out the
    connect timeout once, and the jobs are not tried one by one (each would wait as long:
    about 30 s with the default 5 s timeout)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # never accepts, never answers
        port = silent.getsockname()[1]
        env = {
            **os.environ,
            "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x",
            "ENVIRONMENT": "test",
            "JOB_SCHEDULES": "{}",
            "DB_CONNECT_TIMEOUT_S": "1",
        }
        done = run_cli(["worker", "--once"], env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    failures = [r for r in json_lines(done.stderr) if r["level"] == "ERROR"]
    assert [r["error"] for r in failures] == ["TimeoutError", "TimeoutError"], done.stderr
    assert "jobs were not run" in failures[1]["message"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_once_on_a_database_without_schema_says_migrate_and_exits_1(
    tmp_path: Path, database: str
) -> None:
    if database == "sqlite":
        url, server = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", None
    else:
        server = require_postgres()
        url = await create_postgres_database(server, "tremplin_test_noschema")
    try:
        env = {**os.environ, "DATABASE_URL": url, "ENVIRONMENT": "test", "JOB_SCHEDULES": "{}"}
        done = await asyncio.to_thread(run_cli, ["worker", "--once"], env)
    finally:
        if server is not None:
            await drop_postgres_database(server, url)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    failures = [r for r in json_lines(done.stderr) if r["level"] == "ERROR"]
    assert len(failures) == 1 + len(JOBS), done.stderr
    assert all("python -m app migrate" in r["message"] for r in failures)


async def test_once_on_a_good_database_logs_json_and_exits_0(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    """Tables emptied around it (`client`): its job runs leave no trace for others."""
    env = worker_env(backend, JOB_SCHEDULES="{}")
    done = await asyncio.to_thread(run_cli, ["worker", "--once"], env)
    assert done.returncode == 0, done.stderr
    records = json_lines(done.stderr)
    assert {r["level"] for r in records} == {"INFO"}
    ran = {r["message"].split()[1] for r in records if r["logger"] == "tremplin.jobs"}
    assert ran == set(JOBS)


def _read(log: Path) -> str:
    return log.read_text()


async def _wait_for(log: Path, text: str, seconds: float = 60) -> None:
    for _ in range(int(seconds * 10)):
        if text in _read(log):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} never logged:\n{_read(log)}")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_a_failing_database_is_logged_once_backed_off_and_its_return_too(
    tmp_path: Path, database: str
) -> None:
    """The database fails for a few seconds (on SQLite: no schema yet; on PostgreSQL: the
    database does not exist yet), polled every 0.05 s: the worker logs one line for the
    whole outage (it used to log a traceback per round), then one when it is back."""
    server: str | None = None
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'later.db'}"
    else:
        server = require_postgres()
        name = f"tremplin_test_later_{os.getpid()}_{secrets.token_hex(3)}"
        url = f"{_sqlalchemy_url(server).rsplit('/', 1)[0]}/{name}"
    log = tmp_path / "worker.log"
    env = worker_env(Backend(database, url))  # polls every 0.05 s, jobs off
    worker = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped below
        [sys.executable, "-m", "app", "worker", "--name", "w"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    created = False
    try:
        await _wait_for(log, "the database fails")
        await asyncio.sleep(3)  # 60 polling intervals
        during = json_lines(_read(log))
        assert [r["level"] for r in during] == ["INFO", "WARNING"], during
        assert "exc_info" not in during[1]
        # The database comes (back).
        if server is not None:
            conn = await asyncpg.connect(_asyncpg_dsn(server))
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
                created = True
            finally:
                await conn.close()
        await asyncio.to_thread(migrations.upgrade, url)
        await _wait_for(log, "the database answers again")
    finally:
        code = await stop_worker(worker)
        if server is not None and created:
            await drop_postgres_database(server, url)
    text = _read(log)
    assert code == 0, text
    assert "Traceback" not in text
    records = json_lines(text)
    # While the database is made and migrated it may fail otherwise for a moment (no
    # schema yet after CREATE DATABASE): a new kind of failure gets its own line, once.
    warnings = [r["message"] for r in records[1:-2]]
    assert [r["level"] for r in records[1:-2]] == ["WARNING"] * len(warnings), text
    assert len(set(warnings)) == len(warnings), text
    assert "the database answers again" in records[-2]["message"]
    assert records[-1]["message"] == "worker w stopped"
