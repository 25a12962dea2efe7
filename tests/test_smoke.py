from __future__ import annotations

import httpx

from tests.factories import create_candidate


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_candidate_created_in_recruitment(client: httpx.AsyncClient) -> None:
    candidate = await create_candidate(client)
    assert candidate["phase"] == "recruitment"
    assert candidate["created_at"] == candidate["updated_at"]
