"""Test fixtures: the whole suite runs once per database backend.

The `backend` fixture is parametrised over SQLite and PostgreSQL; pytest groups the
tests by backend. Schemas are built by the Alembic migrations. Every test starts
from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import migrations
from app.config import Settings
from app.main import create_app
from app.models import Base

BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class Backend:
    name: str
    url: str

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def create_postgres_database(server_url: str, prefix: str = "tremplin_test") -> str:
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = _sqlalchemy_url(server_url).rsplit("/", 1)[0]
    return f"{base}/{name}"


async def drop_postgres_database(server_url: str, database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def postgres_server_url() -> str | None:
    return os.environ.get("TEST_POSTGRES_URL")


def require_postgres() -> str:
    url = postgres_server_url()
    if url is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI=true but TEST_POSTGRES_URL is not set: PostgreSQL is required")
        pytest.skip("PostgreSQL not available (set TEST_POSTGRES_URL or start a server)")
    return url


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tremplin-tests-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session", params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_root: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_root / 'suite.db'}"
        await asyncio.to_thread(migrations.upgrade, url)
        yield Backend("sqlite", url)
        return
    server = require_postgres()
    url = await create_postgres_database(server)
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        yield Backend("postgresql", url)
    finally:
        await drop_postgres_database(server, url)


def make_settings(url: str, **overrides: object) -> Settings:
    return Settings(database_url=url, environment="test", **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def app(backend: Backend) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(backend.url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def engine(app: FastAPI) -> AsyncEngine:
    engine: AsyncEngine = app.state.engine
    return engine


@pytest.fixture(scope="session")
def sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return maker


async def _empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(text(f"DELETE FROM {table.name}"))


@pytest.fixture
async def client(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    await _empty_tables(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tremplin.test") as c:
        yield c
    await _empty_tables(engine)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Per-database counts, for the closing note and CI logs."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            name = next((b for b in BACKENDS if f"[{b}" in nodeid or f"-{b}" in nodeid), "none")
            counts.setdefault(name, {}).setdefault(outcome, 0)
            counts[name][outcome] += 1
    terminalreporter.write_sep("-", "tests per database")
    for name, by_outcome in sorted(counts.items()):
        line = ", ".join(f"{n} {o}" for o, n in sorted(by_outcome.items()))
        terminalreporter.write_line(f"{name}: {line}")
