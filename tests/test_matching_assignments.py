"""Assignments through the API, on both databases: the optimum on random instances, no
vacancy left starving by the sparse graph, each pair's points and each empty position's
reason, the candidate store following writes in place, and the event loop kept free.

Scores are read from the ranking endpoint (a fresh computation from the database); the
optimum is a brute force over them.
"""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import session_scope
from app.domain.matching import CRITERIA, solver
from app.errors import DuplicateResource
from app.main import create_app
from app.models import Candidate
from app.services import placements
from app.services.auth import SYSTEM_ACTOR
from app.services.matching import offload
from app.services.matching.store import candidate_store
from app.services.placements import ConsentMissing, PhaseMismatch, VacancyFull, VacancyNotOpen
from tests.access_helpers import accept_placement, count_rows, propose, token_of
from tests.conftest import Backend, http_client, make_settings
from tests.factories import create_structure
from tests.test_matching import (
    HELD,
    IN_PROGRESS,
    assign,
    check_result,
    force,
    mission,
    north_of_rouen,
    pair_scores,
    pair_set,
    person,
    ranking,
)

LEVELS = ["cleaning_hygiene", "tenant_welcome", "mediation"]


async def random_world(
    admin: httpx.AsyncClient, rng: random.Random
) -> tuple[dict[str, int], list[str]]:
    """Up to three missions near Rouen (1-2 positions) and up to five people around."""
    siae = (await create_structure(admin, "insertion"))["id"]
    landlord = (await create_structure(admin, "landlord"))["id"]
    positions: dict[str, int] = {}
    for _ in range(rng.randint(1, 3)):
        asked = {code: rng.randint(1, 3) for code in rng.sample(LEVELS, rng.randint(0, 2))}
        n = rng.randint(1, 2)
        vacancy = await mission(
            admin,
            landlord,
            positions=n,
            required_competencies=asked,
            **north_of_rouen(rng.uniform(0, 10)),
        )
        positions[vacancy] = n
    people = []
    for _ in range(rng.randint(0, 5)):
        people.append(
            await person(
                admin,
                siae,
                competencies={code: rng.randint(0, 3) for code in LEVELS},
                certifications=rng.choice([[], HELD, IN_PROGRESS]),
                max_commute_km=rng.choice([10, 20, 30]),
                **north_of_rouen(rng.uniform(0, 25)),
            )
        )
    return positions, people


async def test_random_assignments_reach_the_brute_force_optimum(client: httpx.AsyncClient) -> None:
    """On random small instances: the total of a brute force over the ranking's scores,
    each candidate at most once, each vacancy within its free positions."""
    rng = random.Random(12)
    for _ in range(8):
        positions, people = await random_world(client, rng)
        min_score = rng.choice([0, 30, 40, 55])
        scores = await pair_scores(client, list(positions))
        result = await assign(client, scope={"vacancy_ids": list(positions)}, min_score=min_score)
        check_result(result, positions, scores, min_score)
        for someone in people:  # the next instance starts from nobody
            assert (await client.delete(f"/v1/candidates/{someone}")).status_code == 204


def sparse_app(backend: Backend) -> FastAPI:
    """Settings that force the sparse graph and cut every search short."""
    return create_app(
        make_settings(
            backend.url,
            matching_nearest=1,
            matching_top_k=1,
            matching_candidate_top_k=1,
            matching_exact_edges=0,
            matching_pair_budget=0,
        )
    )


async def test_a_sparse_graph_never_leaves_a_position_next_to_a_free_candidate(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    """Both missions rank `best` first; with one candidate kept per vacancy, the one that
    loses `best` would starve. It gets everyone within reach instead, and the answer is
    the optimum."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    first = await mission(client, landlord, required_competencies={"cleaning_hygiene": 2})
    second = await mission(client, landlord, required_competencies={"mediation": 1})
    best = await person(
        client, siae, competencies={"cleaning_hygiene": 2, "mediation": 3}, certifications=HELD
    )
    farther = await person(client, siae, competencies={"mediation": 1}, **north_of_rouen(12))
    positions = {first: 1, second: 1}
    scores = await pair_scores(client, list(positions))
    app = sparse_app(backend)
    async with app.router.lifespan_context(app), http_client(app, token_of(client)) as http:
        result = await assign(http, scope={"vacancy_ids": [first, second]}, min_score=0)
    check_result(result, positions, scores, 0)
    assert pair_set(result) == {(first, best), (second, farther)} or pair_set(result) == {
        (second, best),
        (first, farther),
    }
    assert result["unfilled"] == []


async def test_each_pair_carries_its_points_and_each_empty_position_its_reason(
    client: httpx.AsyncClient,
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    # Nobody holds or prepares this certification.
    nobody = await mission(client, landlord, required_certification="RNCP12345")
    # Its only candidate lives 25 km away with a 30 km commute: 4.17 + 25 + 5 = 34.17.
    weak = await mission(client, landlord, **north_of_rouen(40))
    far = await person(client, siae, max_commute_km=30, **north_of_rouen(65))
    # One person for two missions: she goes to the nearer (70 against 57.5), and the
    # other stays empty though she is eligible for it.
    shared = await mission(client, landlord)
    second = await mission(client, landlord, **north_of_rouen(15))
    only = await person(client, siae, certifications=HELD)

    scope = {"vacancy_ids": [nobody, weak, shared, second]}
    result = await assign(client, scope=scope, min_score=40)
    assert pair_set(result) == {(shared, only)}
    [pair] = result["pairs"]
    assert set(pair["contributions"]) == set(CRITERIA)
    assert sum(pair["contributions"].values()) == pytest.approx(pair["score"], abs=0.05)
    listed = (await ranking(client, shared))["items"]
    assert [item["contributions"] for item in listed] == [pair["contributions"]]
    reasons = {u["vacancy_id"]: (u["positions"], u["reason"]) for u in result["unfilled"]}
    assert reasons == {
        nobody: (1, "nobody_eligible"),
        weak: (1, "under_min_score"),
        second: (1, "better_used_elsewhere"),
    }
    assert result["unfilled_positions"] == 3
    assert far not in {p["candidate_id"] for p in result["pairs"]}
    # With a lower bar, the weak pair is made.
    lower = await assign(client, scope={"vacancy_ids": [weak]}, min_score=30)
    assert pair_set(lower) == {(weak, far)}


async def test_healthz_answers_while_an_assignment_is_in_flight(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The solver is held in its worker until /healthz has answered: were it on the
    event loop, /healthz could not answer and the gate would never be opened by us."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    await person(client, siae)
    entered, gate = threading.Event(), threading.Event()
    opened_by_test: list[bool] = []
    real = solver.optimal_assignment

    def held(*args: Any) -> np.ndarray:
        entered.set()
        opened_by_test.append(gate.wait(timeout=30))
        return real(*args)

    monkeypatch.setattr(solver, "optimal_assignment", held)
    running = asyncio.ensure_future(assign(client, scope={"vacancy_ids": [vacancy]}))
    assert await asyncio.to_thread(entered.wait, 30)
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert not running.done()
    gate.set()
    result = await running
    assert len(result["pairs"]) == 1
    assert opened_by_test == [True]


async def test_the_solver_process_stops_with_the_server(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    """A server that solved in its worker process leaves no process behind when it stops
    (found by the benchmark: an orphan solver kept running after its server)."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    await person(client, siae)
    in_process = create_app(make_settings(backend.url, matching_solver_process_edges=1))
    async with (
        in_process.router.lifespan_context(in_process),
        http_client(in_process, token_of(client)) as http,
    ):
        result = await assign(http, scope={"vacancy_ids": [vacancy]})
        assert len(result["pairs"]) == 1
        pool = offload._pool
        assert pool is not None
        processes = list(pool._processes.values())
        assert processes
        assert all(p.is_alive() for p in processes)
    assert offload._pool is None
    assert not any(p.is_alive() for p in processes)


# --- the candidate store follows writes ---------------------------------------------------


async def compare_with_a_fresh_store(
    client: httpx.AsyncClient, backend: Backend, vacancies: list[str]
) -> dict[str, Any]:
    """The same assignment and ranking from this app (its store filled and updated in
    place) and from a new one (a new store, filled from scratch)."""
    warm = await assign(client, scope={"vacancy_ids": vacancies}, min_score=0)
    warm_ranking = await ranking(client, vacancies[0], include_excluded=True)
    fresh_app = create_app(make_settings(backend.url))
    async with (
        fresh_app.router.lifespan_context(fresh_app),
        http_client(fresh_app, token_of(client)) as fresh,
    ):
        cold = await assign(fresh, scope={"vacancy_ids": vacancies}, min_score=0)
        cold_ranking = await ranking(fresh, vacancies[0], include_excluded=True)
    assert warm == cold
    assert warm_ranking["items"] == cold_ranking["items"]
    assert warm_ranking["excluded"] == cold_ranking["excluded"]
    return warm


async def test_after_random_writes_answers_equal_a_fresh_computation(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    rng = random.Random(8)
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancies = [
        await mission(client, landlord, positions=2, **north_of_rouen(rng.uniform(0, 8)))
        for _ in range(3)
    ]
    people = [
        await person(client, siae, competencies={"mediation": rng.randint(0, 3)}) for _ in range(4)
    ]
    await compare_with_a_fresh_store(client, backend, vacancies)
    for _ in range(14):
        move = rng.choice(["new", "phase", "placement", "consent", "erase", "edit"])
        someone = rng.choice(people) if people else None
        if move == "new" or someone is None:
            people.append(
                await person(
                    client,
                    siae,
                    competencies={"mediation": rng.randint(0, 3)},
                    **north_of_rouen(rng.uniform(0, 20)),
                )
            )
        elif move == "phase":
            got = await client.post(
                f"/v1/candidates/{someone}/transitions",
                json={
                    "to": rng.choice(["support", "recruitment"]),
                    "force": True,
                    "note": "Committee decision for the test.",
                },
            )
            assert got.status_code in (200, 409), got.text
        elif move == "placement":
            placement = await client.post(
                "/v1/placements",
                json={"candidate_id": someone, "vacancy_id": rng.choice(vacancies)},
            )
            assert placement.status_code in (201, 409, 422), placement.text
            if placement.status_code == 201 and rng.random() < 0.5:
                await accept_placement(client, placement.json()["id"])
        elif move == "consent":
            got = await client.patch(
                f"/v1/candidates/{someone}", json={"consent_to_share": rng.random() < 0.5}
            )
            assert got.status_code == 200, got.text
        elif move == "erase":
            if (await client.delete(f"/v1/candidates/{someone}")).status_code == 204:
                people.remove(someone)
        else:
            got = await client.patch(
                f"/v1/candidates/{someone}", json=north_of_rouen(rng.uniform(0, 40))
            )
            assert got.status_code == 200, got.text
        await compare_with_a_fresh_store(client, backend, vacancies)


async def test_the_store_reads_only_what_changed(client: httpx.AsyncClient, app: FastAPI) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    people = [await person(client, siae) for _ in range(5)]
    await assign(client, scope={"vacancy_ids": [vacancy]})
    async with app.state.sessionmaker() as session:
        store = candidate_store(session)
    await assign(client, scope={"vacancy_ids": [vacancy]})
    assert store.last_sync.rows_read == 0
    patched = await client.patch(f"/v1/candidates/{people[2]}", json={"max_commute_km": 12})
    assert patched.status_code == 200, patched.text
    await assign(client, scope={"vacancy_ids": [vacancy]})
    assert (store.last_sync.rows_read, store.last_sync.erased) == (1, 0)
    # Erasure anonymises the row in place: one changed row, whom nothing pairs any more.
    assert (await client.delete(f"/v1/candidates/{people[0]}")).status_code == 204
    after = await assign(client, scope={"vacancy_ids": [vacancy]})
    assert (store.last_sync.rows_read, store.last_sync.erased) == (1, 0)
    assert after["candidates_considered"] == 4
    assert people[0] not in {pair["candidate_id"] for pair in after["pairs"]}
    # A row deleted outside the API (an operator's DELETE) leaves the store too.
    async with app.state.sessionmaker() as session:
        await session.execute(delete(Candidate).where(Candidate.id == uuid.UUID(people[1])))
        await session.commit()
    after = await assign(client, scope={"vacancy_ids": [vacancy]})
    assert (store.last_sync.rows_read, store.last_sync.erased) == (0, 1)
    assert after["candidates_considered"] == 3
    assert people[1] not in {pair["candidate_id"] for pair in after["pairs"]}


async def test_a_truncate_or_a_lost_change_log_makes_the_store_read_everyone(
    client: httpx.AsyncClient, app: FastAPI, backend: Backend
) -> None:
    """PostgreSQL: candidate_changes is the store's only source of what changed. A
    TRUNCATE (no row triggers fire) or rows of that table deleted must not leave the store
    believing people exist or still hold their old values."""
    if backend.name != "postgresql":
        pytest.skip("the change log and its triggers are PostgreSQL's")
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    people = [await person(client, siae) for _ in range(3)]
    async with app.state.sessionmaker() as session:
        store = candidate_store(session)
    assert (await assign(client, scope={"vacancy_ids": [vacancy]}))["candidates_considered"] == 3
    # The log emptied by hand, then a change it should have recorded.
    async with app.state.sessionmaker() as session:
        await session.execute(text("DELETE FROM candidate_changes"))
        await session.execute(
            # Moved to Marseille, beyond reach of Rouen.
            text("UPDATE candidates SET latitude = 43.3, longitude = 5.4 WHERE id = :id"),
            {"id": uuid.UUID(people[0])},
        )
        await session.execute(text("DELETE FROM candidate_changes"))
        await session.commit()
    after = await assign(client, scope={"vacancy_ids": [vacancy]})
    assert store.last_sync.rows_read == 3  # everyone, read again
    assert after["candidates_considered"] == 2
    assert people[0] not in {pair["candidate_id"] for pair in after["pairs"]}
    # Writes applied as a replica does (logical replication, a restore without triggers).
    async with app.state.sessionmaker() as session:
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(
            text("UPDATE candidates SET latitude = 43.3, longitude = 5.4 WHERE id = :id"),
            {"id": uuid.UUID(people[1])},
        )
        await session.commit()
    after = await assign(client, scope={"vacancy_ids": [vacancy]})
    assert store.last_sync.rows_read == 1
    assert after["candidates_considered"] == 1
    # TRUNCATE fires no row trigger.
    async with app.state.sessionmaker() as session:
        await session.execute(text("TRUNCATE candidates CASCADE"))
        await session.commit()
    after = await assign(client, scope={"vacancy_ids": [vacancy]})
    assert (store.last_sync.rows_read, store.last_sync.erased) == (0, 3)
    assert after["pairs"] == []


async def test_people_with_an_open_placement_are_not_paired_again(
    client: httpx.AsyncClient,
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    here, there = await mission(client, landlord), await mission(client, landlord)
    proposed, free = await person(client, siae), await person(client, siae)
    await force(client, free, "support")
    await propose(client, proposed, there)
    result = await assign(client, scope={"vacancy_ids": [here]}, min_score=0)
    assert pair_set(result) == {(here, free)}


async def test_proposals_in_one_batch_keep_every_placement_rule(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """All or nothing: a pair breaking a rule refuses the batch, and nothing is written."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    one_position = uuid.UUID(await mission(client, landlord))
    closed = uuid.UUID(await mission(client, landlord))
    patched = await client.patch(f"/v1/vacancies/{closed}", json={"status": "closed"})
    assert patched.status_code == 200, patched.text
    willing = [uuid.UUID(await person(client, siae)) for _ in range(2)]
    private = uuid.UUID(await person(client, siae, consent_to_share=False))
    securing = uuid.UUID(await person(client, siae))
    await force(client, str(securing), "support", "securing")
    already = uuid.UUID(await person(client, siae))
    await propose(client, str(already), str(one_position))

    refusals: list[tuple[list[tuple[uuid.UUID, uuid.UUID]], type[Exception]]] = [
        ([(one_position, willing[0]), (one_position, private)], ConsentMissing),
        ([(one_position, securing)], PhaseMismatch),
        ([(closed, willing[0])], VacancyNotOpen),
        ([(one_position, willing[0]), (one_position, willing[1])], VacancyFull),
        ([(one_position, already)], DuplicateResource),
    ]
    for pairs, refusal in refusals:
        async with sessionmaker() as session:
            with pytest.raises(refusal):
                await placements.propose_many(session, SYSTEM_ACTOR, pairs)
            await session.rollback()
        assert await count_rows(sessionmaker, "placements") == 1, refusal

    async with session_scope(sessionmaker) as session:
        made = await placements.propose_many(session, SYSTEM_ACTOR, [(one_position, willing[1])])
    assert len(made) == 1
    listed = (await client.get("/v1/placements", params={"vacancy_id": str(one_position)})).json()
    assert {(p["candidate_id"], p["status"]) for p in listed["items"]} == {
        (str(already), "proposed"),
        (str(willing[1]), "proposed"),
    }
