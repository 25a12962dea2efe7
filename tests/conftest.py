"""Test fixtures: the whole suite runs once per database backend.

The `backend` fixture is parametrised over SQLite and PostgreSQL; pytest groups the
tests by backend. Schemas are built by the Alembic migrations. Every test starts
from empty tables.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import migrations
from app.config import Settings
from app.db import session_scope
from app.domain.enums import Role
from app.main import create_app
from app.models import Base
from app.schemas.access import ApiClientCreate
from app.services import clients

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


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


# Log lines are written by a thread (app/logs.py): flushed at the end of each phase of a
# test, while its output is still captured (trylast: inside the capture's own wrapper),
# they land in that test's report, not on the terminal or in another test's.
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    finally:
        _flush_logs()


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    finally:
        _flush_logs()


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)
    finally:
        _flush_logs()


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


TEST_SIGNING_KEY = "test-signing-key-" + "0" * 48


def make_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "environment": "test",
        "jwt_signing_key": TEST_SIGNING_KEY,
        # Every test client asks for tokens from the same address.
        "rate_limit_anonymous": 1_000_000,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


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
        if engine.dialect.name == "postgresql":
            # The audit journal refuses deletes outside the retention purge.
            await conn.execute(text("SET LOCAL tremplin.audit_purge = 'on'"))
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(text(f"DELETE FROM {table.name}"))


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str


async def create_api_client(
    sessionmaker: async_sessionmaker[AsyncSession],
    role: Role | str,
    structure_id: str | uuid.UUID | None = None,
    **fields: Any,
) -> Credentials:
    data = ApiClientCreate.model_validate(
        {"name": f"test {role} client", "role": role, "structure_id": structure_id, **fields}
    )
    async with session_scope(sessionmaker) as session:
        row, secret = await clients.create(session, data)
        return Credentials(str(row.id), secret)


async def get_token(
    http: httpx.AsyncClient, credentials: Credentials, scope: str | None = None
) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
    }
    if scope is not None:
        form["scope"] = scope
    response = await http.post("/v1/oauth/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def http_client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tremplin.test", headers=headers
    )


async def client_as(
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    role: Role | str,
    structure_id: str | uuid.UUID | None = None,
) -> httpx.AsyncClient:
    """An HTTP client holding a fresh token of an API client with this role."""
    credentials = await create_api_client(sessionmaker, role, structure_id)
    async with http_client(app) as anonymous:
        token = await get_token(anonymous, credentials)
    return http_client(app, token)


@pytest.fixture
async def anonymous(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """No token at all; tables emptied like `client`."""
    await _empty_tables(engine)
    async with http_client(app) as c:
        yield c
    await _empty_tables(engine)


@pytest.fixture
async def client(
    app: FastAPI, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """A national administrator's client: sees and may do everything."""
    await _empty_tables(engine)
    async with await client_as(app, sessionmaker, Role.ADMIN) as c:
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
    fuzz = sys.modules.get("tests.test_contract_fuzz")
    figures: list[str] = getattr(fuzz, "FIGURES", [])
    if figures:
        terminalreporter.write_sep("-", "schemathesis (tests/test_contract_fuzz.py)")
        for line in figures:
            terminalreporter.write_line(line)
    terminalreporter.write_sep("-", "tests per database")
    for name, by_outcome in sorted(counts.items()):
        line = ", ".join(f"{n} {o}" for o, n in sorted(by_outcome.items()))
        terminalreporter.write_line(f"{name}: {line}")
