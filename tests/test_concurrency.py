"""Capacity, the one-started-job rule and exits under concurrent requests, on both
databases.

DOMAIN.md: "A vacancy never has more accepted or started placements than positions,
even under concurrent requests. A candidate holds at most one started job placement."
Each round fires the requests together (asyncio.gather over the ASGI app, which
interleaves them at every database round trip) and then asks the database itself.
Run with -s to see the one-line summaries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from app.models import Candidate, CandidateTransition, Placement, Vacancy
from tests.access_helpers import token_of
from tests.conftest import Backend, client_as, http_client
from tests.factories import (
    candidate_payload,
    create,
    create_structure,
    job_payload,
    vacancy_payload,
)

ROUNDS = 30
ACCEPTS = 20
PROBLEM = "urn:tremplin:problem:"


class InFlight:
    """An ASGI wrapper that counts the requests inside the app at once: proof that a
    round's requests really overlap (a round run one by one would prove nothing)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.now = 0
        self.peak = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


async def caller(
    gauge: InFlight, sessionmaker: async_sessionmaker[AsyncSession], role: Role, structure: str
) -> httpx.AsyncClient:
    """A client of `role` whose requests go through the gauge."""
    async with await client_as(gauge.app, sessionmaker, role, structure) as plain:
        return http_client(gauge, token_of(plain))  # type: ignore[arg-type]


def outcome(response: httpx.Response) -> str:
    if response.status_code == 200:
        return "200"
    if response.status_code == 409:
        return str(response.json()["type"]).removeprefix(PROBLEM)
    return f"{response.status_code}: {response.text[:200]}"


async def test_concurrent_accepts_never_overfill_a_vacancy(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: Backend,
) -> None:
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    # The same twenty people are proposed for a new one-position mission each round.
    candidates = [
        (await create(client, "/v1/candidates", candidate_payload(insertion["id"])))["id"]
        for _ in range(ACCEPTS)
    ]
    losers: Counter[str] = Counter()
    winners_per_round: list[int] = []
    double_bookings = 0
    gauge = InFlight(app)

    for round_ in range(ROUNDS):
        vacancy = await create(
            client, "/v1/vacancies", vacancy_payload(landlord["id"], positions=1)
        )
        placements = [
            (
                await create(
                    client,
                    "/v1/placements",
                    {"candidate_id": candidate, "vacancy_id": vacancy["id"]},
                )
            )["id"]
            for candidate in candidates
        ]
        # A landlord client per round: twenty accepts a round stay far below its rate limit.
        async with await caller(gauge, sessionmaker, Role.LANDLORD, landlord["id"]) as staff:
            responses = await asyncio.gather(
                *(
                    staff.post(f"/v1/placements/{p}/transitions", json={"to": "accepted"})
                    for p in placements
                )
            )
        outcomes = [outcome(r) for r in responses]
        wins = outcomes.count("200")
        winners_per_round.append(wins)
        others = [o for o in outcomes if o != "200"]
        losers.update(others)
        assert wins == 1, (round_, Counter(outcomes))
        assert all(o in ("vacancy-full", "concurrent-update") for o in others), Counter(others)

        async with sessionmaker() as session:
            vacancy_id = uuid.UUID(vacancy["id"])
            accepted = await session.scalar(
                select(func.count())
                .select_from(Placement)
                .where(Placement.vacancy_id == vacancy_id, Placement.status == "accepted")
            )
            proposed = await session.scalar(
                select(func.count())
                .select_from(Placement)
                .where(Placement.vacancy_id == vacancy_id, Placement.status == "proposed")
            )
            row = (
                await session.execute(
                    select(Vacancy.filled_positions, Vacancy.status).where(Vacancy.id == vacancy_id)
                )
            ).one()
        double_bookings += max(0, int(accepted or 0) - 1)
        assert accepted == 1, round_
        assert proposed == ACCEPTS - 1, round_
        assert (row.filled_positions, row.status) == (1, "filled"), round_
        # The winner the database holds is the one that got the 200.
        winner = placements[outcomes.index("200")]
        assert (await client.get(f"/v1/placements/{winner}")).json()["status"] == "accepted"

    print(
        f"\n[{backend.name}] concurrent accepts: {ROUNDS} rounds x {ACCEPTS} requests on a "
        f"one-position vacancy; winners per round {sorted(set(winners_per_round))}; "
        f"double bookings {double_bookings}; losers {dict(losers)}; "
        f"most requests in flight at once {gauge.peak}"
    )
    assert double_bookings == 0
    assert gauge.peak == ACCEPTS


async def _securing_candidate(client: httpx.AsyncClient, insertion_id: str) -> str:
    candidate = (await create(client, "/v1/candidates", candidate_payload(insertion_id)))["id"]
    for phase in ("support", "securing"):
        moved = await client.post(
            f"/v1/candidates/{candidate}/transitions",
            json={"to": phase, "force": True, "note": "set up by the concurrency test"},
        )
        assert moved.status_code == 200, moved.text
    return str(candidate)


async def test_concurrent_job_starts_employ_a_candidate_once(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: Backend,
) -> None:
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    losers: Counter[str] = Counter()
    winners_per_round: list[int] = []
    double_starts = 0
    gauge = InFlight(app)

    async with await caller(gauge, sessionmaker, Role.INSERTION, insertion["id"]) as staff:
        for round_ in range(ROUNDS):
            candidate = await _securing_candidate(client, insertion["id"])
            held: list[str] = []
            for _ in range(2):
                vacancy = await create(client, "/v1/vacancies", job_payload(landlord["id"]))
                placement = await create(
                    client,
                    "/v1/placements",
                    {"candidate_id": candidate, "vacancy_id": vacancy["id"]},
                )
                accepted = await client.post(
                    f"/v1/placements/{placement['id']}/transitions", json={"to": "accepted"}
                )
                assert accepted.status_code == 200, accepted.text
                held.append(placement["id"])

            responses: list[Any] = await asyncio.gather(
                *(
                    staff.post(f"/v1/placements/{p}/transitions", json={"to": "started"})
                    for p in held
                )
            )
            outcomes = [outcome(r) for r in responses]
            wins = outcomes.count("200")
            winners_per_round.append(wins)
            losers.update(o for o in outcomes if o != "200")
            assert wins == 1, (round_, outcomes)
            assert all(
                o in ("phase-mismatch", "conflict", "duplicate", "concurrent-update")
                for o in outcomes
                if o != "200"
            ), outcomes

            candidate_id = uuid.UUID(candidate)
            async with sessionmaker() as session:
                started = await session.scalar(
                    select(func.count())
                    .select_from(Placement)
                    .where(Placement.candidate_id == candidate_id, Placement.status == "started")
                )
                employed_rows = await session.scalar(
                    select(func.count())
                    .select_from(CandidateTransition)
                    .where(
                        CandidateTransition.candidate_id == candidate_id,
                        CandidateTransition.from_phase == "securing",
                        CandidateTransition.to_phase == "employed",
                    )
                )
                phase = await session.scalar(
                    select(Candidate.phase).where(Candidate.id == candidate_id)
                )
            double_starts += max(0, int(started or 0) - 1)
            assert started == 1, round_
            assert employed_rows == 1, round_
            assert phase == "employed", round_
            winner = held[outcomes.index("200")]
            assert (await client.get(f"/v1/placements/{winner}")).json()["status"] == "started"
            loser = held[1 - outcomes.index("200")]
            assert (await client.get(f"/v1/placements/{loser}")).json()["status"] == "accepted"

    print(
        f"\n[{backend.name}] concurrent job starts: {ROUNDS} rounds x 2 starts for one "
        f"candidate; winners per round {sorted(set(winners_per_round))}; "
        f"double starts {double_starts}; losers {dict(losers)}; "
        f"most requests in flight at once {gauge.peak}"
    )
    assert double_starts == 0
    assert gauge.peak == 2


async def test_an_exit_and_an_acceptance_at_once_leave_no_position_held(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: Backend,
) -> None:
    """A person leaves the path while a landlord accepts one of their proposals. Leaving
    withdraws every placement not yet started; whichever request the database serves
    first, no position stays held by someone who left, and neither request fails for the
    other's locks (both take placement, vacancy, then candidate)."""
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    accepts: Counter[str] = Counter()
    gauge = InFlight(app)
    async with (
        await caller(gauge, sessionmaker, Role.INSERTION, insertion["id"]) as staff,
        await caller(gauge, sessionmaker, Role.LANDLORD, landlord["id"]) as landlord_staff,
    ):
        for round_ in range(ROUNDS):
            candidate = (
                await create(client, "/v1/candidates", candidate_payload(insertion["id"]))
            )["id"]
            vacancies = [
                (
                    await create(
                        client, "/v1/vacancies", vacancy_payload(landlord["id"], positions=1)
                    )
                )["id"]
                for _ in range(2)
            ]
            proposed, held = [
                (
                    await create(
                        client, "/v1/placements", {"candidate_id": candidate, "vacancy_id": v}
                    )
                )["id"]
                for v in vacancies
            ]
            accepted = await client.post(
                f"/v1/placements/{held}/transitions", json={"to": "accepted"}
            )
            assert accepted.status_code == 200, accepted.text

            left, accept = await asyncio.gather(
                staff.post(
                    f"/v1/candidates/{candidate}/transitions",
                    json={"to": "exited", "reason": "other_job"},
                ),
                landlord_staff.post(
                    f"/v1/placements/{proposed}/transitions", json={"to": "accepted"}
                ),
            )
            assert left.status_code == 200, (round_, left.text)
            accepts[outcome(accept)] += 1
            # Never `concurrent-update`: that is how a deadlock the database broke answers
            # (an exit that locked the person before the placements met it every round).
            assert outcome(accept) in (
                "200",
                "phase-mismatch",
                "placement-transition-not-allowed",
            ), (round_, accept.text)

            async with sessionmaker() as session:
                still_open = await session.scalar(
                    select(func.count())
                    .select_from(Placement)
                    .where(
                        Placement.candidate_id == uuid.UUID(candidate),
                        Placement.status.in_(("proposed", "interview", "accepted")),
                    )
                )
                rows = (
                    await session.execute(
                        select(Vacancy.filled_positions, Vacancy.status).where(
                            Vacancy.id.in_([uuid.UUID(v) for v in vacancies])
                        )
                    )
                ).all()
            assert still_open == 0, round_
            assert sorted((r.filled_positions, r.status) for r in rows) == [(0, "open")] * 2, round_

    print(
        f"\n[{backend.name}] an exit and an acceptance at once: {ROUNDS} rounds; the "
        f"acceptance answered {dict(accepts)}; most requests in flight at once {gauge.peak}"
    )
    assert gauge.peak == 2


async def test_a_cancellation_and_an_acceptance_at_once_leave_no_position_held(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: Backend,
) -> None:
    """A landlord cancels a vacancy while one of its proposals is being accepted.
    Cancelling closes every placement not yet started; whichever comes first, no
    position stays held on the cancelled vacancy, and neither request fails for the
    other's locks (both take placement, then vacancy)."""
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    accepts: Counter[str] = Counter()
    gauge = InFlight(app)
    async with (
        await caller(gauge, sessionmaker, Role.LANDLORD, landlord["id"]) as canceller,
        await caller(gauge, sessionmaker, Role.LANDLORD, landlord["id"]) as acceptor,
    ):
        for round_ in range(ROUNDS):
            vacancy = (
                await create(client, "/v1/vacancies", vacancy_payload(landlord["id"], positions=1))
            )["id"]
            candidate = (
                await create(client, "/v1/candidates", candidate_payload(insertion["id"]))
            )["id"]
            placement = (
                await create(
                    client, "/v1/placements", {"candidate_id": candidate, "vacancy_id": vacancy}
                )
            )["id"]

            cancel, accept = await asyncio.gather(
                canceller.patch(f"/v1/vacancies/{vacancy}", json={"status": "cancelled"}),
                acceptor.post(f"/v1/placements/{placement}/transitions", json={"to": "accepted"}),
            )
            assert cancel.status_code == 200, (round_, cancel.text)
            accepts[outcome(accept)] += 1
            # Never `concurrent-update`: that is how a deadlock the database broke answers.
            assert outcome(accept) in (
                "200",
                "vacancy-not-open",
                "placement-transition-not-allowed",
            ), (round_, accept.text)

            async with sessionmaker() as session:
                status = await session.scalar(
                    select(Placement.status).where(Placement.id == uuid.UUID(placement))
                )
                row = (
                    await session.execute(
                        select(Vacancy.filled_positions, Vacancy.status).where(
                            Vacancy.id == uuid.UUID(vacancy)
                        )
                    )
                ).one()
            assert status == "rejected", round_
            assert (row.filled_positions, row.status) == (0, "cancelled"), round_

    print(
        f"\n[{backend.name}] a cancellation and an acceptance at once: {ROUNDS} rounds; the "
        f"acceptance answered {dict(accepts)}; most requests in flight at once {gauge.peak}"
    )
    assert gauge.peak == 2


SYNCS = 8


async def test_concurrent_syncs_of_a_new_record_create_it_once_and_fail_none(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Two sync jobs of a partner that send the same new record at once: one creates it,
    the others find it (bulk is create-or-update by external_ref). On PostgreSQL the
    others' inserts met the unique index and failed with 'external-ref-taken', the very
    reference the item was meant to be matched by."""
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    gauge = InFlight(app)
    cases = [
        (Role.INSERTION, insertion["id"], "/v1/candidates/bulk", Candidate, "structure_id",
         {**candidate_payload(insertion["id"]), "external_ref": "SYNC-1"}),
        (Role.LANDLORD, landlord["id"], "/v1/vacancies/bulk", Vacancy, "landlord_id",
         {**vacancy_payload(landlord["id"]), "external_ref": "SYNC-1"}),
    ]  # fmt: skip
    for role, structure, path, model, owner, item in cases:
        async with await caller(gauge, sessionmaker, role, structure) as staff:
            responses = await asyncio.gather(
                *(staff.post(path, json={"items": [item]}) for _ in range(SYNCS))
            )
        assert [r.status_code for r in responses] == [200] * SYNCS
        results = [r.json()["items"][0] for r in responses]
        statuses = Counter(result["status"] for result in results)
        assert statuses == {"created": 1, "unchanged": SYNCS - 1}, (path, results)
        assert len({result["id"] for result in results}) == 1, results
        async with sessionmaker() as session:
            rows = await session.scalar(
                select(func.count())
                .select_from(model)
                .where(getattr(model, owner) == uuid.UUID(structure))
            )
        assert rows == 1, path
