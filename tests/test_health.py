"""Probes an orchestrator relies on, and the request id a partner quotes to support."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import jwt
import pytest

from app import migrations
from app.main import create_app
from tests.conftest import (
    BACKENDS,
    TEST_SIGNING_KEY,
    Backend,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
    require_postgres,
)

PROBLEM_JSON = "application/problem+json"
NOT_READY = "urn:tremplin:problem:not-ready"


@asynccontextmanager
async def serving(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on another database, its lifespan running, errors answered not raised."""
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://tremplin.test") as c:
            yield c


def assert_not_ready(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 503
    assert body["type"] == NOT_READY
    assert body["instance"] == "/readyz"


def closed_port() -> int:
    """A local TCP port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_answer_head_like_get_without_a_body(
    client: httpx.AsyncClient, path: str
) -> None:
    """Load balancers probe with HEAD: the GET's status and headers, no body."""
    got = await client.get(path)
    head = await client.head(path)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))
    refused = await client.put(path)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD"


async def test_readyz_at_head(client: httpx.AsyncClient, backend: Backend) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["revision"] == migrations.head_revision()
    assert body["revision"] is not None
    assert body["database"] == ("postgresql" if backend.is_postgres else "sqlite")


@pytest.fixture(params=BACKENDS)
async def never_migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    server = require_postgres()
    url = await create_postgres_database(server, prefix="tremplin_unmigrated")
    try:
        yield url
    finally:
        await drop_postgres_database(server, url)


async def test_readyz_503_on_never_migrated_database(never_migrated_url: str) -> None:
    async with serving(never_migrated_url) as client:
        assert_not_ready(await client.get("/readyz"))
        head = await client.head("/readyz")
    assert (head.status_code, head.content) == (503, b"")
    assert head.headers["content-type"] == PROBLEM_JSON
    assert head.headers["retry-after"]


async def test_readyz_503_on_sqlite_downgraded_to_base(tmp_path: Path) -> None:
    """alembic_version exists but records no revision: the schema is not at the head."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'downgraded.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    await asyncio.to_thread(migrations.downgrade, url, "base")
    async with serving(url) as client:
        assert_not_ready(await client.get("/readyz"))


# The next two need no server: asyncpg is pointed at a port where nothing listens.


@pytest.mark.parametrize("driver", ["postgresql"])
async def test_readyz_503_when_database_server_refuses_connections(driver: str) -> None:
    """A PostgreSQL server that is down: not ready (503), not an internal error (500)."""
    url = f"{driver}+asyncpg://tremplin@127.0.0.1:{closed_port()}/tremplin"
    async with serving(url) as client:
        assert_not_ready(await client.get("/readyz"))


@pytest.mark.parametrize("driver", ["postgresql"])
async def test_api_503_with_request_id_when_database_server_refuses_connections(
    driver: str,
) -> None:
    """While the database is down, calls fail as documented (503) and stay traceable."""
    url = f"{driver}+asyncpg://tremplin@127.0.0.1:{closed_port()}/tremplin"
    # A well-signed token, so the request gets as far as the database (the client lookup).
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "urn:tremplin",
            "aud": "tremplin-api",
            "sub": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 60,
            "cv": 1,
            "scope": "structures:read",
        },
        TEST_SIGNING_KEY,
        algorithm="HS256",
    )
    headers = {"X-Request-ID": "partner-42", "Authorization": f"Bearer {token}"}
    async with serving(url) as client:
        response = await client.get("/v1/structures", headers=headers)
    observed = (response.status_code, response.headers.get("x-request-id"))
    assert observed == (503, "partner-42"), response.text
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "support-ticket-1234"})
    assert response.headers["x-request-id"] == "support-ticket-1234"


async def test_request_id_is_echoed_on_errors(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/candidates/01939a2e-0000-7000-8000-000000000099",
        headers={"X-Request-ID": "support-ticket-404"},
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["x-request-id"] == "support-ticket-404"


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert first.headers.get("x-request-id")
    assert second.headers.get("x-request-id")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_overlong_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    """An id over 128 characters is not echoed (it would flood logs); a fresh one is made."""
    response = await client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    request_id = response.headers["x-request-id"]
    assert request_id != "x" * 200
    assert 0 < len(request_id) <= 128
