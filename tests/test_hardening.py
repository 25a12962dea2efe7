"""What a careful reviewer tried to break: replays, filters, referrers, vacancy statuses,
anonymous rate limits, and personal data in logs."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.main import create_app
from tests.access_helpers import build_world, is_problem, propose
from tests.conftest import Backend, client_as, http_client, make_settings
from tests.factories import JOB, candidate_payload, create_candidate, create_vacancy

Maker = async_sessionmaker[AsyncSession]


# --- idempotent replays read the resource again, as the caller ---------------------------


async def test_replay_of_an_erased_candidate_is_not_found(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: Maker
) -> None:
    world = await build_world(client)
    async with await client_as(app, sessionmaker, "insertion", world.insertion_id) as staff:
        payload = candidate_payload(world.insertion_id, email="erase.me@example.org")
        headers = {"Idempotency-Key": "refer-1"}
        first = await staff.post("/v1/candidates", json=payload, headers=headers)
        assert first.status_code == 201, first.text
        replay = await staff.post("/v1/candidates", json=payload, headers=headers)
        assert replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["id"] == first.json()["id"]
        assert (await staff.delete(f"/v1/candidates/{first.json()['id']}")).status_code == 204

        gone = await staff.post("/v1/candidates", json=payload, headers=headers)

    assert is_problem(gone, 404)
    assert "erase.me@example.org" not in gone.text


async def test_replay_after_a_move_to_another_structure_is_not_found(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: Maker
) -> None:
    world = await build_world(client)
    async with await client_as(app, sessionmaker, "insertion", world.insertion_id) as staff:
        payload = candidate_payload(world.insertion_id)
        headers = {"Idempotency-Key": "refer-2"}
        first = await staff.post("/v1/candidates", json=payload, headers=headers)
        moved = await client.patch(
            f"/v1/candidates/{first.json()['id']}", json={"structure_id": world.other_insertion_id}
        )
        assert moved.status_code == 200, moved.text
        replay = await staff.post("/v1/candidates", json=payload, headers=headers)
    assert is_problem(replay, 404)


async def test_replay_is_an_audited_read(client: httpx.AsyncClient) -> None:
    world = await build_world(client)
    payload = candidate_payload(world.insertion_id)
    headers = {"Idempotency-Key": "refer-3", "X-Request-ID": "replay-audit"}
    created = await client.post("/v1/candidates", json=payload, headers=headers)
    replay = await client.post("/v1/candidates", json=payload, headers=headers)
    assert replay.status_code == 201
    journal = (await client.get("/v1/audit", params={"candidate_id": created.json()["id"]})).json()[
        "items"
    ]
    assert sorted(e["action"] for e in journal if e["request_id"] == "replay-audit") == [
        "create",
        "read",
    ]


# --- what a role's view hides cannot be learnt through a filter or a reference -------------


async def test_landlord_cannot_filter_by_structure(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: Maker
) -> None:
    world = await build_world(client)
    candidate = await create_candidate(client, world.insertion_id)
    await propose(client, candidate["id"], world.vacancy_id)
    async with await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord:
        refused = await landlord.get("/v1/candidates", params={"structure_id": world.insertion_id})
        assert is_problem(refused, 422)
        assert refused.json()["errors"][0]["loc"] == ["query", "structure_id"]
        assert (
            await landlord.get("/v1/candidates", params={"phase": "recruitment"})
        ).status_code == 200


async def test_prescriber_cannot_filter_by_departement(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: Maker
) -> None:
    world = await build_world(client)
    await create_candidate(client, world.insertion_id, referrer_id=world.partner_id)
    async with await client_as(app, sessionmaker, "prescriber", world.partner_id) as prescriber:
        refused = await prescriber.get("/v1/candidates", params={"departement": "76"})
    assert is_problem(refused, 422)


async def test_only_admins_change_referrer_or_structure(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: Maker
) -> None:
    world = await build_world(client)
    candidate = await create_candidate(client, world.insertion_id, referrer_id=world.partner_id)
    path = f"/v1/candidates/{candidate['id']}"
    async with await client_as(app, sessionmaker, "insertion", world.insertion_id) as staff:
        assert is_problem(
            await staff.patch(path, json={"referrer_id": world.other_partner_id}), 403
        )
        assert is_problem(
            await staff.patch(path, json={"structure_id": world.other_insertion_id}), 403
        )
        assert (await staff.patch(path, json={"max_commute_km": 12})).status_code == 200
    async with await client_as(app, sessionmaker, "prescriber", world.other_partner_id) as other:
        assert is_problem(await other.get(path), 404)
    assert (
        await client.patch(path, json={"referrer_id": world.other_partner_id})
    ).status_code == 200


async def test_landlord_loses_sight_after_rejecting(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: Maker
) -> None:
    world = await build_world(client)
    candidate = await create_candidate(client, world.insertion_id)
    placement = await propose(client, candidate["id"], world.vacancy_id)
    async with await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord:
        assert (await landlord.get(f"/v1/candidates/{candidate['id']}")).status_code == 200
        rejected = await landlord.post(
            f"/v1/placements/{placement['id']}/transitions",
            json={"to": "rejected", "reason": "not_suited"},
        )
        assert rejected.status_code == 200, rejected.text
        assert is_problem(await landlord.get(f"/v1/candidates/{candidate['id']}"), 404)
        assert (await landlord.get(f"/v1/placements/{placement['id']}")).status_code == 200


async def test_landlord_does_not_read_placement_notes(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: Maker
) -> None:
    world = await build_world(client)
    candidate = await create_candidate(client, world.insertion_id)
    placement = await client.post(
        "/v1/placements",
        json={
            "candidate_id": candidate["id"],
            "vacancy_id": world.vacancy_id,
            "notes": "Prefers mornings.",
        },
    )
    async with await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord:
        seen = (await landlord.get(f"/v1/placements/{placement.json()['id']}")).json()
    assert seen["notes"] is None
    assert (await client.get(f"/v1/placements/{placement.json()['id']}")).json()["notes"]


# --- vacancy statuses follow their table ------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "status"),
    [
        ("draft", "open", 200),
        ("draft", "closed", 409),
        ("open", "closed", 200),
        ("open", "draft", 409),
        ("closed", "open", 200),
        ("cancelled", "open", 409),
        ("open", "filled", 422),
    ],
)
async def test_vacancy_status_moves(
    client: httpx.AsyncClient, start: str, target: str, status: int
) -> None:
    initial = "draft" if start == "draft" else "open"
    vacancy = await create_vacancy(client, status=initial)
    path = f"/v1/vacancies/{vacancy['id']}"
    if start not in {"draft", "open"}:
        assert (await client.patch(path, json={"status": start})).status_code == 200
    response = await client.patch(path, json={"status": target})
    assert response.status_code == status, response.text
    expected = target if status == 200 else start
    assert (await client.get(path)).json()["status"] == expected
    if status == 409:
        assert response.json()["type"] == "urn:tremplin:problem:vacancy-status-not-allowed"
        # Read by people: "This vacancy is open and cannot become draft." (was "A open").
        assert response.json()["detail"] == f"This vacancy is {start} and cannot become {target}."


# --- anonymous callers are rate-limited too ----------------------------------------------


@pytest.fixture
async def strict_app(backend: Backend) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(backend.url, rate_limit_anonymous=3))
    async with application.router.lifespan_context(application):
        yield application


async def test_token_requests_are_rate_limited(
    client: httpx.AsyncClient, strict_app: FastAPI
) -> None:
    form = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
    async with http_client(strict_app) as anonymous:
        answers = [await anonymous.post("/v1/oauth/token", data=form) for _ in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1


async def test_failed_authentications_are_rate_limited(
    client: httpx.AsyncClient, strict_app: FastAPI
) -> None:
    async with http_client(strict_app, "not-a-token") as guesser:
        answers = [(await guesser.get("/v1/structures")).status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]


async def test_basic_credentials_that_are_not_ascii_are_refused(
    anonymous: httpx.AsyncClient,
) -> None:
    header = "Basic " + base64.b64encode("é:é".encode()).decode() + "é"
    response = await anonymous.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": header.encode("latin-1")},
    )
    assert is_problem(response, 401)
    assert response.json()["error"] == "invalid_client"


# --- a failing database never writes personal data into the logs ------------------------


async def test_database_errors_do_not_log_personal_data(
    client: httpx.AsyncClient, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    if not backend.is_postgres:
        pytest.skip("needs PostgreSQL's statement timeout and table locks")
    world = await build_world(client)
    slow = create_app(make_settings(backend.url, db_statement_timeout_ms=200))
    locker = await asyncpg.connect(backend.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with slow.router.lifespan_context(slow):
            token = client.headers["Authorization"]
            transport = httpx.ASGITransport(app=slow, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://t", headers={"Authorization": token}
            ) as http:
                transaction = locker.transaction()
                await transaction.start()
                await locker.execute("LOCK TABLE candidates IN ACCESS EXCLUSIVE MODE")
                with caplog.at_level(logging.DEBUG):
                    response = await http.post(
                        "/v1/candidates",
                        json=candidate_payload(
                            world.insertion_id, email="hidden.person@example.org"
                        ),
                    )
                await transaction.rollback()
    finally:
        await locker.close()
    assert response.status_code == 503, response.text
    assert "hidden.person@example.org" not in caplog.text
    assert "hidden.person@example.org" not in response.text


# --- second review: what changed between a proposal and its acceptance -----------------


async def _proposal(client: httpx.AsyncClient) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    world = await build_world(client)
    candidate = await create_candidate(client, world.insertion_id)
    placement = await propose(client, candidate["id"], world.vacancy_id)
    return world, candidate, placement


async def test_acceptance_after_consent_is_withdrawn_is_refused(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: Maker
) -> None:
    world, candidate, placement = await _proposal(client)
    path = f"/v1/candidates/{candidate['id']}"
    assert (await client.patch(path, json={"consent_to_share": False})).status_code == 200
    async with await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord:
        assert is_problem(await landlord.get(path), 404)  # no longer shared
        refused = await landlord.post(
            f"/v1/placements/{placement['id']}/transitions", json={"to": "accepted"}
        )
    assert is_problem(refused, 409)
    assert refused.json()["type"] == "urn:tremplin:problem:consent-missing"
    vacancy = (await client.get(f"/v1/vacancies/{world.vacancy_id}")).json()
    assert vacancy["filled_positions"] == 0
    # A generated client learns this answer from the spec (it was not listed there).
    documented = app.openapi()["paths"]["/v1/placements/{placement_id}/transitions"]["post"]
    assert "`urn:tremplin:problem:consent-missing`" in documented["responses"]["409"]["description"]


async def test_acceptance_after_the_person_exited_is_refused(client: httpx.AsyncClient) -> None:
    _, candidate, placement = await _proposal(client)
    exited = await client.post(
        f"/v1/candidates/{candidate['id']}/transitions",
        json={"to": "exited", "reason": "other_job"},
    )
    assert exited.status_code == 200, exited.text
    refused = await client.post(
        f"/v1/placements/{placement['id']}/transitions", json={"to": "accepted"}
    )
    assert is_problem(refused, 409)
    # Leaving withdrew the proposal: there is nothing left to accept.
    assert refused.json()["type"] == "urn:tremplin:problem:placement-transition-not-allowed"
    assert (await client.get(f"/v1/placements/{placement['id']}")).json()["status"] == "withdrawn"


async def test_a_completed_work_mission_placement_counts_toward_securing(
    client: httpx.AsyncClient,
) -> None:
    world = await build_world(client)
    candidate = (await create_candidate(client, world.insertion_id))["id"]
    moved = await client.post(
        f"/v1/candidates/{candidate}/transitions",
        json={"to": "support", "force": True, "note": "Set up for the test."},
    )
    assert moved.status_code == 200, moved.text
    for activity in (
        {"type": "training", "occurred_on": "2026-09-01", "hours": 160,
         "training_mode": "external"},
        {"type": "skills_assessment", "occurred_on": "2026-10-01", "outcome": "positive",
         "competency_levels": {"cleaning_hygiene": 2}},
    ):  # fmt: skip
        recorded = await client.post(f"/v1/candidates/{candidate}/activities", json=activity)
        assert recorded.status_code == 201, recorded.text
    refused = await client.post(f"/v1/candidates/{candidate}/transitions", json={"to": "securing"})
    assert [u["code"] for u in refused.json()["unmet"]] == ["work_mission"]

    work = await create_vacancy(client, world.landlord_id, mission_type="work_mission")
    placement = await propose(client, candidate, work["id"])
    for step in ("accepted", "started", "completed"):
        done = await client.post(f"/v1/placements/{placement['id']}/transitions", json={"to": step})
        assert done.status_code == 200, done.text
    moved = await client.post(f"/v1/candidates/{candidate}/transitions", json={"to": "securing"})
    assert moved.status_code == 200, moved.text


async def test_a_corrected_exam_takes_back_the_certification(client: httpx.AsyncClient) -> None:
    world = await build_world(client)
    candidate = (await create_candidate(client, world.insertion_id))["id"]
    for phase in ("support", "securing"):
        await client.post(
            f"/v1/candidates/{candidate}/transitions",
            json={"to": phase, "force": True, "note": "Set up for the test."},
        )
    exam = await client.post(
        f"/v1/candidates/{candidate}/activities",
        json={"type": "certification_exam", "occurred_on": "2026-10-15",
              "rncp_code": "RNCP40892", "outcome": "positive"},
    )  # fmt: skip
    assert exam.status_code == 201, exam.text

    async def status() -> dict[str, str | None]:
        certs = (await client.get(f"/v1/candidates/{candidate}")).json()["certifications"]
        return {c["rncp_code"]: c["status"] for c in certs}

    assert await status() == {"RNCP40892": "held"}
    path = f"/v1/candidates/{candidate}/activities/{exam.json()['id']}"
    assert (await client.patch(path, json={"outcome": "negative"})).status_code == 200
    assert await status() == {"RNCP40892": "in_progress"}
    assert (await client.patch(path, json={"rncp_code": "RNCP40262"})).status_code == 200
    assert await status() == {"RNCP40262": "in_progress"}


async def test_an_idempotency_key_with_another_precondition_is_another_request(
    client: httpx.AsyncClient,
) -> None:
    world = await build_world(client)
    candidate = (await create_candidate(client, world.insertion_id))["id"]
    path = f"/v1/candidates/{candidate}/transitions"
    body = {"to": "exited", "reason": "moved_away"}
    first = await client.post(path, json=body, headers={"Idempotency-Key": "k", "If-Match": '"1"'})
    assert first.status_code == 200, first.text
    other = await client.post(path, json=body, headers={"Idempotency-Key": "k", "If-Match": '"9"'})
    assert is_problem(other, 422)
    assert other.json()["type"] == "urn:tremplin:problem:idempotency-key-reused"


async def test_a_job_that_ends_brings_the_person_back_to_securing(
    client: httpx.AsyncClient,
) -> None:
    world = await build_world(client)
    candidate = (await create_candidate(client, world.insertion_id))["id"]
    for phase in ("support", "securing"):
        moved = await client.post(
            f"/v1/candidates/{candidate}/transitions",
            json={"to": phase, "force": True, "note": "Set up for the test."},
        )
        assert moved.status_code == 200, moved.text
    job = await create_vacancy(client, world.landlord_id, **JOB)
    placement = await propose(client, candidate, job["id"])
    for move in ({"to": "accepted"}, {"to": "started"}):
        done = await client.post(f"/v1/placements/{placement['id']}/transitions", json=move)
        assert done.status_code == 200, done.text
    assert (await client.get(f"/v1/candidates/{candidate}")).json()["phase"] == "employed"
    # Not by hand: the move follows the placement.
    by_hand = await client.post(f"/v1/candidates/{candidate}/transitions", json={"to": "securing"})
    assert is_problem(by_hand, 409)

    ended = await client.post(
        f"/v1/placements/{placement['id']}/transitions", json={"to": "ended", "reason": "resigned"}
    )
    assert ended.status_code == 200, ended.text
    assert (await client.get(f"/v1/candidates/{candidate}")).json()["phase"] == "securing"
    history = (await client.get(f"/v1/candidates/{candidate}/history")).json()["items"]
    assert (history[-1]["from_phase"], history[-1]["to_phase"], history[-1]["reason"]) == (
        "employed",
        "securing",
        "job_ended",
    )
    vacancy = (await client.get(f"/v1/vacancies/{job['id']}")).json()
    assert (vacancy["status"], vacancy["filled_positions"]) == ("open", 0)
    # From securing, the usual ways out again.
    exited = await client.post(
        f"/v1/candidates/{candidate}/transitions", json={"to": "exited", "reason": "moved_away"}
    )
    assert exited.status_code == 200, exited.text
