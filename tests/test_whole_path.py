"""A whole path through the API, as its actors make it, and the atomicity of transitions.

A person a prescriber referred in January 2025, whose history the insertion structure
records with its real dates: trial and project evaluation -> support -> training hours
-> work mission -> skills assessment -> securing -> certification -> a job posted,
proposed, accepted and started -> employed -> the 6- and 12-month follow-ups.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from app.models import CandidateTransition, Event, PlacementTransition
from app.schemas.placements import _months_later as months_later
from app.services import events, pathway, placements
from tests.access_helpers import token_of
from tests.conftest import client_as
from tests.factories import (
    candidate_payload,
    create,
    create_structure,
    job_payload,
    vacancy_payload,
)


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    response = await response
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_whole_path_from_referral_to_twelve_months_in_post(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    insertion = await create_structure(client, "insertion", name="SIAE Rouen (fictional)")
    landlord = await create_structure(client, "landlord", name="OPH Rouen (fictional)")
    partner = await create_structure(client, "partner", name="PLIE Rouen (fictional)")
    async with (
        await client_as(app, sessionmaker, Role.PRESCRIBER, partner["id"]) as prescriber,
        await client_as(app, sessionmaker, Role.INSERTION, insertion["id"]) as siae,
        await client_as(app, sessionmaker, Role.LANDLORD, landlord["id"]) as oph,
    ):
        # The PLIE referred a person to the SIAE, which records the path since then.
        referred = await ok(
            siae.post(
                "/v1/candidates",
                json=candidate_payload(
                    insertion["id"], referrer_id=partner["id"], entered_at="2025-01-02T09:00:00Z"
                ),
            ),
            201,
        )
        person = referred["id"]
        assert (await ok(prescriber.get(f"/v1/candidates/{person}")))["view"] == "referral"
        assert referred["phase"] == "recruitment"
        activities = f"/v1/candidates/{person}/activities"
        transitions = f"/v1/candidates/{person}/transitions"

        # Recruitment: a work trial and the project evaluation.
        await ok(
            siae.post(
                activities,
                json={
                    "type": "work_trial",
                    "occurred_on": "2025-01-06",
                    "end_on": "2025-01-17",
                    "outcome": "positive",
                },
            ),
            201,
        )
        too_early = await siae.post(transitions, json={"to": "support"})
        assert too_early.status_code == 409
        assert [u["code"] for u in too_early.json()["unmet"]] == ["project_validated"]
        await ok(
            siae.post(
                activities,
                json={
                    "type": "project_evaluation",
                    "occurred_on": "2025-01-24",
                    "outcome": "positive",
                },
            ),
            201,
        )
        moved = siae.post(
            transitions, json={"to": "support", "effective_at": "2025-01-27T09:00:00Z"}
        )
        assert (await ok(moved))["phase"] == "support"

        # Support: 150 hours over three trainings, a work mission, a skills assessment.
        for day, hours in (("2025-02-03", 70), ("2025-03-03", 45.5), ("2025-04-07", 34.5)):
            await ok(
                siae.post(
                    activities,
                    json={
                        "type": "training",
                        "occurred_on": day,
                        "hours": hours,
                        "training_mode": "external",
                        "certifying": True,
                        "rncp_code": "RNCP40892",
                    },
                ),
                201,
            )
        await ok(
            siae.post(
                activities,
                json={
                    "type": "work_mission",
                    "occurred_on": "2025-05-05",
                    "end_on": "2025-06-27",
                    "landlord_id": landlord["id"],
                    "hours": 280,
                    "outcome": "positive",
                },
            ),
            201,
        )
        not_yet = await siae.post(transitions, json={"to": "securing"})
        assert not_yet.status_code == 409
        assert [u["code"] for u in not_yet.json()["unmet"]] == ["skills_assessment"]
        await ok(
            siae.post(
                activities,
                json={
                    "type": "skills_assessment",
                    "occurred_on": "2025-07-07",
                    "competency_levels": {
                        "cleaning_hygiene": 3,
                        "waste_management": 2,
                        "tenant_welcome": 2,
                        "safety_rounds": 2,
                    },
                    "outcome": "positive",
                },
            ),
            201,
        )
        moved = siae.post(
            transitions, json={"to": "securing", "effective_at": "2025-07-10T09:00:00Z"}
        )
        assert (await ok(moved))["phase"] == "securing"

        # Securing: the certification exam, passed.
        await ok(
            siae.post(
                activities,
                json={
                    "type": "certification_exam",
                    "occurred_on": "2025-09-15",
                    "rncp_code": "RNCP40892",
                    "outcome": "positive",
                },
            ),
            201,
        )
        profile = await ok(siae.get(f"/v1/candidates/{person}"))
        assert profile["certifications"] == [
            {"rncp_code": "RNCP40892", "status": "held", "date": "2025-09-15"}
        ]
        assert profile["competencies"]["cleaning_hygiene"] == 3

        # The landlord posts a job, the SIAE proposes, the landlord accepts, the SIAE starts.
        job = await ok(
            oph.post("/v1/vacancies", json=job_payload(landlord["id"], status="open")), 201
        )
        today = date.today()
        start = today - timedelta(days=396)  # about 13 months back
        proposal = {
            "candidate_id": person,
            "vacancy_id": job["id"],
            "proposed_at": f"{start - timedelta(days=30)}T10:00:00Z",
        }
        placement = await ok(siae.post("/v1/placements", json=proposal), 201)
        moves = f"/v1/placements/{placement['id']}/transitions"
        accepted = await ok(
            oph.post(moves, json={"to": "accepted", "on": str(start - timedelta(days=15))})
        )
        assert accepted["status"] == "accepted"
        assert (await ok(oph.get(f"/v1/vacancies/{job['id']}")))["status"] == "filled"
        # Once accepted, the landlord sees the full profile.
        assert (await ok(oph.get(f"/v1/candidates/{person}")))["view"] == "full"

        started = await ok(siae.post(moves, json={"to": "started", "on": start.isoformat()}))
        assert started["status"] == "started"
        assert started["started_on"] == start.isoformat()
        assert (await ok(siae.get(f"/v1/candidates/{person}")))["phase"] == "employed"

        # Retention follow-ups.
        follow_ups = f"/v1/placements/{placement['id']}/follow-ups"
        six, twelve = months_later(start, 6), months_later(start, 12)
        assert started["follow_up_6m_due_on"] == six.isoformat()
        await ok(siae.post(follow_ups, json={"at": six.isoformat(), "in_post": True}))
        final = await ok(siae.post(follow_ups, json={"at": twelve.isoformat(), "in_post": True}))
        assert (final["follow_up_6m_on"], final["follow_up_6m_in_post"]) == (six.isoformat(), True)
        assert (final["follow_up_12m_on"], final["follow_up_12m_in_post"]) == (
            twelve.isoformat(),
            True,
        )

        # The history, in order.
        history = (await ok(siae.get(f"/v1/candidates/{person}/history")))["items"]
        assert [(h["from_phase"], h["to_phase"]) for h in history] == [
            (None, "recruitment"),
            ("recruitment", "support"),
            ("support", "securing"),
            ("securing", "employed"),
        ]
        assert [h["at"][:10] for h in history] == [
            "2025-01-02",
            "2025-01-27",
            "2025-07-10",
            start.isoformat(),
        ]
        assert [h["reason"] for h in history] == [None, None, None, "job_started"]
        assert not any(h["forced"] for h in history)
        assert {h["actor_role"] for h in history} == {"insertion"}
        assert [h["at"] for h in history] == sorted(h["at"] for h in history)
        placement_history = (await ok(siae.get(f"/v1/placements/{placement['id']}/history")))[
            "items"
        ]
        assert [(h["from_status"], h["to_status"], h["actor_role"]) for h in placement_history] == [
            ("proposed", "accepted", "landlord"),
            ("accepted", "started", "insertion"),
        ]

        # The prescriber sees the outcome of its referral.
        outcome = await ok(prescriber.get(f"/v1/candidates/{person}"))
        assert (outcome["view"], outcome["phase"]) == ("referral", "employed")
        listed = await ok(prescriber.get("/v1/candidates"))
        assert [(c["id"], c["phase"]) for c in listed["items"]] == [(person, "employed")]

    # One event per transition, of the candidate and of the placement.
    async with sessionmaker() as session:
        phase_events = await session.scalars(
            select(Event)
            .where(Event.type == "candidate.phase_changed", Event.subject_id == uuid.UUID(person))
            .order_by(Event.id)
        )
        assert [(e.payload["from"], e.payload["to"]) for e in phase_events] == [
            ("recruitment", "support"),
            ("support", "securing"),
            ("securing", "employed"),
        ]
        placement_events = await session.scalars(
            select(Event)
            .where(
                Event.type == "placement.status_changed",
                Event.subject_id == uuid.UUID(placement["id"]),
            )
            .order_by(Event.id)
        )
        assert [(e.payload["from"], e.payload["to"]) for e in placement_events] == [
            ("proposed", "accepted"),
            ("accepted", "started"),
        ]


# --- Atomicity ----------------------------------------------------------------


class Injected(RuntimeError):
    pass


def boom(*_args: Any, **_kwargs: Any) -> Any:
    raise Injected("injected after the state change")


@pytest.fixture
async def fragile(client: httpx.AsyncClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's token, through a transport that hands back 500s instead of raising."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://tremplin.test",
        headers={"Authorization": f"Bearer {token_of(client)}"},
    ) as http:
        yield http


async def snapshot(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    candidate: str,
    placement: str | None = None,
) -> dict[str, Any]:
    """Everything a failed transition must leave as it was."""
    state: dict[str, Any] = {"candidate": (await ok(client.get(f"/v1/candidates/{candidate}")))}
    state["history"] = (await ok(client.get(f"/v1/candidates/{candidate}/history")))["items"]
    if placement is not None:
        body = await ok(client.get(f"/v1/placements/{placement}"))
        state["placement"] = body
        state["vacancy"] = await ok(client.get(f"/v1/vacancies/{body['vacancy_id']}"))
        state["placement_history"] = (await ok(client.get(f"/v1/placements/{placement}/history")))[
            "items"
        ]
    async with sessionmaker() as session:
        for name, model in (
            ("events", Event),
            ("candidate_rows", CandidateTransition),
            ("placement_rows", PlacementTransition),
        ):
            state[name] = await session.scalar(select(func.count()).select_from(model))
    return state


async def _support_ready(client: httpx.AsyncClient) -> tuple[str, str]:
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    person = (await create(client, "/v1/candidates", candidate_payload(insertion["id"])))["id"]
    for payload in (
        {"type": "work_trial", "occurred_on": "2026-01-05", "outcome": "positive"},
        {"type": "project_evaluation", "occurred_on": "2026-01-20", "outcome": "positive"},
    ):
        await create(client, f"/v1/candidates/{person}/activities", payload)
    return person, landlord["id"]


# Where the failure strikes: the event write, or the history record before it.
FAILURES = {
    "event": (events, "emit"),
    "history": (pathway, "CandidateTransition"),
}


@pytest.mark.parametrize("where", list(FAILURES))
async def test_a_failed_candidate_transition_leaves_nothing(
    client: httpx.AsyncClient,
    fragile: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    person, _ = await _support_ready(client)
    before = await snapshot(client, sessionmaker, person)
    module, name = FAILURES[where]
    with monkeypatch.context() as patched:
        patched.setattr(module, name, boom)
        failed = await fragile.post(f"/v1/candidates/{person}/transitions", json={"to": "support"})
    assert failed.status_code == 500
    after = await snapshot(client, sessionmaker, person)
    assert after == before
    assert after["candidate"]["phase"] == "recruitment"
    # Without the failure the same request goes through.
    moved = await client.post(f"/v1/candidates/{person}/transitions", json={"to": "support"})
    assert moved.status_code == 200, moved.text


PLACEMENT_FAILURES = {
    "event": (events, "emit"),
    "history": (placements, "PlacementTransition"),
}


@pytest.mark.parametrize("where", list(PLACEMENT_FAILURES))
async def test_a_failed_accept_leaves_nothing(
    client: httpx.AsyncClient,
    fragile: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    person, landlord = await _support_ready(client)
    vacancy = await create(client, "/v1/vacancies", vacancy_payload(landlord, positions=1))
    placement = (
        await create(
            client, "/v1/placements", {"candidate_id": person, "vacancy_id": vacancy["id"]}
        )
    )["id"]
    before = await snapshot(client, sessionmaker, person, placement)
    module, name = PLACEMENT_FAILURES[where]
    with monkeypatch.context() as patched:
        patched.setattr(module, name, boom)
        failed = await fragile.post(
            f"/v1/placements/{placement}/transitions", json={"to": "accepted"}
        )
    assert failed.status_code == 500
    after = await snapshot(client, sessionmaker, person, placement)
    assert after == before
    assert after["placement"]["status"] == "proposed"
    assert (after["vacancy"]["status"], after["vacancy"]["filled_positions"]) == ("open", 0)
    moved = await client.post(f"/v1/placements/{placement}/transitions", json={"to": "accepted"})
    assert moved.status_code == 200, moved.text


@pytest.mark.parametrize("where", ["event", "candidate-history", "placement-history"])
async def test_a_failed_job_start_leaves_nothing(
    client: httpx.AsyncClient,
    fragile: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    person = (await create(client, "/v1/candidates", candidate_payload(insertion["id"])))["id"]
    for phase in ("support", "securing"):
        moved = await client.post(
            f"/v1/candidates/{person}/transitions",
            json={"to": phase, "force": True, "note": "set up for the atomicity test"},
        )
        assert moved.status_code == 200
    vacancy = await create(client, "/v1/vacancies", job_payload(landlord["id"]))
    placement = (
        await create(
            client, "/v1/placements", {"candidate_id": person, "vacancy_id": vacancy["id"]}
        )
    )["id"]
    await ok(client.post(f"/v1/placements/{placement}/transitions", json={"to": "accepted"}))
    before = await snapshot(client, sessionmaker, person, placement)
    target = {
        "event": (events, "emit"),
        "candidate-history": (pathway, "CandidateTransition"),
        "placement-history": (placements, "PlacementTransition"),
    }[where]
    with monkeypatch.context() as patched:
        patched.setattr(*target, boom)
        failed = await fragile.post(
            f"/v1/placements/{placement}/transitions", json={"to": "started"}
        )
    assert failed.status_code == 500
    after = await snapshot(client, sessionmaker, person, placement)
    assert after == before
    assert after["candidate"]["phase"] == "securing"
    assert after["placement"]["status"] == "accepted"
    assert after["vacancy"]["filled_positions"] == 1
    started = await client.post(f"/v1/placements/{placement}/transitions", json={"to": "started"})
    assert started.status_code == 200, started.text
    assert (await ok(client.get(f"/v1/candidates/{person}")))["phase"] == "employed"
