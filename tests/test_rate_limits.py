"""Rate limits: the token endpoint's failures per client and address, the caller's address
behind trusted proxies, separate namespaces for API clients and OIDC users, and limits
shared by several processes through Redis."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import migrations
from app.config import PROJECT_ROOT
from app.main import create_app
from app.ratelimit import RateLimiter
from app.routers.deps import forwarded_client
from tests.conftest import (
    TEST_SIGNING_KEY,
    Backend,
    Credentials,
    create_api_client,
    get_token,
    http_client,
    make_settings,
)
from tests.factories import structure_payload
from tests.test_runtime import free_port, serve_env, wait_for_http

TOKEN_URL = "/v1/oauth/token"


@asynccontextmanager
async def running(backend: Backend, **overrides: Any) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(backend.url, **overrides))
    async with application.router.lifespan_context(application):
        yield application


async def attempt(
    http: httpx.AsyncClient, credentials: Credentials, secret: str | None = None, via: str = ""
) -> int:
    """One token request; `via` is the X-Forwarded-For header a proxy would send."""
    form = {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": secret if secret is not None else credentials.client_secret,
    }
    headers = {"X-Forwarded-For": via} if via else {}
    return (await http.post(TOKEN_URL, data=form, headers=headers)).status_code


WRONG = "not-the-secret"
PROXY = ["127.0.0.1/32"]  # the test transport's peer: our reverse proxy in these tests


# --- the token endpoint: failures per client id and address -----------------------------------


async def test_failures_against_one_client_do_not_lock_another_at_the_same_address(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    a = await create_api_client(sessionmaker, "admin")
    b = await create_api_client(sessionmaker, "admin")
    async with (
        running(backend, rate_limit_token_failures=3) as application,
        http_client(application) as http,
    ):
        assert [await attempt(http, a, WRONG) for _ in range(3)] == [401, 401, 401]
        assert await attempt(http, a) == 429  # this address is done guessing a's secret
        assert await attempt(http, b) == 200  # b, from the same address, is not touched


async def test_failures_from_one_address_do_not_lock_the_client_elsewhere(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    a = await create_api_client(sessionmaker, "admin")
    async with (
        running(
            backend,
            trusted_proxies=PROXY,
            rate_limit_token_failures=3,
            rate_limit_token_client_failures=5,
        ) as application,
        http_client(application) as http,
    ):
        x, y, z = "198.51.100.7", "203.0.113.20", "192.0.2.44"
        assert [await attempt(http, a, WRONG, via=x) for _ in range(3)] == [401] * 3
        assert await attempt(http, a, via=x) == 429
        assert await attempt(http, a, via=y) == 200
        # Even with the client's whole failure budget spent (3 from x, 2 from z)...
        assert [await attempt(http, a, WRONG, via=z) for _ in range(2)] == [401] * 2
        assert await attempt(http, a, via=z) == 429  # z has failed for a: it waits
        assert await attempt(http, a, via=y) == 200  # y never failed: it is let in


async def test_brute_force_stays_bounded(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """One address: a few guesses, then 429 whatever it sends. Many addresses: once the
    client's budget is spent, about one guess per address and window."""
    a = await create_api_client(sessionmaker, "admin")
    async with (
        running(
            backend,
            trusted_proxies=PROXY,
            rate_limit_token_failures=3,
            rate_limit_token_client_failures=5,
        ) as application,
        http_client(application) as http,
    ):
        single = [await attempt(http, a, WRONG, via="198.51.100.1") for _ in range(6)]
        assert single == [401, 401, 401, 429, 429, 429]
        assert await attempt(http, a, via="198.51.100.1") == 429
        guesses = 3
        for i in range(2, 12):
            address = f"198.51.100.{i}"
            first = await attempt(http, a, WRONG, via=address)
            second = await attempt(http, a, WRONG, via=address)
            guesses += [first, second].count(401)
            if i >= 3:  # the client's budget of 5 failures is spent
                assert (first, second) == (401, 429), (address, first, second)
        assert guesses == 5 + 9  # the budget, then one per new address
        assert await attempt(http, a, via="198.51.100.200") == 200  # the secret's holder


async def test_rotating_x_forwarded_for_from_an_untrusted_peer_changes_nothing(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    a = await create_api_client(sessionmaker, "admin")
    async with (
        running(backend, rate_limit_token_failures=3) as application,  # no trusted proxy
        http_client(application) as http,
    ):
        answers = [await attempt(http, a, WRONG, via=f"10.0.0.{i}") for i in range(3)]
        assert answers == [401, 401, 401]
        assert await attempt(http, a, via="10.0.0.99") == 429


async def test_behind_a_trusted_proxy_only_the_address_it_saw_counts(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The caller writes what it likes on the left of X-Forwarded-For; the proxy appends
    the address it saw, the right-most one, and that is the one that counts."""
    a = await create_api_client(sessionmaker, "admin")
    async with (
        running(backend, trusted_proxies=PROXY, rate_limit_token_failures=3) as application,
        http_client(application) as http,
    ):
        answers = [await attempt(http, a, WRONG, via=f"10.9.9.{i}, 203.0.113.9") for i in range(3)]
        assert answers == [401, 401, 401]
        assert await attempt(http, a, via="10.9.9.77, 203.0.113.9") == 429
        assert await attempt(http, a, via="203.0.113.10") == 200


async def test_unknown_client_ids_are_limited_per_address(
    anonymous: httpx.AsyncClient, backend: Backend
) -> None:
    async with (
        running(backend, rate_limit_anonymous=3) as application,
        http_client(application) as http,
    ):
        ghosts = [Credentials(str(uuid.uuid4()), "x") for _ in range(4)]
        assert [await attempt(http, g) for g in ghosts] == [401, 401, 401, 429]


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("198.51.100.7", "", "198.51.100.7"),  # no proxy, no header
        ("198.51.100.7", "1.2.3.4", "198.51.100.7"),  # an untrusted peer's header is ignored
        ("10.0.0.5", "1.2.3.4", "1.2.3.4"),  # our proxy's header is believed
        ("10.0.0.5", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the right-most untrusted entry
        ("10.0.0.5", "1.2.3.4, 10.0.0.9", "1.2.3.4"),  # several proxies of ours
        ("10.0.0.5", "10.0.0.8, 10.0.0.9", "10.0.0.8"),  # every hop ours: the first
        ("10.0.0.5", "", "10.0.0.5"),  # our proxy without a header: itself
        ("fd00::1", "2001:db8::7", "2001:db8::7"),  # IPv6 proxies and callers
        ("10.0.0.5", "not-an-address", "not-an-address"),
    ],
)
def test_forwarded_client(peer: str, header: str, expected: str) -> None:
    trusted = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    assert forwarded_client(peer, [header] if header else [], trusted) == expected


# --- API clients and OIDC users never share a namespace ---------------------------------------

OIDC_ISSUER = "https://idp.example.org/realms/namespaces"
OIDC_AUDIENCE = "tremplin-front"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "ns-key", "use": "sig", "alg": "RS256"})
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return key, path


def user_token(key: rsa.RSAPrivateKey, sub: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": OIDC_ISSUER,
        "aud": OIDC_AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "tremplin_role": "admin",
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "ns-key"})


def oidc_settings(idp: tuple[rsa.RSAPrivateKey, Path]) -> dict[str, Any]:
    return {
        "oidc_issuer": OIDC_ISSUER,
        "oidc_audience": OIDC_AUDIENCE,
        "oidc_jwks_file": idp[1],
    }


async def test_a_user_whose_subject_is_a_client_id_has_keys_of_its_own(
    client: httpx.AsyncClient,
    backend: Backend,
    sessionmaker: async_sessionmaker[AsyncSession],
    idp: tuple[rsa.RSAPrivateKey, Path],
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with running(backend, **oidc_settings(idp)) as application:
        async with http_client(application) as anonymous:
            client_token = await get_token(anonymous, credentials)
        key = {"Idempotency-Key": "same-key"}
        async with (
            http_client(application, client_token) as as_client,
            http_client(application, user_token(idp[0], credentials.client_id)) as as_user,
        ):
            first = await as_client.post("/v1/structures", json=structure_payload(), headers=key)
            assert first.status_code == 201, first.text
            other = await as_user.post("/v1/structures", json=structure_payload(), headers=key)
            assert other.status_code == 201, other.text  # not a reuse (422), not a replay
            assert "idempotent-replayed" not in other.headers
            assert other.json()["id"] != first.json()["id"]
            again = await as_client.post(
                "/v1/structures", json=json.loads(first.request.content), headers=key
            )
            assert again.headers.get("idempotent-replayed") == "true"
            assert again.json()["id"] == first.json()["id"]


async def test_a_user_whose_subject_is_a_client_id_has_a_rate_budget_of_its_own(
    client: httpx.AsyncClient,
    backend: Backend,
    sessionmaker: async_sessionmaker[AsyncSession],
    idp: tuple[rsa.RSAPrivateKey, Path],
) -> None:
    credentials = await create_api_client(sessionmaker, "admin")
    async with running(backend, rate_limit_admin=3, **oidc_settings(idp)) as application:
        async with http_client(application) as anonymous:
            client_token = await get_token(anonymous, credentials)
        async with (
            http_client(application, client_token) as as_client,
            http_client(application, user_token(idp[0], credentials.client_id)) as as_user,
        ):
            spent = [(await as_client.get("/v1/structures")).status_code for _ in range(4)]
            assert spent == [200, 200, 200, 429]
            assert (await as_user.get("/v1/structures")).status_code == 200


# --- several processes share their limits through Redis ----------------------------------------

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the machine's Redis; its keys deleted after."""
    import redis

    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except (OSError, redis.RedisError):
        connection.close()
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true but Redis does not answer at {REDIS_URL}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    prefix = f"tremplin-test-{secrets.token_hex(4)}"
    try:
        yield prefix
    finally:
        for name in connection.scan_iter(match=f"{prefix}*"):
            connection.delete(name)
        connection.close()


def test_two_processes_share_one_limit_through_redis(tmp_path: Path, redis_prefix: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    migrations.upgrade(url)
    env = serve_env(
        DATABASE_URL=url,
        JWT_SIGNING_KEY=TEST_SIGNING_KEY,
        REDIS_URL=REDIS_URL,
        RATE_LIMIT_KEY_PREFIX=redis_prefix,
        RATE_LIMIT_ADMIN="6",
        SHUTDOWN_TIMEOUT_S="3",
    )
    created = subprocess.run(
        [sys.executable, "-m", "app", "create-client", "--role", "admin", "--name", "shared"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    credentials = json.loads(created.stdout)
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port, server in zip(ports, servers, strict=True):
            wait_for_http(f"http://127.0.0.1:{port}/healthz", server)
        answers: list[tuple[int, int]] = []
        with httpx.Client(timeout=10) as http:
            token = http.post(
                f"http://127.0.0.1:{ports[0]}{TOKEN_URL}",
                data={"grant_type": "client_credentials", **credentials},
            ).json()["access_token"]
            for i in range(10):
                port = ports[i % 2]
                answer = http.get(
                    f"http://127.0.0.1:{port}/v1/structures",
                    headers={"Authorization": f"Bearer {token}"},
                )
                answers.append((port, answer.status_code))
        served = [port for port, status in answers if status == 200]
        assert len(served) == 6, answers  # one budget of 6, not 6 per process
        assert set(served) == set(ports)  # both processes took from it
        assert [status for _, status in answers[6:]] == [429] * 4
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


async def test_without_redis_the_limits_open_rather_than_refuse(
    client: httpx.AsyncClient,
    backend: Backend,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    credentials = await create_api_client(sessionmaker, "admin")
    async with running(backend, redis_url=closed, rate_limit_admin=1) as application:
        async with http_client(application) as anonymous:
            token = await get_token(anonymous, credentials)
        async with http_client(application, token) as http:
            assert [(await http.get("/v1/structures")).status_code for _ in range(3)] == [200] * 3
    assert "Redis unavailable" in caplog.text


# --- REDIS_URL: what Settings accepts is what limits' Redis storage accepts ------------------


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0", "rediss://redis.example:6380/1", "unix:///run/redis.sock"],
)
async def test_every_accepted_redis_url_builds_shared_limits(url: str) -> None:
    limiter = RateLimiter(make_settings("sqlite+aiosqlite:///unused.db", redis_url=url))
    assert limiter.shared
    await limiter.close()


@pytest.mark.parametrize("url", ["", "  "])
def test_an_empty_redis_url_means_limits_per_process(url: str) -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", redis_url=url)
    assert settings.redis_url is None
    assert not RateLimiter(settings).shared


@pytest.mark.parametrize(
    "url", ["localhost:6379", "http://127.0.0.1:6379", "memcached://127.0.0.1:11211"]
)
def test_a_redis_url_limits_cannot_use_is_refused_by_the_settings(url: str) -> None:
    with pytest.raises(ValidationError, match="redis://") as caught:
        make_settings("sqlite+aiosqlite:///unused.db", redis_url=url)
    assert [e["loc"] for e in caught.value.errors()] == [("redis_url",)]
