"""Idempotency-Key on POST: replays, reuse with another request, scoping, failures, races."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from app.services.idempotency import _lock_id
from tests.access_helpers import count_rows, is_problem, scalar, subject_of
from tests.conftest import Backend, client_as
from tests.factories import candidate_payload, create_structure, structure_payload

REUSED = "urn:tremplin:problem:idempotency-key-reused"
IN_PROGRESS = "urn:tremplin:problem:idempotency-in-progress"


def key_header(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def structures_with_siret(sessionmaker: async_sessionmaker[AsyncSession], siret: str) -> int:
    return int(
        await scalar(sessionmaker, "SELECT count(*) FROM structures WHERE siret = :s", s=siret)
    )


async def test_retry_replays_the_first_response(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    payload = structure_payload()
    first = await client.post("/v1/structures", json=payload, headers=key_header("create-1"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    for _ in range(2):
        again = await client.post("/v1/structures", json=payload, headers=key_header("create-1"))
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["content-type"] == first.headers["content-type"]

    assert await count_rows(sessionmaker, "structures") == 1
    listing = (await client.get("/v1/structures")).json()["items"]
    assert [s["id"] for s in listing] == [first.json()["id"]]
    # Without the header, the same payload is a new request (and its SIRET is taken).
    assert is_problem(await client.post("/v1/structures", json=payload), 409)


async def test_same_key_with_another_payload_is_refused(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first = await client.post(
        "/v1/structures", json=structure_payload(), headers=key_header("create-2")
    )
    assert first.status_code == 201
    other = structure_payload()
    reused = await client.post("/v1/structures", json=other, headers=key_header("create-2"))
    assert is_problem(reused, 422)
    assert reused.json()["type"] == REUSED
    assert "idempotent-replayed" not in reused.headers
    assert await count_rows(sessionmaker, "structures") == 1
    assert await structures_with_siret(sessionmaker, other["siret"]) == 0
    # The same body on another path is another request too.
    elsewhere = await client.post("/v1/vacancies", json=other, headers=key_header("create-2"))
    assert is_problem(elsewhere, 422)
    assert elsewhere.json()["type"] == REUSED


async def test_keys_are_scoped_to_the_caller(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    structure = await create_structure(client)
    payload = candidate_payload(structure["id"])
    mine = await client.post("/v1/candidates", json=payload, headers=key_header("person-1"))
    assert mine.status_code == 201
    async with await client_as(app, sessionmaker, Role.ADMIN) as colleague:
        assert subject_of(colleague) != subject_of(client)
        theirs = await colleague.post(
            "/v1/candidates", json=payload, headers=key_header("person-1")
        )
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert await count_rows(sessionmaker, "candidates") == 2
    replay = await client.post("/v1/candidates", json=payload, headers=key_header("person-1"))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == mine.json()["id"]
    assert await count_rows(sessionmaker, "candidates") == 2


async def test_a_failed_post_does_not_claim_the_key(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invalid = structure_payload(siret="12345678901234")  # fails the Luhn checksum
    failed = await client.post("/v1/structures", json=invalid, headers=key_header("retry-me"))
    assert is_problem(failed, 422)

    corrected = structure_payload()
    retried = await client.post("/v1/structures", json=corrected, headers=key_header("retry-me"))
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    replay = await client.post("/v1/structures", json=corrected, headers=key_header("retry-me"))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == retried.json()["id"]
    assert await count_rows(sessionmaker, "structures") == 1


async def test_a_refused_post_does_not_claim_the_key(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    landlord = await create_structure(client, "landlord")
    insertion = await create_structure(client, "insertion")
    wrong = await client.post(
        "/v1/candidates", json=candidate_payload(landlord["id"]), headers=key_header("person-2")
    )
    assert is_problem(wrong, 409)
    right = await client.post(
        "/v1/candidates", json=candidate_payload(insertion["id"]), headers=key_header("person-2")
    )
    assert right.status_code == 201, right.text
    assert "idempotent-replayed" not in right.headers
    assert await count_rows(sessionmaker, "candidates") == 1


async def test_key_length(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    too_long = await client.post(
        "/v1/structures", json=structure_payload(), headers=key_header("k" * 256)
    )
    assert is_problem(too_long, 422)
    assert too_long.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await count_rows(sessionmaker, "structures") == 0
    longest = await client.post(
        "/v1/structures", json=structure_payload(), headers=key_header("k" * 255)
    )
    assert longest.status_code == 201, longest.text
    assert await count_rows(sessionmaker, "structures") == 1


async def test_concurrent_retries_create_one_row(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # PostgreSQL: a retry arriving while the first request runs answers 409 in-progress.
    # SQLite: every transaction takes the write lock at BEGIN, so retries wait and replay.
    allowed = {201, 409} if backend.is_postgres else {201}
    for round_ in range(5):
        payload = structure_payload(name=f"Round {round_} (fictional)")
        key = f"race-{round_}-{uuid.uuid4()}"
        responses = await asyncio.gather(
            *(
                client.post("/v1/structures", json=payload, headers=key_header(key))
                for _ in range(10)
            )
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= allowed, statuses
        created = [r for r in responses if r.status_code == 201]
        assert created, statuses
        assert len({r.json()["id"] for r in created}) == 1
        assert sum("idempotent-replayed" not in r.headers for r in created) == 1
        for response in responses:
            if response.status_code == 409:
                assert is_problem(response, 409)
                assert response.json()["type"] == IN_PROGRESS
        assert await structures_with_siret(sessionmaker, payload["siret"]) == 1
    assert await count_rows(sessionmaker, "structures") == 5


async def test_retry_during_the_first_request_answers_409(
    client: httpx.AsyncClient, backend: Backend, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    if not backend.is_postgres:
        pytest.skip("SQLite serialises writers at BEGIN: a concurrent retry waits, then replays")
    payload = structure_payload()
    key = "held-by-another-request"
    async with sessionmaker() as holder:
        # Hold the lock the first request would hold while it runs.
        await holder.scalar(
            select(func.pg_advisory_xact_lock(_lock_id(f"client:{subject_of(client)}", key)))
        )
        busy = await client.post("/v1/structures", json=payload, headers=key_header(key))
        assert is_problem(busy, 409)
        assert busy.json()["type"] == IN_PROGRESS
        await holder.rollback()
    assert await count_rows(sessionmaker, "structures") == 0
    done = await client.post("/v1/structures", json=payload, headers=key_header(key))
    assert done.status_code == 201, done.text
    assert "idempotent-replayed" not in done.headers


async def test_a_replay_of_a_creation_since_deleted_answers_the_documented_404(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The replay reads the resource again: erased since, it is not served from a copy;
    the 404 is in the operation's documented answers."""
    insertion = await create_structure(client, "insertion")
    payload = candidate_payload(insertion["id"])
    first = await client.post("/v1/candidates", json=payload, headers=key_header("gone-1"))
    assert first.status_code == 201, first.text
    assert (await client.delete(first.headers["location"])).status_code == 204

    replay = await client.post("/v1/candidates", json=payload, headers=key_header("gone-1"))

    assert is_problem(replay, 404)
    assert replay.headers["idempotent-replayed"] == "true"
    assert payload["first_name"] not in replay.text
    documented = app.openapi()["paths"]["/v1/candidates"]["post"]["responses"]
    assert "404" in documented


async def test_a_retry_with_the_same_content_otherwise_written_is_a_replay(
    client: httpx.AsyncClient,
) -> None:
    """Members in another order, other spacing: the same JSON, so the same request."""
    payload = structure_payload()
    first = await client.post("/v1/structures", json=payload, headers=key_header("order-1"))
    assert first.status_code == 201, first.text
    reordered = json.dumps(dict(reversed(list(payload.items()))), indent=2).encode()

    again = await client.post(
        "/v1/structures",
        content=reordered,
        headers={**key_header("order-1"), "content-type": "application/json"},
    )

    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]


async def test_two_idempotency_keys_in_one_request_are_refused(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.post(
        "/v1/structures",
        json=structure_payload(),
        headers=[("Idempotency-Key", "one"), ("Idempotency-Key", "two")],
    )
    assert is_problem(response, 422)
    assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await count_rows(sessionmaker, "structures") == 0


async def test_a_replay_answering_404_names_the_path_posted_to(client: httpx.AsyncClient) -> None:
    """A problem's `instance` is the request's path: a replay that reads the resource
    again and finds it gone answers for the POST it replays, as the first answer did,
    not for the resource's own path."""
    insertion = await create_structure(client, "insertion")
    payload = candidate_payload(insertion["id"])
    first = await client.post("/v1/candidates", json=payload, headers=key_header("gone-2"))
    assert first.status_code == 201, first.text
    assert (await client.delete(first.headers["location"])).status_code == 204

    replay = await client.post("/v1/candidates", json=payload, headers=key_header("gone-2"))

    assert is_problem(replay, 404)
    assert replay.json()["instance"] == "/v1/candidates"
    assert first.json()["id"] not in replay.text
