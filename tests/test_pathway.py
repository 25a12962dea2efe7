"""The path's state machine (DOMAIN.md, "The path"), walked as a table.

Part (a) asks app.domain.pathway directly, without a database: every (from, to) pair
over the five phases, guards met and unmet, and each guard at its threshold.
Part (b) does the same through POST /v1/candidates/{id}/transitions, then checks
reasons, forcing, history, If-Match, PATCH and GET /v1/pathway.

The expected answers are written out here from DOMAIN.md, not read from the module,
so a wrong table in the code fails these tests.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Phase, Role
from app.domain.pathway import (
    MACHINE,
    PathSnapshot,
    Thresholds,
    allowed_targets,
    requirements,
    unmet_for,
)
from app.main import create_app
from app.models import Event
from tests.access_helpers import is_problem, subject_of, token_of
from tests.conftest import Backend, client_as, http_client, make_settings
from tests.factories import candidate_payload, create, create_structure, job_payload

R, SU, SE, EM, EX = (
    Phase.RECRUITMENT,
    Phase.SUPPORT,
    Phase.SECURING,
    Phase.EMPLOYED,
    Phase.EXITED,
)
PROBLEM = "urn:tremplin:problem:"

EXIT_REASONS = frozenset(
    {
        "other_job",
        "other_training",
        "moved_away",
        "personal_circumstances",
        "dropped_out",
        "not_suited",
        "other",
    }
)
STEP_BACK_REASONS = frozenset({"failed_exam", "mission_broke_down", "other"})
RE_ENTRY_REASONS = frozenset({"re_entry", "other"})
# A reason valid for each kind of move, and one that belongs to another kind.
JOB_ENDED = frozenset({"job_ended"})
GOOD_REASON = {
    JOB_ENDED: "job_ended",
    EXIT_REASONS: "moved_away",
    STEP_BACK_REASONS: "failed_exam",
    RE_ENTRY_REASONS: "re_entry",
}
WRONG_REASON = {
    JOB_ENDED: "moved_away",
    EXIT_REASONS: "failed_exam",
    STEP_BACK_REASONS: "moved_away",
    RE_ENTRY_REASONS: "dropped_out",
}

SUPPORT_GUARD = ("positive_trial", "project_validated")
SECURING_GUARD = ("training_hours", "skills_assessment", "work_mission")


@dataclass(frozen=True)
class Rule:
    guard: tuple[str, ...] = ()
    reasons: frozenset[str] = frozenset()
    placement_only: bool = False


# DOMAIN.md's transitions, written out by hand.
TABLE: dict[tuple[Phase, Phase], Rule] = {
    (R, SU): Rule(guard=SUPPORT_GUARD),
    (R, EX): Rule(reasons=EXIT_REASONS),
    (SU, SE): Rule(guard=SECURING_GUARD),
    (SU, R): Rule(reasons=STEP_BACK_REASONS),
    (SU, EX): Rule(reasons=EXIT_REASONS),
    (SE, EM): Rule(guard=("job_started",), placement_only=True),
    (SE, SU): Rule(reasons=STEP_BACK_REASONS),
    (SE, EX): Rule(reasons=EXIT_REASONS),
    (EX, R): Rule(reasons=RE_ENTRY_REASONS),
    # A started job that ends brings the person back to securing, with the placement.
    (EM, SE): Rule(reasons=JOB_ENDED, placement_only=True),
}
PAIRS = list(itertools.product(Phase, Phase))

EMPTY = PathSnapshot()
FULL = PathSnapshot(
    positive_trials=1,
    project_validated=True,
    training_hours=150,
    positive_skills_assessments=1,
    completed_work_missions=1,
    started_job_placement=True,
)
DEFAULTS = Thresholds()


def expected_allowed(current: Phase, guards_met: bool) -> set[Phase]:
    """Targets the endpoint would take now: in the table, not placement-only, guard met."""
    return {
        to
        for (origin, to), rule in TABLE.items()
        if origin is current and not rule.placement_only and (guards_met or not rule.guard)
    }


def pair_id(pair: tuple[Phase, Phase]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


# ---------------------------------------------------------------------------
# (a) The table, without a database


def test_machine_has_exactly_the_transitions_of_the_domain() -> None:
    assert set(MACHINE) == set(Phase)
    found = {(origin, to) for origin, targets in MACHINE.items() for to in targets}
    assert found == set(TABLE)
    for (origin, to), rule in TABLE.items():
        transition = MACHINE[origin][to]
        assert {r.value for r in transition.reasons} == rule.reasons, (origin, to)
        assert transition.via_placement_only is rule.placement_only, (origin, to)
        assert (transition.guard is not None) is bool(rule.guard), (origin, to)


@pytest.mark.parametrize("pair", PAIRS, ids=[pair_id(p) for p in PAIRS])
@pytest.mark.parametrize("met", [False, True], ids=["guards-unmet", "guards-met"])
def test_unmet_for_every_pair(pair: tuple[Phase, Phase], met: bool) -> None:
    origin, to = pair
    unmet = unmet_for(origin, to, FULL if met else EMPTY, DEFAULTS)
    rule = TABLE.get(pair)
    if rule is None:
        assert unmet is None  # not in the table
        return
    assert unmet is not None
    codes = [u.code for u in unmet]
    assert codes == ([] if met else list(rule.guard))


@pytest.mark.parametrize("origin", list(Phase), ids=[p.value for p in Phase])
@pytest.mark.parametrize("met", [False, True], ids=["guards-unmet", "guards-met"])
def test_allowed_targets_of_every_phase(origin: Phase, met: bool) -> None:
    allowed = allowed_targets(origin, FULL if met else EMPTY, DEFAULTS)
    assert len(allowed) == len(set(allowed))
    assert set(allowed) == expected_allowed(origin, met)
    assert EM not in allowed  # employed is reached only by starting a job


@pytest.mark.parametrize("pair", list(TABLE), ids=[pair_id(p) for p in TABLE])
def test_requirements_list_the_whole_guard(pair: tuple[Phase, Phase]) -> None:
    assert [u.code for u in requirements(*pair, DEFAULTS)] == list(TABLE[pair].guard)


# (field changed from FULL, failing value, passing value, transition, unmet code)
BOUNDARIES = [
    ("positive_trials", 0, 1, (R, SU), "positive_trial"),
    ("project_validated", False, True, (R, SU), "project_validated"),
    ("training_hours", 149.5, 150, (SU, SE), "training_hours"),
    ("training_hours", 149.99, 150.0, (SU, SE), "training_hours"),
    ("positive_skills_assessments", 0, 1, (SU, SE), "skills_assessment"),
    ("completed_work_missions", 0, 1, (SU, SE), "work_mission"),
    ("started_job_placement", False, True, (SE, EM), "job_started"),
]


@pytest.mark.parametrize(
    ("field", "failing", "passing", "pair", "code"),
    BOUNDARIES,
    ids=[f"{b[0]}={b[1]}|{b[2]}" for b in BOUNDARIES],
)
def test_each_guard_at_its_threshold(
    field: str, failing: object, passing: object, pair: tuple[Phase, Phase], code: str
) -> None:
    changes: dict[str, Any] = {field: failing}
    below = replace(FULL, **changes)
    changes[field] = passing
    at = replace(FULL, **changes)
    unmet = unmet_for(*pair, below, DEFAULTS)
    assert unmet is not None
    assert [u.code for u in unmet] == [code]  # only this requirement fails
    if isinstance(failing, (int, float)) and not isinstance(failing, bool):
        assert unmet[0].have == failing  # where the candidate stands
    assert unmet_for(*pair, at, DEFAULTS) == []
    # The transition comes and goes from the allowed targets with its guard
    # (employed never: it is reached by starting a job).
    if not TABLE[pair].placement_only:
        assert pair[1] not in allowed_targets(pair[0], below, DEFAULTS)
        assert pair[1] in allowed_targets(pair[0], at, DEFAULTS)


def test_thresholds_are_parameters_of_the_guards() -> None:
    rouen = Thresholds(min_training_hours=350)
    at_150 = replace(FULL, training_hours=150)
    unmet = unmet_for(SU, SE, at_150, rouen)
    assert unmet is not None
    assert [u.code for u in unmet] == ["training_hours"]
    assert "350" in unmet[0].requirement
    assert unmet_for(SU, SE, replace(FULL, training_hours=349.5), rouen) != []
    assert unmet_for(SU, SE, replace(FULL, training_hours=350), rouen) == []

    two_trials = Thresholds(min_positive_trials=2)
    one = unmet_for(R, SU, replace(FULL, positive_trials=1), two_trials)
    assert one is not None
    assert [u.code for u in one] == ["positive_trial"]
    assert unmet_for(R, SU, replace(FULL, positive_trials=2), two_trials) == []

    more = Thresholds(min_positive_skills_assessments=2, min_completed_work_missions=3)
    short = unmet_for(SU, SE, replace(FULL, completed_work_missions=2), more)
    assert short is not None
    assert [u.code for u in short] == ["skills_assessment", "work_mission"]
    enough = replace(FULL, positive_skills_assessments=2, completed_work_missions=3)
    assert unmet_for(SU, SE, enough, more) == []


# ---------------------------------------------------------------------------
# (b) Through the API


@dataclass
class Place:
    """One insertion structure and one landlord, made by the admin."""

    admin: httpx.AsyncClient
    insertion_id: str
    landlord_id: str

    async def candidate(self, **overrides: Any) -> str:
        body = await create(
            self.admin, "/v1/candidates", candidate_payload(self.insertion_id, **overrides)
        )
        return str(body["id"])

    async def activity(self, candidate_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await create(self.admin, f"/v1/candidates/{candidate_id}/activities", payload)

    async def meet_support_guard(self, candidate_id: str) -> None:
        await self.activity(
            candidate_id, {"type": "work_trial", "occurred_on": "2026-01-05", "outcome": "positive"}
        )
        await self.activity(
            candidate_id,
            {"type": "project_evaluation", "occurred_on": "2026-01-20", "outcome": "positive"},
        )

    async def meet_securing_guard(self, candidate_id: str, hours: float = 150) -> None:
        await self.activity(
            candidate_id,
            {
                "type": "training",
                "occurred_on": "2026-02-02",
                "hours": hours,
                "training_mode": "external",
            },
        )
        await self.activity(
            candidate_id,
            {
                "type": "skills_assessment",
                "occurred_on": "2026-03-02",
                "competency_levels": {"cleaning_hygiene": 2},
                "outcome": "positive",
            },
        )
        await self.activity(
            candidate_id,
            {
                "type": "work_mission",
                "occurred_on": "2026-03-10",
                "landlord_id": self.landlord_id,
                "outcome": "positive",
            },
        )

    async def move(self, candidate_id: str, body: dict[str, Any]) -> httpx.Response:
        return await self.admin.post(f"/v1/candidates/{candidate_id}/transitions", json=body)

    async def force(self, candidate_id: str, to: Phase) -> None:
        moved = await self.move(
            candidate_id, {"to": to.value, "force": True, "note": "set up by the test suite"}
        )
        assert moved.status_code == 200, moved.text

    async def put_in(self, candidate_id: str, phase: Phase) -> None:
        """From recruitment to `phase` through the API (forced moves, an exit, a job)."""
        if phase is EX:
            moved = await self.move(candidate_id, {"to": "exited", "reason": "dropped_out"})
            assert moved.status_code == 200, moved.text
            return
        if phase in (SU, SE, EM):
            await self.force(candidate_id, SU)
        if phase in (SE, EM):
            await self.force(candidate_id, SE)
        if phase is EM:
            vacancy = await create(self.admin, "/v1/vacancies", job_payload(self.landlord_id))
            placement = await create(
                self.admin,
                "/v1/placements",
                {"candidate_id": candidate_id, "vacancy_id": vacancy["id"]},
            )
            for step in ({"to": "accepted"}, {"to": "started"}):
                moved = await self.admin.post(
                    f"/v1/placements/{placement['id']}/transitions", json=step
                )
                assert moved.status_code == 200, moved.text
        assert await self.phase(candidate_id) is phase

    async def phase(self, candidate_id: str) -> Phase:
        got = await self.admin.get(f"/v1/candidates/{candidate_id}")
        assert got.status_code == 200, got.text
        return Phase(got.json()["phase"])

    async def history(self, candidate_id: str) -> list[dict[str, Any]]:
        """The moves after the entry into the path (the history's first row)."""
        got = await self.admin.get(f"/v1/candidates/{candidate_id}/history", params={"limit": 200})
        assert got.status_code == 200, got.text
        items: list[dict[str, Any]] = got.json()["items"]
        entry, *moves = items
        assert (entry["from_phase"], entry["to_phase"]) == (None, "recruitment")
        return moves


async def make_place(admin: httpx.AsyncClient) -> Place:
    insertion = await create_structure(admin, "insertion")
    landlord = await create_structure(admin, "landlord")
    return Place(admin, insertion["id"], landlord["id"])


async def phase_events(sessionmaker: async_sessionmaker[AsyncSession], candidate_id: str) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Event)
            .where(
                Event.type == "candidate.phase_changed",
                Event.subject_id == uuid.UUID(candidate_id),
            )
        )
    return int(count or 0)


def body_for(pair: tuple[Phase, Phase]) -> dict[str, Any]:
    rule = TABLE.get(pair)
    body: dict[str, Any] = {"to": pair[1].value}
    if rule is not None and rule.reasons:
        body["reason"] = GOOD_REASON[rule.reasons]
    return body


# Guards can be met only where a guarded transition leaves the phase.
API_CASES = [
    (origin, to, met)
    for origin, to in PAIRS
    for met in ((False, True) if origin in (R, SU) else (False,))
]


@pytest.mark.parametrize(
    ("origin", "to", "met"),
    API_CASES,
    ids=[f"{o.value}->{t.value}-{'met' if m else 'unmet'}" for o, t, m in API_CASES],
)
async def test_every_transition_through_the_api(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    origin: Phase,
    to: Phase,
    met: bool,
) -> None:
    place = await make_place(client)
    candidate = await place.candidate()
    await place.put_in(candidate, origin)
    if met and origin is R:
        await place.meet_support_guard(candidate)
    if met and origin is SU:
        await place.meet_securing_guard(candidate)
    history_before = await place.history(candidate)
    events_before = await phase_events(sessionmaker, candidate)

    response = await place.move(candidate, body_for((origin, to)))

    rule = TABLE.get((origin, to))
    if rule is None or rule.placement_only:
        assert is_problem(response, 409), response.text
        problem = response.json()
        assert problem["type"] == PROBLEM + "transition-not-allowed"
        assert problem["current"] == origin.value
        assert set(problem["allowed"]) == {p.value for p in expected_allowed(origin, met)}
    elif rule.guard and not met:
        assert is_problem(response, 409), response.text
        problem = response.json()
        assert problem["type"] == PROBLEM + "transition-refused"
        assert [u["code"] for u in problem["unmet"]] == list(rule.guard)
        assert all(u["requirement"] for u in problem["unmet"])
        assert set(problem["allowed"]) == {p.value for p in expected_allowed(origin, met)}
    else:
        assert response.status_code == 200, response.text
        assert response.json()["phase"] == to.value
        assert await place.phase(candidate) is to
        history = await place.history(candidate)
        assert len(history) == len(history_before) + 1
        last = history[-1]
        assert (last["from_phase"], last["to_phase"]) == (origin.value, to.value)
        assert last["reason"] == body_for((origin, to)).get("reason")
        assert last["forced"] is False
        assert await phase_events(sessionmaker, candidate) == events_before + 1
        return
    # A refused move changes nothing.
    assert await place.phase(candidate) is origin
    assert await place.history(candidate) == history_before
    assert await phase_events(sessionmaker, candidate) == events_before


# Moves that follow a placement are refused (409) before any reason is looked at.
REASONED = [pair for pair, rule in TABLE.items() if rule.reasons and not rule.placement_only]


@pytest.mark.parametrize("pair", REASONED, ids=[pair_id(p) for p in REASONED])
async def test_exits_steps_back_and_re_entry_need_a_fitting_reason(
    client: httpx.AsyncClient, pair: tuple[Phase, Phase]
) -> None:
    place = await make_place(client)
    candidate = await place.candidate()
    origin, to = pair
    await place.put_in(candidate, origin)
    before = await place.history(candidate)
    reasons = TABLE[pair].reasons

    for body in (
        {"to": to.value},
        {"to": to.value, "reason": WRONG_REASON[reasons]},
        {"to": to.value, "reason": "job_started"},  # the service's own reason
        # forcing does not stand in for a reason
        {"to": to.value, "force": True, "note": "no reason given, forced anyway"},
    ):
        refused = await place.move(candidate, body)
        assert is_problem(refused, 422), (body, refused.text)
        assert ["body", "reason"] in [e["loc"] for e in refused.json()["errors"]]
        assert await place.phase(candidate) is origin
        assert await place.history(candidate) == before

    # Every reason of the set is taken, and recorded.
    for reason in sorted(reasons):
        fresh = await place.candidate()
        await place.put_in(fresh, origin)
        moved = await place.move(fresh, {"to": to.value, "reason": reason})
        assert moved.status_code == 200, (reason, moved.text)
        assert (await place.history(fresh))[-1]["reason"] == reason


@pytest.mark.parametrize("forced", [False, True], ids=["plain", "forced"])
async def test_clients_cannot_give_the_services_own_reason(
    client: httpx.AsyncClient, forced: bool
) -> None:
    """`job_started` is written by the service when a job starts; a forward move that
    takes no reason must not carry it into the history either."""
    place = await make_place(client)
    candidate = await place.candidate()
    await place.meet_support_guard(candidate)
    body: dict[str, Any] = {"to": "support", "reason": "job_started"}
    if forced:
        body |= {"force": True, "note": "forced, with the service's reason"}
    refused = await place.move(candidate, body)
    assert is_problem(refused, 422), refused.text
    assert ["body", "reason"] in [e["loc"] for e in refused.json()["errors"]]
    assert await place.phase(candidate) is R
    assert await place.history(candidate) == []


async def test_only_an_admin_may_force(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    place = await make_place(client)
    candidate = await place.candidate()
    async with await client_as(app, sessionmaker, Role.INSERTION, place.insertion_id) as staff:
        forced = await staff.post(
            f"/v1/candidates/{candidate}/transitions",
            json={"to": "support", "force": True, "note": "I am sure it is fine"},
        )
        assert is_problem(forced, 403), forced.text
        assert await place.phase(candidate) is R
        assert await place.history(candidate) == []
        # The same staff may move their candidate when the guard is met.
        await place.meet_support_guard(candidate)
        moved = await staff.post(f"/v1/candidates/{candidate}/transitions", json={"to": "support"})
        assert moved.status_code == 200, moved.text
    history = await place.history(candidate)
    assert [(h["from_phase"], h["to_phase"], h["forced"]) for h in history] == [
        ("recruitment", "support", False)
    ]
    assert history[0]["actor_role"] == "insertion"


@pytest.mark.parametrize(
    "note", [None, "", "too short"], ids=["no-note", "empty-note", "nine-characters"]
)
async def test_a_forced_move_needs_a_written_justification(
    client: httpx.AsyncClient, note: str | None
) -> None:
    place = await make_place(client)
    candidate = await place.candidate()
    body: dict[str, Any] = {"to": "support", "force": True}
    if note is not None:
        body["note"] = note
    refused = await place.move(candidate, body)
    assert is_problem(refused, 422), refused.text
    [error] = [e for e in refused.json()["errors"] if e["loc"] == ["body", "note"]]
    # The caller learns what a justification takes, not only that theirs was refused
    # (an empty note is refused as empty, as for any note).
    assert ("at least 10 characters" if note else "at least") in error["message"], error
    assert await place.phase(candidate) is R
    assert await place.history(candidate) == []


async def test_a_forced_move_is_recorded_as_forced(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate()
    note = "Validated by the regional committee on 3 March."
    before = datetime.now(UTC)
    moved = await place.move(candidate, {"to": "support", "force": True, "note": note})
    assert moved.status_code == 200, moved.text
    assert moved.json()["phase"] == "support"
    # An ordinary move afterwards is not forced.
    exited = await place.move(candidate, {"to": "exited", "reason": "other_job", "note": "CDI"})
    assert exited.status_code == 200, exited.text

    history = await place.history(candidate)
    assert len(history) == 2
    forced, plain = history
    assert forced["candidate_id"] == candidate
    assert (forced["from_phase"], forced["to_phase"]) == ("recruitment", "support")
    assert forced["forced"] is True
    assert forced["note"] == note
    assert forced["reason"] is None
    assert forced["actor_id"] == subject_of(client)
    assert forced["actor_role"] == "admin"
    assert forced["actor_kind"] == "client"
    at = datetime.fromisoformat(forced["at"])
    assert before - timedelta(seconds=5) <= at <= datetime.now(UTC) + timedelta(seconds=5)
    assert (plain["from_phase"], plain["to_phase"], plain["forced"]) == (
        "support",
        "exited",
        False,
    )
    assert plain["reason"] == "other_job"
    assert datetime.fromisoformat(plain["at"]) >= at


async def test_phase_is_never_written_by_patch(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate()
    for body in ({"phase": "support"}, {"phase": "employed", "max_commute_km": 12}):
        refused = await client.patch(f"/v1/candidates/{candidate}", json=body)
        assert is_problem(refused, 422), refused.text
        assert ["body", "phase"] in [e["loc"] for e in refused.json()["errors"]]
    got = await client.get(f"/v1/candidates/{candidate}")
    assert got.json()["phase"] == "recruitment"
    assert got.json()["max_commute_km"] == 30  # nothing of the refused PATCH landed
    assert await place.history(candidate) == []


async def test_securing_to_employed_is_refused_even_forced(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate()
    await place.put_in(candidate, SE)
    before = await place.history(candidate)
    for body in (
        {"to": "employed"},
        {"to": "employed", "force": True, "note": "hired, the contract is signed"},
    ):
        refused = await place.move(candidate, body)
        assert is_problem(refused, 409), refused.text
        assert refused.json()["type"] == PROBLEM + "transition-not-allowed"
        assert "employed" not in refused.json()["allowed"]
    assert await place.phase(candidate) is SE
    assert await place.history(candidate) == before


async def test_if_match_on_transitions(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate()
    read = await client.get(f"/v1/candidates/{candidate}")
    stale = read.headers["ETag"]
    changed = await client.patch(f"/v1/candidates/{candidate}", json={"max_commute_km": 12})
    assert changed.status_code == 200
    fresh = changed.headers["ETag"]
    assert fresh != stale

    body = {"to": "exited", "reason": "moved_away"}
    refused = await client.post(
        f"/v1/candidates/{candidate}/transitions", json=body, headers={"If-Match": stale}
    )
    assert is_problem(refused, 412), refused.text
    assert await place.phase(candidate) is R
    assert await place.history(candidate) == []

    moved = await client.post(
        f"/v1/candidates/{candidate}/transitions", json=body, headers={"If-Match": fresh}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["phase"] == "exited"
    new_tag = moved.headers["ETag"]
    assert new_tag not in (stale, fresh)
    assert new_tag == f'"{moved.json()["version"]}"'
    assert (await client.get(f"/v1/candidates/{candidate}")).headers["ETag"] == new_tag
    # The tag that was fresh a moment ago is stale now.
    again = await client.post(
        f"/v1/candidates/{candidate}/transitions",
        json={"to": "recruitment", "reason": "re_entry"},
        headers={"If-Match": fresh},
    )
    assert is_problem(again, 412), again.text


def _check_pathway(body: dict[str, Any], min_hours: float) -> None:
    assert body["phases"] == [p.value for p in Phase]
    assert body["initial"] == "recruitment"
    assert body["terminal"] == ["employed", "exited"]
    listed = {(Phase(t["from_phase"]), Phase(t["to_phase"])): t for t in body["transitions"]}
    assert len(listed) == len(body["transitions"])  # each transition once
    assert set(listed) == set(TABLE)
    for pair, rule in TABLE.items():
        entry = listed[pair]
        assert [r["code"] for r in entry["requirements"]] == list(rule.guard), pair
        assert all(r["description"] for r in entry["requirements"])
        assert set(entry["reasons"]) == rule.reasons, pair
        assert entry["via_placement_only"] is rule.placement_only, pair
        assert entry["description"]
    assert body["thresholds"] == {
        "min_training_hours": min_hours,
        "min_positive_trials": 1,
        "min_positive_skills_assessments": 1,
        "min_completed_work_missions": 1,
    }
    hours = next(r for r in listed[(SU, SE)]["requirements"] if r["code"] == "training_hours")
    assert f"{min_hours:g}" in hours["description"]
    assert body["activity_phases"]["training"] == "support"
    assert body["activity_phases"]["work_trial"] == "recruitment"
    assert body["activity_phases"]["certification_exam"] == "securing"


async def test_pathway_lists_the_machine_and_the_thresholds_of_the_settings(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    got = await client.get("/v1/pathway")
    assert got.status_code == 200, got.text
    _check_pathway(got.json(), 150)

    place = await make_place(client)
    # 200 hours: enough for the default 150, not for the Rouen programme's 350.
    candidate = await place.candidate()
    await place.put_in(candidate, SU)
    await place.meet_securing_guard(candidate, hours=200)

    rouen = create_app(make_settings(backend.url, pathway_min_training_hours=350))
    async with rouen.router.lifespan_context(rouen), http_client(rouen, token_of(client)) as other:
        got = await other.get("/v1/pathway")
        assert got.status_code == 200, got.text
        _check_pathway(got.json(), 350)

        refused = await other.post(
            f"/v1/candidates/{candidate}/transitions", json={"to": "securing"}
        )
        assert is_problem(refused, 409), refused.text
        unmet = refused.json()["unmet"]
        assert [u["code"] for u in unmet] == ["training_hours"]
        assert unmet[0]["have"] == 200
        assert "350" in unmet[0]["requirement"]
        assert "securing" not in refused.json()["allowed"]

        # 150 more hours reach 350 on the Rouen settings.
        await place.activity(
            candidate,
            {
                "type": "training",
                "occurred_on": "2026-04-01",
                "hours": 150,
                "training_mode": "internal",
            },
        )
        moved = await other.post(f"/v1/candidates/{candidate}/transitions", json={"to": "securing"})
        assert moved.status_code == 200, moved.text

    # The default app accepts at 200 hours what the Rouen settings refused.
    second = await place.candidate()
    await place.put_in(second, SU)
    await place.meet_securing_guard(second, hours=200)
    moved = await place.move(second, {"to": "securing"})
    assert moved.status_code == 200, moved.text


async def test_a_prescriber_reads_the_history_without_notes_or_authors(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    place = await make_place(client)
    partner = await create_structure(client, "partner")
    candidate = await place.candidate(referrer_id=partner["id"])
    note = "Discussed with the person's social worker."
    moved = await place.move(candidate, {"to": "support", "force": True, "note": note})
    assert moved.status_code == 200
    exited = await place.move(candidate, {"to": "exited", "reason": "other_training", "note": note})
    assert exited.status_code == 200

    full = await place.history(candidate)
    assert [h["note"] for h in full] == [note, note]
    assert all(h["actor_id"] == subject_of(client) for h in full)

    async with await client_as(app, sessionmaker, Role.PRESCRIBER, partner["id"]) as prescriber:
        got = await prescriber.get(f"/v1/candidates/{candidate}/history")
        assert got.status_code == 200, got.text
        items = got.json()["items"]
        assert [(h["from_phase"], h["to_phase"]) for h in items] == [
            (None, "recruitment"),
            ("recruitment", "support"),
            ("support", "exited"),
        ]
        assert [h["forced"] for h in items] == [False, True, False]
        assert [h["reason"] for h in items] == [None, None, "other_training"]
        assert all(h["note"] is None and h["actor_id"] is None for h in items)
        assert all(h["at"] for h in items)
        # The prescriber reads the outcome; it does not move the path.
        refused = await prescriber.post(
            f"/v1/candidates/{candidate}/transitions",
            json={"to": "recruitment", "reason": "re_entry"},
        )
        assert is_problem(refused, 403), refused.text
