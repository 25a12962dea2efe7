"""Activities on a candidate's path: typed per phase, validated per type (DOMAIN.md).

Each type with a passing payload and bad values; the phase rule; what assessments
and exams change on the candidate; corrections; references; filters; the audit journal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.competencies import COMPETENCY_CODES
from app.models import Activity
from tests.access_helpers import is_problem, subject_of
from tests.factories import candidate_payload, create, create_structure, job_payload

PROBLEM = "urn:tremplin:problem:"

# The phase each type belongs to, as DOMAIN.md lists them.
TYPE_PHASE = {
    "work_trial": "recruitment",
    "test_mission": "recruitment",
    "replacement": "recruitment",
    "project_evaluation": "recruitment",
    "training": "support",
    "work_mission": "support",
    "tutoring": "support",
    "work_study_contract": "support",
    "skills_assessment": "support",
    "interview_simulation": "support",
    "certification_exam": "securing",
    "hiring_support": "securing",
    "onboarding_support": "securing",
}
LANDLORD = "LANDLORD"  # replaced by the landlord's id


def passing(activity_type: str, landlord_id: str) -> dict[str, Any]:
    """A valid payload of each type, with the fields that type has."""
    own: dict[str, dict[str, Any]] = {
        "work_trial": {"end_on": "2026-06-12", "outcome": "positive"},
        "test_mission": {"end_on": "2026-06-05", "landlord_id": LANDLORD, "outcome": "positive"},
        "replacement": {"landlord_id": LANDLORD, "outcome": "negative"},
        "project_evaluation": {"outcome": "positive"},
        "training": {
            "end_on": "2026-06-05",
            "hours": 35,
            "training_mode": "external",
            "certifying": True,
            "rncp_code": "RNCP40892",
            "outcome": "positive",
        },
        "work_mission": {"landlord_id": LANDLORD, "hours": 70.5, "outcome": "positive"},
        "tutoring": {"hours": 4},
        "work_study_contract": {
            "end_on": "2027-06-01",
            "landlord_id": LANDLORD,
            "rncp_code": "RNCP40892",
        },
        "skills_assessment": {
            "competency_levels": {"cleaning_hygiene": 3, "tenant_welcome": 2},
            "outcome": "positive",
        },
        "interview_simulation": {"outcome": "pending"},
        "certification_exam": {"rncp_code": "RNCP40892", "outcome": "positive"},
        "hiring_support": {"landlord_id": LANDLORD},
        "onboarding_support": {"landlord_id": LANDLORD, "hours": 7},
    }
    payload = {"type": activity_type, "occurred_on": "2026-06-01", "notes": "Went well."}
    payload.update(own[activity_type])
    return {k: (landlord_id if v == LANDLORD else v) for k, v in payload.items()}


@dataclass
class Place:
    admin: httpx.AsyncClient
    insertion_id: str
    landlord_id: str

    async def candidate(self, phase: str = "recruitment", **overrides: Any) -> str:
        body = await create(
            self.admin, "/v1/candidates", candidate_payload(self.insertion_id, **overrides)
        )
        candidate = str(body["id"])
        await self.put_in(candidate, phase)
        return candidate

    async def move(self, candidate_id: str, body: dict[str, Any]) -> httpx.Response:
        return await self.admin.post(f"/v1/candidates/{candidate_id}/transitions", json=body)

    async def put_in(self, candidate_id: str, phase: str) -> None:
        if phase == "exited":
            moved = await self.move(candidate_id, {"to": "exited", "reason": "dropped_out"})
            assert moved.status_code == 200, moved.text
            return
        order = ["recruitment", "support", "securing", "employed"]
        current = (await self.candidate_body(candidate_id))["phase"]
        for step in order[order.index(current) + 1 : min(order.index(phase), 2) + 1]:
            moved = await self.move(
                candidate_id, {"to": step, "force": True, "note": "set up by the test suite"}
            )
            assert moved.status_code == 200, moved.text
        if phase == "employed":
            vacancy = await create(self.admin, "/v1/vacancies", job_payload(self.landlord_id))
            placement = await create(
                self.admin,
                "/v1/placements",
                {"candidate_id": candidate_id, "vacancy_id": vacancy["id"]},
            )
            for step_body in ({"to": "accepted"}, {"to": "started"}):
                moved = await self.admin.post(
                    f"/v1/placements/{placement['id']}/transitions", json=step_body
                )
                assert moved.status_code == 200, moved.text
        got = await self.admin.get(f"/v1/candidates/{candidate_id}")
        assert got.json()["phase"] == phase

    def path(self, candidate_id: str) -> str:
        return f"/v1/candidates/{candidate_id}/activities"

    async def post(self, candidate_id: str, payload: dict[str, Any]) -> httpx.Response:
        return await self.admin.post(self.path(candidate_id), json=payload)

    async def record(self, candidate_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await create(self.admin, self.path(candidate_id), payload)

    async def candidate_body(self, candidate_id: str) -> dict[str, Any]:
        got = await self.admin.get(f"/v1/candidates/{candidate_id}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body


async def make_place(admin: httpx.AsyncClient) -> Place:
    insertion = await create_structure(admin, "insertion")
    landlord = await create_structure(admin, "landlord")
    return Place(admin, insertion["id"], landlord["id"])


async def stored_activities(
    sessionmaker: async_sessionmaker[AsyncSession], candidate_id: str
) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Activity)
            .where(Activity.candidate_id == uuid.UUID(candidate_id))
        )
    return int(count or 0)


def error_locs(response: httpx.Response) -> list[list[str]]:
    return [[str(p) for p in e["loc"]] for e in response.json()["errors"]]


@pytest.mark.parametrize("activity_type", list(TYPE_PHASE))
async def test_each_type_with_a_passing_payload(
    client: httpx.AsyncClient, activity_type: str
) -> None:
    place = await make_place(client)
    candidate = await place.candidate(TYPE_PHASE[activity_type])
    payload = passing(activity_type, place.landlord_id)
    created = await place.post(candidate, payload)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["type"] == activity_type
    assert body["phase"] == TYPE_PHASE[activity_type]
    assert body["candidate_id"] == candidate
    assert body["recorded_by"] == subject_of(client)
    for name, value in payload.items():
        assert body[name] == value, name
    assert created.headers["Location"] == f"{place.path(candidate)}/{body['id']}"
    got = await client.get(created.headers["Location"])
    assert got.status_code == 200
    assert got.json() == body


def _without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != name}


# (type, change to the passing payload, the field the 422 names)
BAD = [
    ("work_mission", lambda p: _without(p, "landlord_id"), "landlord_id"),
    ("test_mission", lambda p: _without(p, "landlord_id"), "landlord_id"),
    ("replacement", lambda p: {**p, "landlord_id": "not-a-uuid"}, "landlord_id"),
    ("training", lambda p: {**p, "hours": 0}, "hours"),
    ("training", lambda p: {**p, "hours": -3}, "hours"),
    ("training", lambda p: {**p, "hours": 2001}, "hours"),
    ("training", lambda p: _without(p, "hours"), "hours"),
    ("training", lambda p: {**p, "training_mode": "online"}, "training_mode"),
    ("training", lambda p: {**p, "competency_levels": {"mediation": 2}}, "competency_levels"),
    ("training", lambda p: {**p, "end_on": "2026-05-31"}, "end_on"),
    ("work_trial", lambda p: {**p, "hours": 12}, "hours"),
    ("work_trial", lambda p: {**p, "end_on": "2026-05-01"}, "end_on"),
    ("work_trial", lambda p: _without(p, "outcome"), "outcome"),
    ("project_evaluation", lambda p: {**p, "outcome": "great"}, "outcome"),
    ("project_evaluation", lambda p: {**p, "landlord_id": str(uuid.uuid4())}, "landlord_id"),
    ("tutoring", lambda p: {**p, "hours": 0}, "hours"),
    ("tutoring", lambda p: {**p, "rncp_code": "RNCP40892"}, "rncp_code"),
    ("work_study_contract", lambda p: {**p, "rncp_code": "rncp40892"}, "rncp_code"),
    ("work_study_contract", lambda p: {**p, "end_on": "2026-01-01"}, "end_on"),
    (
        "skills_assessment",
        lambda p: {**p, "competency_levels": {"cleaning_hygiene": 4}},
        "cleaning_hygiene",
    ),
    ("skills_assessment", lambda p: {**p, "competency_levels": {"mediation": -1}}, "mediation"),
    ("skills_assessment", lambda p: {**p, "competency_levels": {"plumbing": 2}}, "plumbing"),
    ("skills_assessment", lambda p: _without(p, "competency_levels"), "competency_levels"),
    ("skills_assessment", lambda p: {**p, "hours": 3}, "hours"),
    ("interview_simulation", lambda p: _without(p, "occurred_on"), "occurred_on"),
    ("interview_simulation", lambda p: {**p, "occurred_on": "2026-02-30"}, "occurred_on"),
    ("certification_exam", lambda p: {**p, "rncp_code": "RNCP12"}, "rncp_code"),
    ("certification_exam", lambda p: {**p, "rncp_code": "40892"}, "rncp_code"),
    ("certification_exam", lambda p: _without(p, "rncp_code"), "rncp_code"),
    ("certification_exam", lambda p: {**p, "training_mode": "internal"}, "training_mode"),
    ("hiring_support", lambda p: {**p, "outcome": "positive"}, "outcome"),
    ("onboarding_support", lambda p: {**p, "hours": 0}, "hours"),
    ("onboarding_support", lambda p: {**p, "notes": "x" * 2001}, "notes"),
    ("work_trial", lambda p: {**p, "type": "coffee_break"}, "type"),
]


@pytest.mark.parametrize(
    ("activity_type", "change", "field"),
    BAD,
    ids=[f"{t}-{f}-{i}" for i, (t, _, f) in enumerate(BAD)],
)
async def test_bad_values_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    activity_type: str,
    change: Any,
    field: str,
) -> None:
    place = await make_place(client)
    candidate = await place.candidate(TYPE_PHASE[activity_type])
    before = await place.candidate_body(candidate)
    refused = await place.post(candidate, change(passing(activity_type, place.landlord_id)))
    assert is_problem(refused, 422), refused.text
    locs = error_locs(refused)
    assert any(loc[0] == "body" and loc[-1] == field for loc in locs), locs
    assert await stored_activities(sessionmaker, candidate) == 0
    assert await place.candidate_body(candidate) == before


# (candidate's phase, an activity of a later phase)
NOT_REACHED = [
    ("recruitment", "training"),
    ("recruitment", "skills_assessment"),
    ("recruitment", "certification_exam"),
    ("support", "certification_exam"),
    ("support", "hiring_support"),
]


@pytest.mark.parametrize(("phase", "activity_type"), NOT_REACHED)
async def test_an_activity_of_a_phase_not_reached_is_refused(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    phase: str,
    activity_type: str,
) -> None:
    place = await make_place(client)
    candidate = await place.candidate(phase)
    before = await place.candidate_body(candidate)
    refused = await place.post(candidate, passing(activity_type, place.landlord_id))
    assert is_problem(refused, 409), refused.text
    assert refused.json()["type"] == PROBLEM + "phase-not-reached"
    assert refused.json()["current"] == phase
    assert refused.json()["activity_phase"] == TYPE_PHASE[activity_type]
    assert await stored_activities(sessionmaker, candidate) == 0
    assert await place.candidate_body(candidate) == before
    # Once the candidate is in that phase, the same payload is taken.
    await place.put_in(candidate, TYPE_PHASE[activity_type])
    created = await place.post(candidate, passing(activity_type, place.landlord_id))
    assert created.status_code == 201, created.text


async def test_nothing_is_recorded_for_an_exited_candidate(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    place = await make_place(client)
    candidate = await place.candidate("exited")
    for activity_type in TYPE_PHASE:
        refused = await place.post(candidate, passing(activity_type, place.landlord_id))
        assert is_problem(refused, 409), (activity_type, refused.text)
        assert refused.json()["type"] == PROBLEM + "phase-not-reached"
    assert await stored_activities(sessionmaker, candidate) == 0


async def test_activities_of_earlier_phases_are_taken(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    securing = await place.candidate("securing")
    for activity_type in ("work_trial", "training", "certification_exam"):
        created = await place.post(securing, passing(activity_type, place.landlord_id))
        assert created.status_code == 201, created.text
        # The activity keeps the phase of its type, not the candidate's.
        assert created.json()["phase"] == TYPE_PHASE[activity_type]
    employed = await place.candidate("employed")
    created = await place.post(employed, passing("onboarding_support", place.landlord_id))
    assert created.status_code == 201, created.text


async def test_a_skills_assessment_updates_only_the_assessed_competencies(
    client: httpx.AsyncClient,
) -> None:
    place = await make_place(client)
    candidate = await place.candidate(
        "support", competencies={"cleaning_hygiene": 1, "mediation": 2, "safety_rounds": 1}
    )
    created = await place.record(
        candidate,
        {
            "type": "skills_assessment",
            "occurred_on": "2026-05-04",
            "competency_levels": {
                "cleaning_hygiene": 3,
                "tenant_welcome": 2,
                "safety_rounds": None,
            },
            "outcome": "positive",
        },
    )
    # Null means not assessed: it is not stored as a level.
    assert created["competency_levels"] == {"cleaning_hygiene": 3, "tenant_welcome": 2}
    levels = (await place.candidate_body(candidate))["competencies"]
    expected = dict.fromkeys(COMPETENCY_CODES, 0)
    expected.update(cleaning_hygiene=3, tenant_welcome=2, mediation=2, safety_rounds=1)
    assert levels == expected

    # A later assessment may lower a level; the others stay.
    await place.record(
        candidate,
        {
            "type": "skills_assessment",
            "occurred_on": "2026-06-04",
            "competency_levels": {"mediation": 0},
            "outcome": "negative",
        },
    )
    expected["mediation"] = 0
    assert (await place.candidate_body(candidate))["competencies"] == expected


def certification(body: dict[str, Any], code: str) -> dict[str, Any] | None:
    return next((c for c in body["certifications"] if c["rncp_code"] == code), None)


async def test_a_certification_exam_sets_the_certification(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate(
        "securing",
        certifications=[{"rncp_code": "RNCP40262", "status": "held", "date": "2024-01-15"}],
    )

    async def exam(code: str, on: str, outcome: str) -> dict[str, Any]:
        await place.record(
            candidate,
            {
                "type": "certification_exam",
                "occurred_on": on,
                "rncp_code": code,
                "outcome": outcome,
            },
        )
        return await place.candidate_body(candidate)

    failed = await exam("RNCP40892", "2026-03-02", "negative")
    assert certification(failed, "RNCP40892") == {
        "rncp_code": "RNCP40892",
        "status": "in_progress",
        "date": None,
    }
    failed_again = await exam("RNCP40892", "2026-04-02", "negative")
    assert certification(failed_again, "RNCP40892")["status"] == "in_progress"  # type: ignore[index]
    assert len(failed_again["certifications"]) == 2  # one entry per code

    passed = await exam("RNCP40892", "2026-06-20", "positive")
    assert certification(passed, "RNCP40892") == {
        "rncp_code": "RNCP40892",
        "status": "held",
        "date": "2026-06-20",
    }
    # A later failure never downgrades a certification held.
    after = await exam("RNCP40892", "2026-09-01", "negative")
    assert certification(after, "RNCP40892") == certification(passed, "RNCP40892")
    other = await exam("RNCP40262", "2026-09-02", "pending")
    assert certification(other, "RNCP40262") == {
        "rncp_code": "RNCP40262",
        "status": "held",
        "date": "2024-01-15",
    }
    # A pending result on a new code: in progress.
    pending = await exam("RNCP36455", "2026-09-03", "pending")
    assert certification(pending, "RNCP36455")["status"] == "in_progress"  # type: ignore[index]
    assert len(pending["certifications"]) == 3


async def test_patch_refuses_the_fields_of_another_type(
    client: httpx.AsyncClient,
) -> None:
    place = await make_place(client)
    candidate = await place.candidate("support")
    created = await place.record(candidate, passing("training", place.landlord_id))
    url = f"{place.path(candidate)}/{created['id']}"
    for body, field in (
        ({"landlord_id": place.landlord_id}, "landlord_id"),
        ({"competency_levels": {"mediation": 2}}, "competency_levels"),
        ({"hours": 10, "landlord_id": place.landlord_id}, "landlord_id"),
        ({"type": "tutoring"}, "type"),
        ({"hours": 0}, "hours"),
        ({"occurred_on": None}, "occurred_on"),
        ({"training_mode": None}, "training_mode"),  # required for a training
        ({"hours": None}, "hours"),
    ):
        refused = await client.patch(url, json=body)
        assert is_problem(refused, 422), (body, refused.text)
        assert any(loc[-1] == field for loc in error_locs(refused)), (body, refused.text)
    got = await client.get(url)
    assert got.json() == created  # nothing changed, not even the version

    fixed = await client.patch(url, json={"hours": 36, "notes": "One more hour."})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["hours"] == 36
    assert fixed.json()["version"] == created["version"] + 1
    assert fixed.headers["ETag"] == f'"{created["version"] + 1}"'


async def test_patch_with_end_before_start_names_end_on(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate("support")
    created = await place.record(candidate, passing("training", place.landlord_id))
    url = f"{place.path(candidate)}/{created['id']}"
    for body in ({"end_on": "2026-05-01"}, {"occurred_on": "2026-06-06"}):  # ends 2026-06-05
        refused = await client.patch(url, json=body)
        assert is_problem(refused, 422), (body, refused.text)
        assert ["body", "end_on"] in error_locs(refused), (body, refused.text)
    assert (await client.get(url)).json() == created


async def test_correcting_hours_changes_the_training_guard(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate("support")
    training = await place.record(
        candidate,
        {
            "type": "training",
            "occurred_on": "2026-02-02",
            "hours": 149.5,
            "training_mode": "external",
        },
    )
    await place.record(candidate, passing("skills_assessment", place.landlord_id))
    await place.record(candidate, passing("work_mission", place.landlord_id))

    refused = await place.move(candidate, {"to": "securing"})
    assert is_problem(refused, 409), refused.text
    unmet = refused.json()["unmet"]
    assert [u["code"] for u in unmet] == ["training_hours"]
    assert unmet[0]["have"] == 149.5

    url = f"{place.path(candidate)}/{training['id']}"
    fixed = await client.patch(url, json={"hours": 150}, headers={"If-Match": '"1"'})
    assert fixed.status_code == 200, fixed.text
    moved = await place.move(candidate, {"to": "securing"})
    assert moved.status_code == 200, moved.text

    # And the other way: lowering the hours of a support candidate's training closes it.
    other = await place.candidate("support")
    big = await place.record(
        other,
        {
            "type": "training",
            "occurred_on": "2026-02-02",
            "hours": 150,
            "training_mode": "internal",
        },
    )
    await place.record(other, passing("skills_assessment", place.landlord_id))
    await place.record(other, passing("work_mission", place.landlord_id))
    lowered = await client.patch(f"{place.path(other)}/{big['id']}", json={"hours": 100})
    assert lowered.status_code == 200, lowered.text
    refused = await place.move(other, {"to": "securing"})
    assert is_problem(refused, 409), refused.text
    assert refused.json()["unmet"][0]["have"] == 100


async def test_stale_if_match_on_an_activity(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate("support")
    created = await place.record(candidate, passing("tutoring", place.landlord_id))
    url = f"{place.path(candidate)}/{created['id']}"
    first = await client.patch(url, json={"hours": 5}, headers={"If-Match": '"1"'})
    assert first.status_code == 200
    stale = await client.patch(url, json={"hours": 6}, headers={"If-Match": '"1"'})
    assert is_problem(stale, 412), stale.text
    assert (await client.get(url)).json()["hours"] == 5


async def test_landlord_id_must_reference_a_landlord(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    place = await make_place(client)
    partner = await create_structure(client, "partner")
    candidate = await place.candidate("support")
    for wrong in (place.insertion_id, partner["id"]):
        payload = {**passing("work_mission", place.landlord_id), "landlord_id": wrong}
        refused = await place.post(candidate, payload)
        assert is_problem(refused, 409), refused.text
        assert refused.json()["type"] == PROBLEM + "wrong-reference-kind"
        assert refused.json()["field"] == "landlord_id"
    unknown = {**passing("work_mission", place.landlord_id), "landlord_id": str(uuid.uuid4())}
    refused = await place.post(candidate, unknown)
    assert is_problem(refused, 422), refused.text
    assert any(loc[-1] == "landlord_id" for loc in error_locs(refused))
    assert await stored_activities(sessionmaker, candidate) == 0

    created = await place.record(candidate, passing("work_mission", place.landlord_id))
    url = f"{place.path(candidate)}/{created['id']}"
    refused = await client.patch(url, json={"landlord_id": place.insertion_id})
    assert is_problem(refused, 409), refused.text
    assert (await client.get(url)).json()["landlord_id"] == place.landlord_id


async def test_list_filters_by_type(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate("support")
    other = await place.candidate("support")
    ids = {
        "training": [
            (await place.record(candidate, passing("training", place.landlord_id)))["id"]
            for _ in range(2)
        ],
        "tutoring": [(await place.record(candidate, passing("tutoring", place.landlord_id)))["id"]],
    }
    await place.record(other, passing("training", place.landlord_id))

    everything = await client.get(place.path(candidate))
    assert everything.status_code == 200
    assert [a["id"] for a in everything.json()["items"]] == ids["training"] + ids["tutoring"]
    for activity_type, expected in ids.items():
        got = await client.get(place.path(candidate), params={"type": activity_type})
        assert got.status_code == 200
        assert [a["id"] for a in got.json()["items"]] == expected
        assert {a["type"] for a in got.json()["items"]} == {activity_type}
    none = await client.get(place.path(candidate), params={"type": "work_mission"})
    assert none.json()["items"] == []
    bad = await client.get(place.path(candidate), params={"type": "nap"})
    assert is_problem(bad, 422)


async def _journal(admin: httpx.AsyncClient, candidate_id: str) -> list[dict[str, Any]]:
    got = await admin.get("/v1/audit", params={"candidate_id": candidate_id, "limit": 200})
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items


async def test_activity_reads_and_writes_are_audited(client: httpx.AsyncClient) -> None:
    place = await make_place(client)
    candidate = await place.candidate("support")
    me = subject_of(client)

    async def new_rows(call: Any) -> list[tuple[str, str, str]]:
        before = len(await _journal(client, candidate))
        response = await call()
        assert response.status_code in (200, 201), response.text
        rows = (await _journal(client, candidate))[before:]
        return [(r["action"], r["field_class"], r["actor_id"]) for r in rows]

    payload = passing("training", place.landlord_id)
    created: dict[str, Any] = {}

    async def do_create() -> httpx.Response:
        response = await place.post(candidate, payload)
        created.update(response.json())
        return response

    assert await new_rows(do_create) == [("update", "full", me)]
    url = f"{place.path(candidate)}/{created['id']}"
    assert await new_rows(lambda: client.get(url)) == [("read", "full", me)]
    assert await new_rows(lambda: client.get(place.path(candidate))) == [("list", "full", me)]
    assert await new_rows(lambda: client.patch(url, json={"hours": 40})) == [("update", "full", me)]
    journal = await _journal(client, candidate)
    assert all(row["candidate_id"] == candidate for row in journal)
