"""The placement machine (DOMAIN.md, "Placements"), walked as a table, and its rules.

Every (from, to) over the nine statuses, for the admin, the insertion structure and
the landlord: 200, 409 placement-transition-not-allowed, 403 for a role that may not
make the move, 422 when a reason is required and missing. The expected answers are
written out here, not read from app.domain.placement_machine.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import session_scope
from app.domain.enums import Role
from app.models import CandidateTransition, Event, Placement, PlacementTransition
from app.schemas.placements import _months_later as months_later
from app.services.placements import expire_proposals
from tests.access_helpers import is_problem
from tests.conftest import client_as
from tests.factories import (
    candidate_payload,
    create,
    create_structure,
    job_payload,
    vacancy_payload,
)

PROBLEM = "urn:tremplin:problem:"
STATUSES = [
    "proposed",
    "interview",
    "accepted",
    "started",
    "completed",
    "ended",
    "rejected",
    "withdrawn",
    "expired",
]
ROLES = ("admin", "insertion", "landlord")
LANDLORD_SIDE = frozenset({"admin", "landlord"})
STRUCTURE_SIDE = frozenset({"admin", "insertion"})
BOTH = frozenset({"mission", "job"})


@dataclass(frozen=True)
class Move:
    roles: frozenset[str]
    reason: bool = False
    kinds: frozenset[str] = BOTH


# DOMAIN.md's placement moves, written out by hand. `expired` belongs to the expiry
# command: no role makes it by hand.
MOVES: dict[tuple[str, str], Move] = {
    ("proposed", "interview"): Move(LANDLORD_SIDE),
    ("proposed", "accepted"): Move(LANDLORD_SIDE),
    ("proposed", "rejected"): Move(LANDLORD_SIDE, reason=True),
    ("proposed", "withdrawn"): Move(STRUCTURE_SIDE, reason=True),
    ("proposed", "expired"): Move(frozenset()),
    ("interview", "accepted"): Move(LANDLORD_SIDE),
    ("interview", "rejected"): Move(LANDLORD_SIDE, reason=True),
    ("interview", "withdrawn"): Move(STRUCTURE_SIDE, reason=True),
    ("interview", "expired"): Move(frozenset()),
    ("accepted", "started"): Move(STRUCTURE_SIDE),
    ("accepted", "rejected"): Move(LANDLORD_SIDE, reason=True),
    ("accepted", "withdrawn"): Move(STRUCTURE_SIDE, reason=True),
    ("started", "completed"): Move(STRUCTURE_SIDE, kinds=frozenset({"mission"})),
    ("started", "ended"): Move(STRUCTURE_SIDE, reason=True, kinds=frozenset({"job"})),
}
REASON_FOR = {"rejected": "not_suited", "withdrawn": "candidate_declined", "ended": "resigned"}


def in_table(origin: str, to: str, kind: str) -> Move | None:
    rule = MOVES.get((origin, to))
    if rule is None or kind not in rule.kinds or not rule.roles:
        return None
    return rule


def allowed_for(origin: str, role: str, kind: str) -> set[str]:
    return {
        to
        for to in STATUSES
        if (rule := in_table(origin, to, kind)) is not None and role in rule.roles
    }


@dataclass
class Place:
    """An insertion structure, a landlord, and a client for each of the three roles."""

    admin: httpx.AsyncClient
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    insertion_id: str
    landlord_id: str
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def candidate(
        self, phase: str = "recruitment", dated: bool = False, **overrides: Any
    ) -> str:
        """`dated`: the moves took effect in January 2024, so placements may be dated after."""
        body = await create(
            self.admin, "/v1/candidates", candidate_payload(self.insertion_id, **overrides)
        )
        for step, day in (("support", "2024-01-10"), ("securing", "2024-01-20"))[
            : {"recruitment": 0, "support": 1, "securing": 2}[phase]
        ]:
            move: dict[str, Any] = {"to": step, "force": True, "note": "set up by the test suite"}
            if dated:
                move["effective_at"] = f"{day}T09:00:00Z"
            moved = await self.admin.post(f"/v1/candidates/{body['id']}/transitions", json=move)
            assert moved.status_code == 200, moved.text
        return str(body["id"])

    async def vacancy(self, kind: str = "mission", **overrides: Any) -> dict[str, Any]:
        make = job_payload if kind == "job" else vacancy_payload
        return await create(self.admin, "/v1/vacancies", make(self.landlord_id, **overrides))

    async def propose(self, candidate_id: str, vacancy_id: str, **extra: Any) -> httpx.Response:
        return await self.admin.post(
            "/v1/placements", json={"candidate_id": candidate_id, "vacancy_id": vacancy_id, **extra}
        )

    async def move(
        self, placement_id: str, to: str, role: str = "admin", **extra: Any
    ) -> httpx.Response:
        return await self.clients[role].post(
            f"/v1/placements/{placement_id}/transitions", json={"to": to, **extra}
        )

    async def moved(self, placement_id: str, to: str, **extra: Any) -> dict[str, Any]:
        response = await self.move(placement_id, to, **extra)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def placement(self, placement_id: str, role: str = "admin") -> dict[str, Any]:
        got = await self.clients[role].get(f"/v1/placements/{placement_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    async def get(self, path: str) -> dict[str, Any]:
        got = await self.admin.get(path)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    async def reach(
        self, status: str, kind: str, vacancy_id: str | None = None, dated: bool = False
    ) -> str:
        """A fresh placement in `status`, through the API (admin moves). `dated`: proposed
        and moved in February 2024, so that later moves may be dated in the past."""
        if vacancy_id is None:
            vacancy_id = (await self.vacancy(kind, positions=5))["id"]
        candidate = await self.candidate("securing" if kind == "job" else "recruitment", dated)
        when = {"proposed_at": "2024-02-01T09:00:00Z"} if dated else {}
        proposed = await self.propose(candidate, vacancy_id, **when)
        assert proposed.status_code == 201, proposed.text
        placement = str(proposed.json()["id"])
        path = {
            "proposed": [],
            "interview": ["interview"],
            "accepted": ["accepted"],
            "started": ["accepted", "started"],
            "completed": ["accepted", "started", "completed"],
            "ended": ["accepted", "started", "ended"],
            "rejected": ["rejected"],
            "withdrawn": ["withdrawn"],
            "expired": [],
        }[status]
        for day, step in enumerate(path, start=2):
            extra = {"reason": REASON_FOR[step]} if step in REASON_FOR else {}
            if dated:
                extra["on"] = f"2024-02-{day:02d}"
            await self.moved(placement, step, **extra)
        if status == "expired":
            await age(self.sessionmaker, placement, days=61)
            await self.expire()
        assert (await self.placement(placement))["status"] == status
        return placement

    async def expire(self) -> int:
        """What `python -m app expire-proposals` runs."""
        async with session_scope(self.sessionmaker) as session:
            return await expire_proposals(session, self.settings)


@pytest.fixture
async def place(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Place]:
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    made = Place(client, sessionmaker, app.state.settings, insertion["id"], landlord["id"])
    async with (
        await client_as(app, sessionmaker, Role.INSERTION, insertion["id"]) as staff,
        await client_as(app, sessionmaker, Role.LANDLORD, landlord["id"]) as landlord_staff,
    ):
        made.clients = {"admin": client, "insertion": staff, "landlord": landlord_staff}
        yield made


async def age(
    sessionmaker: async_sessionmaker[AsyncSession], placement_id: str, *, days: int
) -> None:
    """Put a placement's last status change (and its proposal) `days` back."""
    back = datetime.now(UTC) - timedelta(days=days)
    async with session_scope(sessionmaker) as session:
        result = await session.execute(
            update(Placement)
            .where(Placement.id == uuid.UUID(placement_id))
            .values(status_changed_at=back, proposed_at=back)
        )
        assert getattr(result, "rowcount", None) == 1


async def count(sessionmaker: async_sessionmaker[AsyncSession], stmt: Any) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(stmt) or 0)


def events_of(subject_id: str, type_: str) -> Any:
    return (
        select(func.count())
        .select_from(Event)
        .where(Event.subject_id == uuid.UUID(subject_id), Event.type == type_)
    )


# The `from` states, with the kind of vacancy that reaches them: missions for
# completed, jobs for ended; started and accepted are walked with both kinds.
FROM_CASES = [
    ("proposed", "mission"),
    ("interview", "mission"),
    ("accepted", "mission"),
    ("accepted", "job"),
    ("started", "mission"),
    ("started", "job"),
    ("completed", "mission"),
    ("ended", "job"),
    ("rejected", "mission"),
    ("withdrawn", "mission"),
    ("expired", "mission"),
]


@pytest.mark.parametrize(("origin", "kind"), FROM_CASES, ids=[f"{o}-{k}" for o, k in FROM_CASES])
async def test_placement_machine_table(
    client: httpx.AsyncClient,
    place: Place,
    origin: str,
    kind: str,
) -> None:
    vacancy = await place.vacancy(kind, positions=20)
    base = await place.reach(origin, kind, vacancy["id"])
    before = await place.placement(base)
    history_before = await place.get(f"/v1/placements/{base}/history")
    successes: list[tuple[str, str]] = []

    for to in STATUSES:
        rule = in_table(origin, to, kind)
        for role in ROLES:
            body = {"reason": REASON_FOR[to]} if to in REASON_FOR else {}
            if rule is None:
                refused = await place.move(base, to, role, **body)
                assert is_problem(refused, 409), (to, role, refused.text)
                problem = refused.json()
                assert problem["type"] == PROBLEM + "placement-transition-not-allowed"
                assert problem["current"] == origin
                assert set(problem["allowed"]) == allowed_for(origin, role, kind), (to, role)
            elif role not in rule.roles:
                refused = await place.move(base, to, role, **body)
                assert is_problem(refused, 403), (to, role, refused.text)
            else:
                if rule.reason:
                    missing = await place.move(base, to, role)
                    assert is_problem(missing, 422), (to, role, missing.text)
                    locs = [e["loc"] for e in missing.json()["errors"]]
                    assert ["body", "reason"] in locs
                successes.append((to, role))
    # Nothing refused changed the placement.
    assert await place.placement(base) == before
    assert await place.get(f"/v1/placements/{base}/history") == history_before

    expected_successes = {
        (to, role)
        for to in STATUSES
        for role in ROLES
        if (rule := in_table(origin, to, kind)) is not None and role in rule.roles
    }
    assert set(successes) == expected_successes
    for to, role in successes:
        fresh = await place.reach(origin, kind, vacancy["id"])
        body = {"reason": REASON_FOR[to]} if to in REASON_FOR else {}
        response = await place.move(fresh, to, role, note="moved by the table", **body)
        assert response.status_code == 200, (to, role, response.text)
        assert response.json()["status"] == to
        assert (await place.placement(fresh))["status"] == to
        history = (await place.get(f"/v1/placements/{fresh}/history"))["items"]
        last = history[-1]
        assert (last["from_status"], last["to_status"]) == (origin, to)
        assert last["actor_role"] == role
        assert last["reason"] == body.get("reason")
        assert last["note"] == "moved by the table"


async def test_if_match_on_placement_transitions(place: Place) -> None:
    placement = await place.reach("proposed", "mission")
    read = await place.clients["landlord"].get(f"/v1/placements/{placement}")
    tag = read.headers["ETag"]
    interview = await place.clients["landlord"].post(
        f"/v1/placements/{placement}/transitions",
        json={"to": "interview"},
        headers={"If-Match": tag},
    )
    assert interview.status_code == 200, interview.text
    fresh = interview.headers["ETag"]
    assert fresh != tag
    stale = await place.clients["landlord"].post(
        f"/v1/placements/{placement}/transitions",
        json={"to": "accepted"},
        headers={"If-Match": tag},
    )
    assert is_problem(stale, 412), stale.text
    assert (await place.placement(placement))["status"] == "interview"
    accepted = await place.clients["landlord"].post(
        f"/v1/placements/{placement}/transitions",
        json={"to": "accepted"},
        headers={"If-Match": fresh},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.headers["ETag"] not in (tag, fresh)


# --- Proposals --------------------------------------------------------------


async def test_a_proposal_needs_an_open_vacancy(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    candidate = await place.candidate()
    draft = await place.vacancy(status="draft")
    closed = await place.vacancy()
    cancelled = await place.vacancy()
    for vacancy, status in ((closed, "closed"), (cancelled, "cancelled")):
        changed = await client.patch(f"/v1/vacancies/{vacancy['id']}", json={"status": status})
        assert changed.status_code == 200, changed.text
    filled = await place.vacancy(positions=1)
    holder = await place.candidate()
    taken = await place.propose(holder, filled["id"])
    await place.moved(taken.json()["id"], "accepted")
    assert (await place.get(f"/v1/vacancies/{filled['id']}"))["status"] == "filled"

    for vacancy in (draft, closed, cancelled, filled):
        refused = await place.propose(candidate, vacancy["id"])
        assert is_problem(refused, 409), refused.text
        assert refused.json()["type"] == PROBLEM + "vacancy-not-open"
    listed = await place.get(f"/v1/placements?candidate_id={candidate}")
    assert listed["items"] == []

    open_ = await place.vacancy()
    proposed = await place.propose(candidate, open_["id"])
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["status"] == "proposed"
    # A closed vacancy opened again takes proposals again.
    reopened = await client.patch(f"/v1/vacancies/{closed['id']}", json={"status": "open"})
    assert reopened.status_code == 200, reopened.text
    assert (await place.propose(candidate, closed["id"])).status_code == 201


async def test_a_proposal_needs_consent(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    candidate = await place.candidate(consent_to_share=False)
    vacancy = await place.vacancy()
    refused = await place.propose(candidate, vacancy["id"])
    assert is_problem(refused, 409), refused.text
    assert refused.json()["type"] == PROBLEM + "consent-missing"
    assert (await place.get(f"/v1/placements?candidate_id={candidate}"))["items"] == []
    agreed = await client.patch(f"/v1/candidates/{candidate}", json={"consent_to_share": True})
    assert agreed.status_code == 200
    assert (await place.propose(candidate, vacancy["id"])).status_code == 201


# (candidate's phase, vacancy kind, accepted)
PHASE_FITS = [
    ("recruitment", "mission", True),
    ("support", "mission", True),
    ("securing", "mission", False),
    ("recruitment", "job", False),
    ("support", "job", False),
    ("securing", "job", True),
]


@pytest.mark.parametrize(
    ("phase", "kind", "fits"), PHASE_FITS, ids=[f"{p}-{k}" for p, k, _ in PHASE_FITS]
)
async def test_the_phase_must_fit_the_kind(
    client: httpx.AsyncClient,
    place: Place,
    phase: str,
    kind: str,
    fits: bool,
) -> None:
    candidate = await place.candidate(phase)
    vacancy = await place.vacancy(kind)
    response = await place.propose(candidate, vacancy["id"])
    if fits:
        assert response.status_code == 201, response.text
        assert response.json()["vacancy_kind"] == kind
    else:
        assert is_problem(response, 409), response.text
        assert response.json()["type"] == PROBLEM + "phase-mismatch"


async def test_exited_and_employed_candidates_are_not_proposed(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    exited = await place.candidate()
    left = await client.post(
        f"/v1/candidates/{exited}/transitions", json={"to": "exited", "reason": "moved_away"}
    )
    assert left.status_code == 200
    hired = await place.placement(await place.reach("started", "job"))
    mission, job = await place.vacancy("mission"), await place.vacancy("job")
    for candidate in (exited, hired["candidate_id"]):
        for vacancy in (mission, job):
            refused = await place.propose(candidate, vacancy["id"])
            assert is_problem(refused, 409), refused.text
            assert refused.json()["type"] == PROBLEM + "phase-mismatch"


async def test_one_open_placement_per_candidate_and_vacancy(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    candidate = await place.candidate()
    vacancy = await place.vacancy(positions=3)
    first = await place.propose(candidate, vacancy["id"])
    assert first.status_code == 201
    again = await place.propose(candidate, vacancy["id"])
    assert is_problem(again, 409), again.text
    # Another candidate on the same vacancy, or the same one elsewhere, is fine.
    assert (await place.propose(await place.candidate(), vacancy["id"])).status_code == 201
    assert (await place.propose(candidate, (await place.vacancy())["id"])).status_code == 201
    # Still open once accepted.
    await place.moved(first.json()["id"], "accepted")
    assert is_problem(await place.propose(candidate, vacancy["id"]), 409)

    await place.moved(first.json()["id"], "withdrawn", reason="candidate_declined")
    after = await place.propose(candidate, vacancy["id"])
    assert after.status_code == 201, after.text
    assert after.json()["id"] != first.json()["id"]
    listed = await place.get(f"/v1/placements?candidate_id={candidate}&vacancy_id={vacancy['id']}")
    assert sorted(p["status"] for p in listed["items"]) == ["proposed", "withdrawn"]


# --- Capacity ---------------------------------------------------------------


async def test_positions_fill_and_free(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    vacancy = await place.vacancy(positions=2)
    url = f"/v1/vacancies/{vacancy['id']}"
    placements = []
    for _ in range(3):
        proposed = await place.propose(await place.candidate(), vacancy["id"])
        assert proposed.status_code == 201
        placements.append(proposed.json()["id"])
    first, second, third = placements

    await place.moved(first, "accepted")
    assert (await place.get(url))["status"] == "open"
    assert (await place.get(url))["filled_positions"] == 1
    await place.move(second, "interview", "landlord")
    assert (await place.move(second, "accepted", "landlord")).status_code == 200
    full = await place.get(url)
    assert (full["status"], full["filled_positions"]) == ("filled", 2)

    refused = await place.move(third, "accepted", "landlord")
    assert is_problem(refused, 409), refused.text
    assert refused.json()["type"] == PROBLEM + "vacancy-full"
    assert (await place.placement(third))["status"] == "proposed"
    assert (await place.get(url))["filled_positions"] == 2

    await place.moved(second, "withdrawn", reason="candidate_declined")
    freed = await place.get(url)
    assert (freed["status"], freed["filled_positions"]) == ("open", 1)
    assert (await place.move(third, "accepted", "landlord")).status_code == 200
    again = await place.get(url)
    assert (again["status"], again["filled_positions"]) == ("filled", 2)

    # A rejection after acceptance frees the position too.
    await place.moved(first, "rejected", reason="not_suited")
    assert (await place.get(url))["filled_positions"] == 1
    assert (await place.get(url))["status"] == "open"


async def test_positions_cannot_go_below_those_taken(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    vacancy = await place.vacancy(positions=3)
    url = f"/v1/vacancies/{vacancy['id']}"
    for _ in range(2):
        proposed = await place.propose(await place.candidate(), vacancy["id"])
        await place.moved(proposed.json()["id"], "accepted")
    refused = await client.patch(url, json={"positions": 1})
    assert is_problem(refused, 409), refused.text
    assert refused.json()["type"] == PROBLEM + "positions-taken"
    assert (await place.get(url))["positions"] == 3
    lowered = await client.patch(url, json={"positions": 2})
    assert lowered.status_code == 200, lowered.text
    assert (lowered.json()["positions"], lowered.json()["status"]) == (2, "filled")
    raised = await client.patch(url, json={"positions": 4})
    assert raised.status_code == 200, raised.text
    assert (raised.json()["status"], raised.json()["filled_positions"]) == ("open", 2)


# --- Starting a job -----------------------------------------------------------


async def test_starting_a_job_employs_the_candidate(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    placement = await place.reach("accepted", "job", dated=True)
    candidate = (await place.placement(placement))["candidate_id"]
    assert (await place.get(f"/v1/candidates/{candidate}"))["phase"] == "securing"

    started = await place.move(placement, "started", "insertion", on="2026-01-05")
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "started"
    assert started.json()["started_on"] == "2026-01-05"
    assert (await place.get(f"/v1/candidates/{candidate}"))["phase"] == "employed"
    history = (await place.get(f"/v1/candidates/{candidate}/history"))["items"]
    last = history[-1]
    assert (last["from_phase"], last["to_phase"], last["reason"], last["forced"]) == (
        "securing",
        "employed",
        "job_started",
        False,
    )
    assert last["actor_role"] == "insertion"
    assert await count(sessionmaker, events_of(placement, "placement.status_changed")) == 2
    assert await count(sessionmaker, events_of(candidate, "candidate.phase_changed")) == 3


async def test_cancelling_a_vacancy_closes_its_placements_not_yet_started(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    vacancy = await place.vacancy(positions=2)
    placements: dict[str, str] = {}
    for name, path in {
        "accepted": ["accepted"],
        "proposed": [],
        "interview": ["interview"],
        "started": ["accepted", "started"],
    }.items():
        proposed = await place.propose(await place.candidate(), vacancy["id"])
        assert proposed.status_code == 201, proposed.text
        placements[name] = proposed.json()["id"]
        for step in path:
            await place.moved(placements[name], step)
    assert (await place.get(f"/v1/vacancies/{vacancy['id']}"))["status"] == "filled"

    cancelled = await place.clients["landlord"].patch(
        f"/v1/vacancies/{vacancy['id']}", json={"status": "cancelled"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    # The one under way still holds its position; the others freed theirs.
    assert cancelled.json()["filled_positions"] == 1
    assert cancelled.headers["etag"] == f'"{cancelled.json()["version"]}"'

    for name in ("accepted", "proposed", "interview"):
        closed = await place.placement(placements[name])
        assert (closed["status"], closed["closing_reason"]) == ("rejected", "other"), name
        last = (await place.get(f"/v1/placements/{placements[name]}/history"))["items"][-1]
        assert (last["to_status"], last["actor_role"], last["note"]) == (
            "rejected",
            "landlord",
            "the vacancy was cancelled",
        )
        events = await count(sessionmaker, events_of(placements[name], "placement.status_changed"))
        assert events == 1 + {"accepted": 1, "proposed": 0, "interview": 1}[name]
    assert (await place.placement(placements["started"]))["status"] == "started"
    # Nothing can be accepted or started on it any more.
    again = await place.move(placements["accepted"], "started", "insertion")
    assert is_problem(again, 409), again.text


async def test_leaving_the_path_withdraws_the_placements_not_yet_started(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    candidate = await place.candidate()
    held = await place.vacancy(positions=1)
    steps = {"held": (held, ["accepted"]), "proposed": (await place.vacancy(), [])}
    steps["interview"] = (await place.vacancy(), ["interview"])
    steps["started"] = (await place.vacancy(), ["accepted", "started"])
    placements: dict[str, str] = {}
    for name, (vacancy, path) in steps.items():
        proposed = await place.propose(candidate, vacancy["id"])
        assert proposed.status_code == 201, proposed.text
        placements[name] = proposed.json()["id"]
        for step in path:
            await place.moved(placements[name], step)
    assert (await place.get(f"/v1/vacancies/{held['id']}"))["status"] == "filled"

    left = await place.clients["insertion"].post(
        f"/v1/candidates/{candidate}/transitions", json={"to": "exited", "reason": "moved_away"}
    )
    assert left.status_code == 200, left.text
    assert left.json()["phase"] == "exited"

    for name in ("held", "proposed", "interview"):
        withdrawn = await place.placement(placements[name])
        assert (withdrawn["status"], withdrawn["closing_reason"]) == ("withdrawn", "other"), name
        last = (await place.get(f"/v1/placements/{placements[name]}/history"))["items"][-1]
        assert (last["to_status"], last["actor_role"], last["note"]) == (
            "withdrawn",
            "insertion",
            "left the path",
        )
        events = await count(sessionmaker, events_of(placements[name], "placement.status_changed"))
        assert events == 1 + {"held": 1, "proposed": 0, "interview": 1}[name]
    # The position is free again; a mission under way is the structure's to complete.
    vacancy = await place.get(f"/v1/vacancies/{held['id']}")
    assert (vacancy["status"], vacancy["filled_positions"]) == ("open", 0)
    assert (await place.placement(placements["started"]))["status"] == "started"


async def test_starting_a_mission_leaves_the_phase(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    placement = await place.reach("accepted", "mission")
    candidate = (await place.placement(placement))["candidate_id"]
    await place.moved(placement, "started")
    assert (await place.get(f"/v1/candidates/{candidate}"))["phase"] == "recruitment"
    assert await count(sessionmaker, events_of(candidate, "candidate.phase_changed")) == 0


async def test_at_most_one_started_job_per_candidate(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    candidate = await place.candidate("securing")
    held = []
    for _ in range(2):
        vacancy = await place.vacancy("job")
        proposed = await place.propose(candidate, vacancy["id"])
        assert proposed.status_code == 201
        await place.moved(proposed.json()["id"], "accepted")
        held.append(proposed.json()["id"])
    first, second = held
    assert (await place.move(first, "started")).status_code == 200
    refused = await place.move(second, "started")
    assert is_problem(refused, 409), refused.text
    assert (await place.placement(second))["status"] == "accepted"
    started = await place.get(f"/v1/placements?candidate_id={candidate}&status=started")
    assert [p["id"] for p in started["items"]] == [first]
    employed_rows = await count(
        sessionmaker,
        select(func.count())
        .select_from(CandidateTransition)
        .where(
            CandidateTransition.candidate_id == uuid.UUID(candidate),
            CandidateTransition.to_phase == "employed",
        ),
    )
    assert employed_rows == 1


# --- Follow-ups -------------------------------------------------------------


async def test_follow_ups_at_six_and_twelve_months(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    today = date.today()
    start = today - timedelta(days=400)
    six, twelve = months_later(start, 6), months_later(start, 12)
    placement = await place.reach("accepted", "job", dated=True)
    started = await place.moved(placement, "started", on=start.isoformat())
    assert started["follow_up_6m_due_on"] == six.isoformat()
    assert started["follow_up_12m_due_on"] == twelve.isoformat()
    assert started["follow_up_6m_on"] is None
    url = f"/v1/placements/{placement}/follow-ups"

    for at in (six - timedelta(days=1), start, today + timedelta(days=1)):
        refused = await client.post(url, json={"at": at.isoformat(), "in_post": True})
        assert is_problem(refused, 422), (at, refused.text)
        assert ["body", "at"] in [e["loc"] for e in refused.json()["errors"]]
    assert (await place.placement(placement))["follow_up_6m_on"] is None

    recorded = await place.clients["insertion"].post(
        url, json={"at": six.isoformat(), "in_post": True}
    )
    assert recorded.status_code == 200, recorded.text
    body = recorded.json()
    assert (body["follow_up_6m_on"], body["follow_up_6m_in_post"]) == (six.isoformat(), True)
    assert body["follow_up_12m_on"] is None

    again = await client.post(
        url, json={"at": (six + timedelta(days=3)).isoformat(), "in_post": False}
    )
    assert is_problem(again, 409), again.text
    assert again.json()["type"] == PROBLEM + "follow-up-refused"
    assert (await place.placement(placement))["follow_up_6m_in_post"] is True

    year = await client.post(url, json={"at": twelve.isoformat(), "in_post": False})
    assert year.status_code == 200, year.text
    final = await place.placement(placement)
    assert (final["follow_up_12m_on"], final["follow_up_12m_in_post"]) == (
        twelve.isoformat(),
        False,
    )
    assert (final["follow_up_6m_on"], final["follow_up_6m_in_post"]) == (six.isoformat(), True)
    assert is_problem(await client.post(url, json={"at": today.isoformat(), "in_post": True}), 409)
    recorded_events = await count(
        sessionmaker, events_of(placement, "placement.follow_up_recorded")
    )
    assert recorded_events == 2


async def test_follow_ups_are_for_started_jobs(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    today = date.today()
    mission = await place.reach("accepted", "mission", dated=True)
    await place.moved(mission, "started", on=(today - timedelta(days=400)).isoformat())
    assert (await place.placement(mission))["follow_up_6m_due_on"] is None
    body = {"at": today.isoformat(), "in_post": True}
    refused = await client.post(f"/v1/placements/{mission}/follow-ups", json=body)
    assert is_problem(refused, 409), refused.text
    assert refused.json()["type"] == PROBLEM + "follow-up-refused"
    not_started = await place.reach("accepted", "job")
    assert (await place.placement(not_started))["follow_up_6m_due_on"] is None
    refused = await client.post(f"/v1/placements/{not_started}/follow-ups", json=body)
    assert is_problem(refused, 409), refused.text


async def test_a_hire_that_ended_is_not_in_post(client: httpx.AsyncClient, place: Place) -> None:
    """The retention figure ("100% still in post") must not count a job that ended."""
    start = date.today() - timedelta(days=400)
    placement = await place.reach("accepted", "job", dated=True)
    await place.moved(placement, "started", on=start.isoformat())
    ended_on = start + timedelta(days=60)
    await place.moved(placement, "ended", reason="dismissed", on=ended_on.isoformat())
    url = f"/v1/placements/{placement}/follow-ups"
    six = months_later(start, 6).isoformat()

    claimed = await client.post(url, json={"at": six, "in_post": True})
    assert claimed.status_code in (409, 422), claimed.text
    assert (await place.placement(placement))["follow_up_6m_on"] is None
    recorded = await client.post(url, json={"at": six, "in_post": False})
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["follow_up_6m_in_post"] is False


async def test_move_dates_are_consistent(place: Place) -> None:
    """`on` says when a start or an end happened: not in the future, and an end not
    before the start."""
    placement = await place.reach("accepted", "job", dated=True)
    candidate = (await place.placement(placement))["candidate_id"]
    future = (date.today() + timedelta(days=90)).isoformat()
    early = await place.move(placement, "started", on=future)
    assert is_problem(early, 422), early.text
    assert ["body", "on"] in [e["loc"] for e in early.json()["errors"]]
    assert (await place.placement(placement))["status"] == "accepted"
    assert (await place.get(f"/v1/candidates/{candidate}"))["phase"] == "securing"

    await place.moved(placement, "started", on="2026-06-01")
    before_start = await place.move(placement, "ended", reason="resigned", on="2026-01-01")
    assert is_problem(before_start, 422), before_start.text
    assert ["body", "on"] in [e["loc"] for e in before_start.json()["errors"]]
    assert (await place.placement(placement))["status"] == "started"
    ended = await place.move(placement, "ended", reason="resigned", on="2026-07-01")
    assert ended.status_code == 200, ended.text
    assert (ended.json()["started_on"], ended.json()["ended_on"]) == ("2026-06-01", "2026-07-01")


# --- Expiry -----------------------------------------------------------------


async def test_expire_proposals(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    vacancy = await place.vacancy(positions=5)
    stale = await place.reach("proposed", "mission", vacancy["id"])
    await age(sessionmaker, stale, days=61)
    recent = await place.reach("proposed", "mission", vacancy["id"])
    await age(sessionmaker, recent, days=59)
    answered = await place.reach("proposed", "mission", vacancy["id"])
    await age(sessionmaker, answered, days=61)
    await place.moved(answered, "interview")  # proposed long ago, answered now
    stale_interview = await place.reach("interview", "mission", vacancy["id"])
    await age(sessionmaker, stale_interview, days=61)
    accepted = await place.reach("accepted", "mission", vacancy["id"])
    await age(sessionmaker, accepted, days=200)

    assert await place.expire() == 2
    statuses = {
        p: (await place.placement(p))["status"]
        for p in (stale, recent, answered, stale_interview, accepted)
    }
    assert statuses == {
        stale: "expired",
        recent: "proposed",
        answered: "interview",
        stale_interview: "expired",
        accepted: "accepted",
    }
    for placement, origin in ((stale, "proposed"), (stale_interview, "interview")):
        last = (await place.get(f"/v1/placements/{placement}/history"))["items"][-1]
        assert (last["from_status"], last["to_status"]) == (origin, "expired")
        assert last["actor_kind"] == "system"
        # One event per move: the expiry, after the interview where there was one.
        moved = await count(sessionmaker, events_of(placement, "placement.status_changed"))
        assert moved == (1 if origin == "proposed" else 2)
    # The accepted one keeps its position; the expired ones never held one.
    assert (await place.get(f"/v1/vacancies/{vacancy['id']}"))["filled_positions"] == 1

    history_rows = await count(sessionmaker, select(func.count()).select_from(PlacementTransition))
    events = await count(sessionmaker, select(func.count()).select_from(Event))
    assert await place.expire() == 0
    assert await count(sessionmaker, select(func.count()).select_from(PlacementTransition)) == (
        history_rows
    )
    assert await count(sessionmaker, select(func.count()).select_from(Event)) == events
    assert (await place.placement(stale))["status"] == "expired"


# --- Who sees what ----------------------------------------------------------


async def test_landlords_do_not_see_placement_notes(
    client: httpx.AsyncClient, place: Place, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    candidate = await place.candidate()
    vacancy = await place.vacancy()
    notes = "Needs mornings free for the nursery."
    proposed = await place.propose(candidate, vacancy["id"], notes=notes)
    assert proposed.status_code == 201
    placement = proposed.json()["id"]
    assert (await place.placement(placement, "admin"))["notes"] == notes
    assert (await place.placement(placement, "insertion"))["notes"] == notes
    assert (await place.placement(placement, "landlord"))["notes"] is None
    listed = await place.clients["landlord"].get("/v1/placements")
    assert [p["notes"] for p in listed.json()["items"]] == [None]
    moved = await place.move(placement, "interview", "landlord")
    assert moved.status_code == 200
    assert moved.json()["notes"] is None
    assert (await place.placement(placement, "insertion"))["notes"] == notes
