"""The last admin client able to manage clients cannot be revoked, expired or narrowed:
otherwise nobody could create, rotate or revoke credentials any more."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import session_scope
from app.domain.enums import Role
from app.models import ApiClient
from app.services import clients
from app.services.permissions import default_scopes
from tests.access_helpers import is_problem, subject_of
from tests.conftest import Backend, create_api_client, get_token, http_client

LAST = "urn:tremplin:problem:last-client-admin"
NEXT_YEAR = (datetime.now(UTC) + timedelta(days=365)).isoformat()
ADMIN_SCOPES = sorted(default_scopes(Role.ADMIN))
WITHOUT_CLIENTS_ADMIN = sorted(set(ADMIN_SCOPES) - {"clients:admin"})


async def managers(sessionmaker: async_sessionmaker[AsyncSession]) -> set[str]:
    """Clients that can manage clients and will keep that power."""
    async with sessionmaker() as session:
        rows = await session.scalars(select(ApiClient))
        return {
            str(c.id)
            for c in rows
            if c.role == "admin"
            and "clients:admin" in c.scopes
            and c.revoked_at is None
            and c.expires_at is None
        }


async def test_the_last_manager_stays(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    me = subject_of(client)
    assert await managers(sessionmaker) == {me}
    for method, path, body in (
        ("POST", f"/v1/clients/{me}/revoke", None),
        ("PATCH", f"/v1/clients/{me}", {"expires_at": NEXT_YEAR}),
        ("PATCH", f"/v1/clients/{me}", {"scopes": WITHOUT_CLIENTS_ADMIN}),
    ):
        refused = await client.request(method, path, json=body)
        assert is_problem(refused, 409), refused.text
        assert refused.json()["type"] == LAST
        assert "clients:admin" in refused.json()["detail"]
    assert await managers(sessionmaker) == {me}
    # What keeps the power is allowed.
    for body in ({"name": "Federation console"}, {"expires_at": None}):
        assert (await client.patch(f"/v1/clients/{me}", json=body)).status_code == 200
    rotated = await client.post(f"/v1/clients/{me}/rotate-secret")
    assert rotated.status_code == 200, rotated.text


async def test_another_manager_lets_one_go(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    me = subject_of(client)
    # Neither an expiring admin nor an admin without the scope is a lasting manager.
    expiring = await create_api_client(sessionmaker, "admin", expires_at=NEXT_YEAR)
    narrow = await create_api_client(sessionmaker, "admin", scopes=WITHOUT_CLIENTS_ADMIN)
    observer = await create_api_client(sessionmaker, "observer")
    assert is_problem(await client.post(f"/v1/clients/{me}/revoke"), 409)
    # Others are not guarded.
    for other in (expiring, narrow, observer):
        revoked = await client.post(f"/v1/clients/{other.client_id}/revoke")
        assert revoked.status_code == 200, revoked.text
    second = await create_api_client(sessionmaker, "admin")
    narrowed = await client.patch(f"/v1/clients/{me}", json={"scopes": WITHOUT_CLIENTS_ADMIN})
    assert narrowed.status_code == 200, narrowed.text
    assert await managers(sessionmaker) == {second.client_id}
    # The second is now the last one.
    async with http_client(app) as anonymous:
        token = await get_token(anonymous, second)
    async with http_client(app, token) as other_admin:
        refused = await other_admin.post(f"/v1/clients/{second.client_id}/revoke")
        assert is_problem(refused, 409), refused.text
        # Giving the scope back makes the first one a manager again, then the second may go.
        restored = await other_admin.patch(f"/v1/clients/{me}", json={"scopes": ADMIN_SCOPES})
        assert restored.status_code == 200, restored.text
        gone = await other_admin.post(f"/v1/clients/{second.client_id}/revoke")
        assert gone.status_code == 200, gone.text
    assert await managers(sessionmaker) == {me}


async def test_two_admins_revoking_each_other_at_once_leave_one(
    backend: Backend,
    client: httpx.AsyncClient,
    app: FastAPI,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Each request sees the other manager and would go ahead alone; the locks make the
    second wait for the first and then see it."""
    if not backend.is_postgres:
        pytest.skip("concurrency is proven on PostgreSQL (SQLite serialises writers)")
    me = subject_of(client)
    first = await create_api_client(sessionmaker, "admin")
    second = await create_api_client(sessionmaker, "admin")
    assert (await client.post(f"/v1/clients/{me}/revoke")).status_code == 200
    assert await managers(sessionmaker) == {first.client_id, second.client_id}

    # Deterministic interleaving: A holds its locks, revoking B, while B tries to revoke A.
    async with sessionmaker() as holder:
        await clients.revoke(holder, uuid.UUID(second.client_id))
        waiting = asyncio.create_task(_revoke_in_own_session(sessionmaker, first.client_id))
        await _until_blocked_on_a_lock(engine)
        await holder.commit()
    outcome = await waiting
    assert outcome == "last-client-admin"
    assert await managers(sessionmaker) == {first.client_id}

    # Through the API, many times: never zero.
    for _ in range(5):
        third = await create_api_client(sessionmaker, "admin")
        async with http_client(app) as anonymous:
            tokens = [await get_token(anonymous, c) for c in (first, third)]
        async with (
            http_client(app, tokens[0]) as a,
            http_client(app, tokens[1]) as b,
        ):
            answers = await asyncio.gather(
                a.post(f"/v1/clients/{third.client_id}/revoke"),
                b.post(f"/v1/clients/{first.client_id}/revoke"),
            )
        codes = sorted(r.status_code for r in answers)
        assert codes in ([200, 401], [200, 409]), [r.text for r in answers]
        left = await managers(sessionmaker)
        assert len(left) == 1
        first = first if first.client_id in left else third


async def _until_blocked_on_a_lock(engine: AsyncEngine) -> None:
    """Wait until another transaction of this database waits for a row lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(600):
        async with engine.connect() as conn:
            if await conn.scalar(query):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the second revocation never waited for the first's locks")


async def _revoke_in_own_session(
    sessionmaker: async_sessionmaker[AsyncSession], client_id: str
) -> str:
    try:
        async with session_scope(sessionmaker) as session:
            await clients.revoke(session, uuid.UUID(client_id))
    except clients.LastClientAdmin as exc:
        return exc.slug
    return "revoked"
