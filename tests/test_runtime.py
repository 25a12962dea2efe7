"""Running in production: bounded delays and waits, dropped connections, SQLite's
read/write split, several processes, and what production refuses.

Faults that stop or freeze PostgreSQL itself are in test_faults.py (a cluster of
their own); here the suite's databases are enough.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Float, bindparam, func, insert, make_url, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app import db, migrations
from app.config import DEFAULT_SQLITE_URL, PROJECT_ROOT, Settings
from app.db import create_engine
from app.domain.ids import uuid7
from app.main import ProductionMisconfigured, create_app
from app.models import ApiClient
from app.models.base import utcnow
from app.services.auth import ClientStates
from tests.conftest import (
    TEST_SIGNING_KEY,
    Backend,
    create_api_client,
    create_postgres_database,
    drop_postgres_database,
    get_token,
    http_client,
    make_settings,
    require_postgres,
)
from tests.factories import candidate_payload, create, create_structure, structure_payload

PROBLEM_JSON = "application/problem+json"
CLIENTS = ApiClient.__table__


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def answering(application: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    """A client of an app whose unexpected errors become answers (500), not exceptions."""
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=transport, base_url="http://tremplin.test", headers=headers)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert int(response.headers["retry-after"]) >= 1


async def admin_token(application: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    credentials = await create_api_client(sessionmaker, "admin")
    async with http_client(application) as anonymous:
        return await get_token(anonymous, credentials)


# --- a client's revocation reaches every process within AUTH_CLIENT_CACHE_S ------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_change_made_elsewhere_applies_within_the_cache_delay(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Another process (or a command) revokes the client: this process sees it once its
    copy of the client is older than AUTH_CLIENT_CACHE_S, never later."""
    async with running(make_settings(backend.url, auth_client_cache_s=5)) as application:
        clock = FakeClock()
        application.state.authenticator.clients = ClientStates(5, clock=clock)
        token = await admin_token(application, sessionmaker)
        async with http_client(application, token) as http:
            assert (await http.get("/v1/structures")).status_code == 200
            client_id = uuid.UUID(str(token_subject(token)))
            async with sessionmaker() as session:  # as another replica would
                await session.execute(
                    update(CLIENTS).where(CLIENTS.c.id == client_id).values(revoked_at=utcnow())
                )
                await session.commit()
            clock.now += 4.9  # within the delay, the copy is still trusted
            assert (await http.get("/v1/structures")).status_code == 200
            clock.now += 0.2  # past it, the row is read again
            refused = await http.get("/v1/structures")
            assert refused.status_code == 401, refused.text


async def test_without_a_cache_delay_a_change_applies_at_once(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with running(make_settings(backend.url, auth_client_cache_s=0)) as application:
        token = await admin_token(application, sessionmaker)
        async with http_client(application, token) as http:
            assert (await http.get("/v1/structures")).status_code == 200
            async with sessionmaker() as session:  # a rotation made elsewhere
                await session.execute(
                    update(CLIENTS)
                    .where(CLIENTS.c.id == uuid.UUID(token_subject(token)))
                    .values(credential_version=CLIENTS.c.credential_version + 1)
                )
                await session.commit()
            assert (await http.get("/v1/structures")).status_code == 401


def token_subject(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


# --- PostgreSQL: connections the server dropped, pool and statement bounds --------------------


async def test_a_dropped_connection_does_not_fail_the_next_request(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The server closes every pooled connection (a restart, an idle kill): the next
    request gets a fresh one, without a pre-ping on every checkout."""
    if not backend.is_postgres:
        pytest.skip("a server that drops connections: PostgreSQL")
    name = f"tremplin-drop-{uuid.uuid4().hex[:8]}"
    settings = make_settings(backend.url, db_application_name=name, db_pool_size=3)
    assert settings.db_pool_pre_ping is False
    async with running(settings) as application:
        token = await admin_token(application, sessionmaker)
        async with answering(application, token) as http:
            # Fill the pool: three requests at once hold three connections.
            answers = await asyncio.gather(*(http.get("/v1/structures") for _ in range(3)))
            assert [a.status_code for a in answers] == [200, 200, 200]
            killed = await _terminate(backend.url, name)
            assert killed >= 1
            await asyncio.sleep(0.2)  # the server's goodbye reaches the idle connections
            for _ in range(4):
                answer = await http.get("/v1/structures")
                assert answer.status_code == 200, answer.text


async def _backends(url: str, application_name: str) -> set[int]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application_name
        )
    finally:
        await conn.close()
    return {row["pid"] for row in rows}


async def _terminate(url: str, application_name: str) -> int:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            application_name,
        )
    finally:
        await conn.close()
    return len(rows)


async def test_an_exhausted_pool_answers_503_with_retry_after(
    client: httpx.AsyncClient,
    backend: Backend,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not backend.is_postgres:
        pytest.skip("the connection pool is PostgreSQL's")
    settings = make_settings(backend.url, db_pool_size=1, db_pool_timeout_s=0.2)
    structure = await create_structure(client, "insertion")
    async with running(settings) as application:
        token = await admin_token(application, sessionmaker)
        async with answering(application, token) as http:
            async with application.state.engine.connect() as held:
                await held.execute(text("SELECT 1"))  # the only connection is busy
                with caplog.at_level(logging.WARNING, logger="tremplin.errors"):
                    busy = await http.get(f"/v1/structures/{structure['id']}")
                assert_unavailable(busy)
                assert busy.json()["type"] == "urn:tremplin:problem:unavailable"
            assert (await http.get("/v1/structures")).status_code == 200
    # The log names the route, never the path a caller typed (its ids and the rest).
    (line,) = [r.getMessage() for r in caplog.records if r.name == "tremplin.errors"]
    assert line == "database pool exhausted on GET /v1/structures/{structure_id}"
    assert structure["id"] not in caplog.text


async def test_a_statement_is_bounded_on_the_client_side(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """No server-side statement timeout at all: the client's own bound answers 503."""
    if not backend.is_postgres:
        pytest.skip("asyncpg's command timeout")
    settings = make_settings(backend.url, db_statement_timeout_ms=0, db_command_timeout_s=0.5)
    async with running(settings) as application:
        token = await admin_token(application, sessionmaker)
        async with answering(application, token) as http:
            locker = await asyncpg.connect(backend.url.replace("+asyncpg", ""))
            try:
                transaction = locker.transaction()
                await transaction.start()
                await locker.execute("LOCK TABLE structures IN ACCESS EXCLUSIVE MODE")
                blocked = await asyncio.wait_for(http.get("/v1/structures"), timeout=30)
                assert_unavailable(blocked)
                await transaction.rollback()
            finally:
                await locker.close()
            assert (await http.get("/v1/structures")).status_code == 200


async def test_a_read_run_alone_is_bounded_and_its_connection_replaced(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """GET of a person runs alone on the driver's connection: its statement is bounded by
    the client's timeout too (503, not a hang), the connection it leaves mid-statement
    is not given to anyone again, and the next reads answer, journaled."""
    if not backend.is_postgres:
        pytest.skip("asyncpg's command timeout")
    insertion = await create_structure(client, "insertion")
    person = await create(client, "/v1/candidates", candidate_payload(insertion["id"]))
    name = f"tremplin-alone-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        backend.url,
        db_statement_timeout_ms=0,
        db_command_timeout_s=0.5,
        db_pool_size=1,
        db_application_name=name,
    )
    async with running(settings) as application:
        token = await admin_token(application, sessionmaker)
        async with answering(application, token) as http:
            assert (await http.get(f"/v1/candidates/{person['id']}")).status_code == 200
            pool = application.state.engine.sync_engine.pool
            before = await _backends(backend.url, name)
            locker = await asyncpg.connect(backend.url.replace("+asyncpg", ""))
            try:
                transaction = locker.transaction()
                await transaction.start()
                # The journal row cannot be written until the lock goes.
                await locker.execute("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
                blocked = await asyncio.wait_for(
                    http.get(f"/v1/candidates/{person['id']}"), timeout=30
                )
                assert_unavailable(blocked)
                assert person["first_name"] not in blocked.text
                await transaction.rollback()
            finally:
                await locker.close()
            assert pool.checkedout() == 0
            for _ in range(3):
                assert (await http.get(f"/v1/candidates/{person['id']}")).status_code == 200
            assert pool.checkedout() == 0
            after = await _backends(backend.url, name)
            assert len(before) == len(after) == 1
            assert before != after  # the interrupted connection was closed, a new one opened
    journal = (
        await client.get("/v1/audit", params={"candidate_id": person["id"], "action": "read"})
    ).json()["items"]
    assert len(journal) == 4  # the answered reads, not the one that failed


async def test_a_read_run_alone_that_cannot_connect_answers_503(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The server refuses a new connection with an error of its own (here: too many
    connections for the role; also: starting up, in recovery): the read run alone
    answers 503 with Retry-After, as every other route does, and recovers by itself."""
    if not backend.is_postgres:
        pytest.skip("PostgreSQL's connection limits")
    insertion = await create_structure(client, "insertion")
    person = await create(client, "/v1/candidates", candidate_payload(insertion["id"]))
    role = f"tremplin_limited_{uuid.uuid4().hex[:8]}"
    admin_url = backend.url.replace("postgresql+asyncpg://", "postgresql://")
    owner = await asyncpg.connect(admin_url)
    try:
        await owner.execute(f'CREATE ROLE "{role}" LOGIN')
        await owner.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
        await owner.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        url = make_url(backend.url).set(username=role).render_as_string(hide_password=False)
        name = f"tremplin-limited-{uuid.uuid4().hex[:8]}"
        settings = make_settings(url, db_application_name=name, auth_client_cache_s=60)
        async with running(settings) as application:
            token = await admin_token(application, sessionmaker)
            async with answering(application, token) as http:
                assert (await http.get(f"/v1/candidates/{person['id']}")).status_code == 200
                await owner.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
                assert await _terminate(backend.url, name) >= 1
                await asyncio.sleep(0.2)  # the server's goodbye reaches the pool
                refused = await http.get(f"/v1/candidates/{person['id']}")
                assert_unavailable(refused)
                assert person["first_name"] not in refused.text
                await owner.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
                assert (await http.get(f"/v1/candidates/{person['id']}")).status_code == 200
    finally:
        await owner.execute(f'DROP OWNED BY "{role}"')
        await owner.execute(f'DROP ROLE IF EXISTS "{role}"')
        await owner.close()


async def test_a_cancelled_read_run_alone_leaves_no_connection_in_doubt(backend: Backend) -> None:
    """A statement run alone on the driver's connection, cancelled mid-way (a shutdown, a
    timeout around it): its connection is closed, never given to the next request with a
    statement still running on it, and the pool serves the next one at once."""
    if not backend.is_postgres:
        pytest.skip("the driver-level read is PostgreSQL's")
    name = f"tremplin-cancel-{uuid.uuid4().hex[:8]}"
    engine = create_engine(make_settings(backend.url, db_application_name=name, db_pool_size=1))
    try:
        sleep = db.DriverStatement(
            select(func.pg_sleep(bindparam("seconds", type_=Float()))), engine.dialect, ["seconds"]
        )
        running_read = asyncio.create_task(db.fetch_one_alone(engine, sleep, {"seconds": 30}))
        await asyncio.sleep(0.5)
        busy = await _backends(backend.url, name)
        running_read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running_read
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        whose = db.DriverStatement(select(func.pg_backend_pid()), engine.dialect, [])
        row = await asyncio.wait_for(db.fetch_one_alone(engine, whose, {}), timeout=10)
        assert row is not None
        assert len(busy) == 1
        assert row[0] not in busy  # a new connection, not the one left mid-statement
    finally:
        await engine.dispose()


async def test_sqlite_a_cancelled_transaction_run_alone_ends_before_its_connection_returns(
    backend: Backend,
) -> None:
    """SQLite's one-hop transaction, cancelled while it runs on the driver's thread: the
    connection goes back to the pool only once the transaction has ended (committed
    here), so the next request never finds it in a transaction."""
    if backend.is_postgres:
        pytest.skip("SQLite's driver thread")
    engine = create_engine(make_settings(backend.url))
    table = f"cancel_probe_{uuid.uuid4().hex[:8]}"
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (n INTEGER)"))

        def slow_write(raw: sqlite3.Connection) -> None:
            raw.execute(f"INSERT INTO {table} VALUES (1)")
            time.sleep(0.5)

        began = time.monotonic()
        work = asyncio.create_task(db.run_alone_sqlite(engine, slow_write))
        await asyncio.sleep(0.1)
        work.cancel()
        with pytest.raises(asyncio.CancelledError):
            await work
        assert time.monotonic() - began >= 0.5  # released once the work had ended
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]

        def count(raw: sqlite3.Connection) -> int:
            return int(raw.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

        assert await db.run_alone_sqlite(engine, count) == 1
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await engine.dispose()


async def test_readiness_answers_even_when_no_connection_is_free(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    """Whatever the database does, /readyz answers within READINESS_TIMEOUT_S: here the
    pool would make it wait an hour."""
    if not backend.is_postgres:
        pytest.skip("the connection pool is PostgreSQL's")
    settings = make_settings(
        backend.url, db_pool_size=1, db_pool_timeout_s=3600, readiness_timeout_s=0.3
    )
    async with running(settings) as application, answering(application) as http:
        async with application.state.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            answer = await asyncio.wait_for(http.get("/readyz"), timeout=30)
            assert answer.status_code == 503
            assert answer.json()["type"] == "urn:tremplin:problem:not-ready"
        assert (await http.get("/readyz")).status_code == 200


# --- SQLite: reads take no write lock ---------------------------------------------------------


def _sqlite_path(url: str) -> str:
    database = make_url(url).database
    assert database
    return database


@asynccontextmanager
async def writer_holding_the_lock(url: str) -> AsyncIterator[sqlite3.Connection]:
    """Another connection (a long import, another process) in the middle of a write."""
    conn = sqlite3.connect(_sqlite_path(url), isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


async def test_sqlite_reads_do_not_wait_for_a_writer(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """While another connection holds the write lock for longer than the busy timeout,
    reads that write nothing answer: lists, the token endpoint, /readyz."""
    if backend.is_postgres:
        pytest.skip("SQLite's single writer")
    settings = make_settings(backend.url, sqlite_busy_timeout_ms=300)
    credentials = await create_api_client(sessionmaker, "admin")
    await create_structure(client, "insertion")
    async with running(settings) as application, answering(application) as anonymous:
        token = await get_token(anonymous, credentials)
        async with answering(application, token) as http, writer_holding_the_lock(backend.url):
            listed = await http.get("/v1/structures")
            assert listed.status_code == 200, listed.text
            assert len(listed.json()["items"]) == 1
            assert (await anonymous.get("/readyz")).status_code == 200
            form = {
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            }
            assert (await anonymous.post("/v1/oauth/token", data=form)).status_code == 200
            # A write waits for the lock, up to the busy timeout, then 503.
            assert_unavailable(await http.post("/v1/structures", json=structure_payload()))


async def test_sqlite_a_journaled_read_waits_for_the_writer_then_answers(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A read that journals is a write: it waits for a writer (never a 503 from its
    journal row meeting a newer snapshot), and answers once the writer commits."""
    if backend.is_postgres:
        pytest.skip("SQLite's single writer")
    insertion = await create_structure(client, "insertion")
    person = await create(client, "/v1/candidates", candidate_payload(insertion["id"]))
    settings = make_settings(backend.url, sqlite_busy_timeout_ms=5000)
    async with running(settings) as application:
        token = await admin_token(application, sessionmaker)
        async with answering(application, token) as http:
            async with writer_holding_the_lock(backend.url) as writer:
                reading = asyncio.create_task(http.get(f"/v1/candidates/{person['id']}"))
                await asyncio.sleep(0.3)
                assert not reading.done()  # it waits (a 503 would be done by now)
                writer.execute(
                    "UPDATE structures SET name = name || '' WHERE id = ?",
                    (uuid.UUID(insertion["id"]).hex,),
                )
                writer.execute("COMMIT")
                answer = await asyncio.wait_for(reading, timeout=30)
            assert answer.status_code == 200, answer.text
    journal = (
        await client.get("/v1/audit", params={"candidate_id": person["id"], "action": "read"})
    ).json()["items"]
    assert len(journal) == 1


async def test_sqlite_no_503_under_concurrent_writers(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Sixty-four writers and sixty-four journaled readers at once, three rounds: every
    request answers 2xx (a journaled read whose journal row meets a newer snapshot runs
    again as a writer instead of failing)."""
    if backend.is_postgres:
        pytest.skip("SQLite's single writer")
    insertion = await create_structure(client, "insertion")
    people = [
        (await create(client, "/v1/candidates", candidate_payload(insertion["id"])))["id"]
        for _ in range(4)
    ]
    settings = make_settings(backend.url, sqlite_busy_timeout_ms=2500)
    async with running(settings) as application:
        token = await admin_token(application, sessionmaker)
        async with answering(application, token) as http:
            statuses: list[int] = []
            for _ in range(3):
                answers = await asyncio.gather(
                    *(http.post("/v1/structures", json=structure_payload()) for _ in range(64)),
                    *(http.get(f"/v1/candidates/{people[i % 4]}") for i in range(64)),
                )
                statuses += [a.status_code for a in answers]
    assert sorted(set(statuses)) == [200, 201], {s: statuses.count(s) for s in set(statuses)}


async def test_sqlite_writers_take_turns_in_arrival_order(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Writers queue in the process, first come first served, instead of each polling
    SQLite's busy handler (which serves them in no order and can starve one)."""
    if backend.is_postgres:
        pytest.skip("SQLite's single writer")
    settings = make_settings(backend.url, sqlite_busy_timeout_ms=20_000)
    async with running(settings) as application:
        token = await admin_token(application, sessionmaker)
        async with (
            answering(application, token) as http,
            writer_holding_the_lock(backend.url) as writer,
        ):
            waiting = []
            for turn in range(8):
                payload = structure_payload(name=f"Turn {turn}")
                waiting.append(asyncio.create_task(http.post("/v1/structures", json=payload)))
                await asyncio.sleep(0.05)  # each one waits before the next arrives
            writer.execute("ROLLBACK")
            answers = await asyncio.gather(*waiting)
    assert [a.status_code for a in answers] == [201] * 8
    listed = (await client.get("/v1/structures")).json()["items"]  # in id (creation) order
    assert [s["name"] for s in listed] == [f"Turn {turn}" for turn in range(8)]


# --- several processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def serve_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(values)
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


POSTGRES_ELSEWHERE = "postgresql+asyncpg://tremplin@db.invalid/tremplin"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"JWT_SIGNING_KEY": TEST_SIGNING_KEY}, "DATABASE_URL"),
        # The same file as the default, named relatively: still SQLite, still refused.
        (
            {"JWT_SIGNING_KEY": TEST_SIGNING_KEY, "DATABASE_URL": "sqlite+aiosqlite:///var/t.db"},
            "DATABASE_URL",
        ),
        ({"DATABASE_URL": POSTGRES_ELSEWHERE}, "JWT_SIGNING_KEY"),
        ({"DATABASE_URL": POSTGRES_ELSEWHERE, "JWT_SIGNING_KEY": ""}, "JWT_SIGNING_KEY"),
        ({"DATABASE_URL": POSTGRES_ELSEWHERE, "JWT_SIGNING_KEY": "k"}, "JWT_SIGNING_KEY"),
        # 31 bytes: one short of RFC 7518's minimum for HS256.
        ({"DATABASE_URL": POSTGRES_ELSEWHERE, "JWT_SIGNING_KEY": "q" * 31}, "32 bytes"),
    ],
    ids=["sqlite-default", "sqlite-relative", "no-key", "empty-key", "one-char-key", "short-key"],
)
def test_production_refuses_to_serve_a_dangerous_configuration(
    values: dict[str, str], named: str
) -> None:
    env = serve_env(ENVIRONMENT="production", **values)
    if "JWT_SIGNING_KEY" not in values:
        env.pop("JWT_SIGNING_KEY", None)
    result = run_cli("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "Traceback" not in result.stderr
    assert "q" * 31 not in result.stderr  # a key is never echoed


def test_a_long_enough_key_and_postgresql_are_accepted_in_production() -> None:
    settings = Settings(
        environment="production",
        database_url="postgres://tremplin@db.invalid/tremplin",
        jwt_signing_key="q" * 32,  # type: ignore[arg-type]
    )
    assert settings.production_problems() == []
    assert settings.database_url == POSTGRES_ELSEWHERE


async def test_an_empty_signing_key_outside_production_is_the_generated_one(
    backend: Backend,
) -> None:
    """`JWT_SIGNING_KEY=` in a development .env: as if unset, never a 500 on tokens."""
    settings = make_settings(backend.url, jwt_signing_key="")
    assert settings.jwt_signing_key is None
    async with running(settings) as application:
        assert await admin_token(application, application.state.sessionmaker)


def test_an_empty_variable_is_as_if_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`PORT=` in a compose or env file: the default, not a refusal of "" as a number."""
    for name in ("PORT", "WORKERS", "REDIS_URL", "LOG_LEVEL", "DB_POOL_SIZE"):
        monkeypatch.setenv(name, "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    defaults = Settings.model_fields
    assert settings.port == defaults["port"].default == 8000
    assert settings.redis_url is None
    assert settings.log_level == "INFO"
    assert settings.db_pool_size == defaults["db_pool_size"].default


def test_production_settings_are_checked_by_the_app_too() -> None:
    with pytest.raises(ProductionMisconfigured, match="DATABASE_URL"):
        create_app(
            Settings(
                environment="production",
                database_url=DEFAULT_SQLITE_URL,
                jwt_signing_key=TEST_SIGNING_KEY,  # type: ignore[arg-type]
            )
        )


def test_serve_starts_several_workers(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"
    migrations.upgrade(url)
    port = free_port()
    env = serve_env(DATABASE_URL=url, JWT_SIGNING_KEY=TEST_SIGNING_KEY, SHUTDOWN_TIMEOUT_S="3")
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--workers", "2", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        answer = wait_for_http(f"http://127.0.0.1:{port}/readyz", server)
        assert answer.status_code == 200
        children = _children(server.pid)
        assert len(children) >= 2, children
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) is not None


def wait_for_http(
    url: str, process: subprocess.Popen[Any], timeout_s: float = 60
) -> httpx.Response:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def _children(pid: int) -> list[int]:
    """Worker processes: uvicorn's supervisor spawns them (multiprocessing also starts a
    resource tracker, which is no worker: it runs no `app` code)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and "resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return found


# --- migration 0009: idempotency keys get the caller's kind -----------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def url_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        await asyncio.to_thread(migrations.upgrade, url, "0005_job_ended_reason")
        yield url
        return
    server = require_postgres()
    url = await create_postgres_database(server, prefix="tremplin_m0009")
    try:
        await asyncio.to_thread(migrations.upgrade, url, "0005_job_ended_reason")
        yield url
    finally:
        await drop_postgres_database(server, url)


async def test_migration_0009_names_the_kind_of_existing_keys(url_at_0005: str) -> None:
    engine = create_async_engine(url_at_0005)
    client_id = uuid7()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO api_clients (id, name, role, scopes, secret_hash, "
                    "credential_version, created_at, updated_at, version) VALUES "
                    "(:id, 'c', 'admin', '[]', :hash, 1, :now, :now, 1)"
                ),
                {"id": _raw_uuid(engine, client_id), "hash": "0" * 64, "now": _now(engine)},
            )
            for actor in (str(client_id), "user-7f3a"):
                await conn.execute(
                    text(
                        "INSERT INTO idempotency_keys (id, actor_id, key, fingerprint, "
                        "response_status, response_headers, created_at, expires_at) VALUES "
                        "(:id, :actor, 'k', 'f', 201, '{}', :now, :now)"
                    ),
                    {"id": _raw_uuid(engine, uuid7()), "actor": actor, "now": _now(engine)},
                )
        await asyncio.to_thread(migrations.upgrade, url_at_0005)
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT actor_id, actor_kind FROM idempotency_keys"))
            kinds = dict(rows.all())
            assert kinds == {str(client_id): "client", "user-7f3a": "user"}
            # The same key for a client and for a user of the same id: two rows.
            await conn.execute(insert_key("user", str(client_id)))
            await conn.commit()
        await asyncio.to_thread(migrations.downgrade, url_at_0005, "0005_job_ended_reason")
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT actor_id FROM idempotency_keys"))).all()
            assert sorted(r[0] for r in left) == sorted([str(client_id), "user-7f3a"])
    finally:
        await engine.dispose()


def insert_key(kind: str, actor_id: str) -> Any:
    from app.models import IdempotencyKey

    return insert(IdempotencyKey).values(
        actor_kind=kind,
        actor_id=actor_id,
        key="k",
        fingerprint="f",
        response_status=201,
        response_headers={},
        expires_at=_now_dt(),
    )


def _raw_uuid(engine: Any, value: uuid.UUID) -> Any:
    return value if engine.dialect.name == "postgresql" else value.hex


def _now(engine: Any) -> Any:
    return _now_dt() if engine.dialect.name == "postgresql" else "2026-01-01 00:00:00"


def _now_dt() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_behind_pgbouncer_statements_are_not_cached(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """DB_PGBOUNCER: every statement is prepared afresh under a unique name, so a
    transaction-mode pooler may hand each transaction another server connection."""
    if not backend.is_postgres:
        pytest.skip("PgBouncer sits in front of PostgreSQL")
    async with running(make_settings(backend.url, db_pgbouncer=True)) as application:
        token = await admin_token(application, sessionmaker)
        async with answering(application, token) as http:
            for _ in range(3):
                assert (await http.get("/v1/structures")).status_code == 200
            assert (await http.post("/v1/structures", json=structure_payload())).status_code == 201
        async with application.state.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            assert driver._stmt_cache.get_max_size() == 0


async def test_the_short_switch_interval_lasts_while_matching_computes_in_threads() -> None:
    """1 ms while a matching job holds a worker thread (the event loop gets the GIL back
    quickly), the default again once none does (cheaper for everything else)."""
    from app.services.matching import offload

    default = sys.getswitchinterval()
    assert default != offload.FAST_SWITCH_INTERVAL_S
    started, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    seen: list[float] = []

    def job() -> None:
        loop.call_soon_threadsafe(started.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)
        seen.append(sys.getswitchinterval())

    first = asyncio.create_task(offload.in_thread(job))
    second = asyncio.create_task(offload.in_thread(lambda: seen.append(sys.getswitchinterval())))
    await started.wait()
    await second  # one job ends while the other still computes: still 1 ms
    assert sys.getswitchinterval() == offload.FAST_SWITCH_INTERVAL_S
    release.set()
    await first
    assert seen == [offload.FAST_SWITCH_INTERVAL_S, offload.FAST_SWITCH_INTERVAL_S]
    assert sys.getswitchinterval() == default
