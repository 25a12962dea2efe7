"""Who sees what, through every route: app.services.visibility, tried as a landlord would.

The reduced view hides most of a person; these tests look for the hidden fields
everywhere a landlord's request can reach (rankings with every parameter, placements,
histories, activities, errors, ETags), both directly (no hidden key or value in any
answer) and by inference (changing a hidden field changes no answer at all).
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import CandidateView, DistanceBand
from app.domain.matching import CRITERIA, Filter
from app.schemas.candidates import Candidate, CandidateReduced, CandidateReferral, shown_fields
from app.services import visibility
from tests.access_helpers import accept_placement, is_problem, propose, subject_of
from tests.conftest import client_as
from tests.factories import candidate_payload, create, create_structure, job_payload

KM_PER_DEGREE = 6371.0088 * math.pi / 180
ELSEWHERE = uuid.UUID("01939a2e-0000-7000-8000-00000000beef")
ROUEN = {"postcode": "76000", "commune_insee": "76540", "latitude": 49.4431, "longitude": 1.0993}
# Every field the full profile has and the reduced one hides.
HIDDEN = set(Candidate.model_fields) - set(CandidateReduced.model_fields)
# Values no answer to a landlord may contain, whatever the route.
MARKERS = {
    "email": "hidden.marker@example.org",
    "phone": "0611223344",
    "birth_date": "1987-03-19",
    "last_name": "Durandal",
    "postcode": "76100",
}


def mission_at(landlord_id: str, lat: float, lon: float, **kw: Any) -> dict[str, Any]:
    return {
        "landlord_id": landlord_id,
        "title": "Mission test de gardien d'immeuble",
        "kind": "mission",
        "contract_type": "mission",
        "mission_type": "test_mission",
        "postcode": "76000",
        "commune_insee": "76540",
        "latitude": lat,
        "longitude": lon,
        "start_date": "2027-01-04",
        "status": "open",
        **kw,
    }


async def force(admin: httpx.AsyncClient, candidate_id: str, *phases: str, **body: Any) -> None:
    for phase in phases:
        moved = await admin.post(
            f"/v1/candidates/{candidate_id}/transitions",
            json={"to": phase, "force": True, "note": "Committee decision for the test.", **body},
        )
        assert moved.status_code == 200, moved.text


async def move(admin: httpx.AsyncClient, placement_id: str, **body: Any) -> None:
    moved = await admin.post(f"/v1/placements/{placement_id}/transitions", json=body)
    assert moved.status_code == 200, moved.text


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def candidate_objects(value: Any) -> list[dict[str, Any]]:
    """Every representation of a person in an answer."""
    if isinstance(value, dict):
        found = [value] if "view" in value else []
        return found + [c for v in value.values() for c in candidate_objects(v)]
    if isinstance(value, list):
        return [c for v in value for c in candidate_objects(v)]
    return []


# --- the rules as data -------------------------------------------------------------------


def test_every_criterion_and_filter_names_the_fields_behind_it() -> None:
    """A new criterion or hard filter must say what it is computed from, or no one would
    know whether a landlord may be told it."""
    assert set(visibility.CRITERION_SOURCES) == set(CRITERIA)
    assert set(visibility.FILTER_SOURCES) == set(Filter.NAMES)
    full = shown_fields(CandidateView.FULL) | {"created_at"}
    for fields in [*visibility.CRITERION_SOURCES.values(), *visibility.FILTER_SOURCES.values()]:
        assert fields <= full, fields - full


def test_what_each_view_is_told_of_a_ranking() -> None:
    reduced = visibility.disclosure(CandidateView.REDUCED)
    assert reduced.criteria == {"competencies", "certification", "landlord_history"}
    assert not reduced.exact_distance
    assert reduced.filters == Filter.PHASE | Filter.CERTIFICATION
    full = visibility.disclosure(CandidateView.FULL)
    assert full.criteria == set(CRITERIA)
    assert full.exact_distance
    assert full.filters == sum(Filter.NAMES)
    referral = visibility.disclosure(CandidateView.REFERRAL)
    # When the person was referred is the prescriber's to know: hence "waiting".
    assert referral.criteria == {"landlord_history", "waiting"}
    assert not referral.exact_distance


@pytest.mark.parametrize(
    ("km", "band"),
    [
        (0.0, DistanceBand.UNDER_5_KM),
        (4.99, DistanceBand.UNDER_5_KM),
        (5.0, DistanceBand.FROM_5_TO_15_KM),
        (14.99, DistanceBand.FROM_5_TO_15_KM),
        (15.0, DistanceBand.FROM_15_TO_30_KM),
        (29.99, DistanceBand.FROM_15_TO_30_KM),
        (30.0, DistanceBand.OVER_30_KM),
        (800.0, DistanceBand.OVER_30_KM),
    ],
)
def test_distance_bands(km: float, band: DistanceBand) -> None:
    assert visibility.distance_band(km) == band


def test_a_location_is_told_as_its_grid_cell() -> None:
    cell = visibility.coarse_location(49.4431, 1.0993)
    assert cell == pytest.approx((49.425, 1.075))
    # Anywhere in the cell gives the same point; the next cell another.
    assert visibility.coarse_location(49.4001, 1.0501) == pytest.approx(cell)
    assert visibility.coarse_location(49.4499, 1.0999) == pytest.approx(cell)
    assert visibility.coarse_location(49.4501, 1.0993) != pytest.approx(cell)
    assert visibility.coarse_location(-0.01, -0.01) == pytest.approx((-0.025, -0.025))


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0, "0-40"),
        (39.99, "0-40"),
        (40, "40-60"),
        (79.99, "60-80"),
        (80, "80-100"),
        (100, "80-100"),
    ],
)
def test_score_bands(score: float, band: str) -> None:
    assert visibility.score_band(score) == band


@pytest.mark.parametrize(("count", "told"), [(0, 0), (1, 0), (4, 0), (5, 5), (9, 5), (12, 10)])
def test_counts_are_rounded_down(count: int, told: int) -> None:
    assert visibility.rounded_count(count) == told


# --- the trilateration attack --------------------------------------------------------------


async def test_a_landlord_cannot_locate_anyone_with_vacancies_of_its_own(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The attack of the review: vacancies posted at chosen points around a person, then
    ranked, used to give the person's distance to 10 m, hence their home to ~5 m."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    home = {"latitude": 49.4431, "longitude": 1.0993}
    stranger = str((await create(client, "/v1/candidates", candidate_payload(siae, **ROUEN)))["id"])
    points = [(49.4431 + d, 1.0993 + e) for d, e in ((0.02, 0), (-0.01, 0.03), (0, -0.04))]

    async def survey(staff: httpx.AsyncClient, vacancies: list[str]) -> list[dict[str, Any]]:
        answers = []
        for vacancy in vacancies:
            got = await staff.get(f"/v1/vacancies/{vacancy}/matches", params={"limit": 200})
            assert got.status_code == 200, got.text
            body = got.json()
            body.pop("vacancy_id")
            answers.append(body)
        return answers

    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        # Drafts are not ranked for landlords at all.
        drafts = [
            (await create(staff, "/v1/vacancies", mission_at(landlord, *p, status="draft")))["id"]
            for p in points
        ]
        for draft in drafts:
            refused = await staff.get(f"/v1/vacancies/{draft}/matches")
            assert is_problem(refused, 409), refused.text
            assert refused.json()["type"] == "urn:tremplin:problem:vacancy-not-published"
            assert stranger not in refused.text
        # Open vacancies at the same points: the person, never proposed, is never named,
        # and the answers do not change when the person moves.
        opened = [
            (await create(staff, "/v1/vacancies", mission_at(landlord, *p)))["id"] for p in points
        ]
        before = await survey(staff, opened)
        for body in before:
            assert body["items"] == []
            assert body["excluded"] == []
            assert body["considered"] is None
            assert body["others"]["eligible"] == 0
            assert stranger not in str(body)
        for far in ({"latitude": 49.9, "longitude": 1.3}, home):
            patched = await client.patch(f"/v1/candidates/{stranger}", json=far)
            assert patched.status_code == 200, patched.text
            assert await survey(staff, opened) == before
        journal = (await client.get("/v1/audit?limit=200")).json()["items"]
        staff_id = subject_of(staff)
        assert stranger not in {e["candidate_id"] for e in journal if e["actor_id"] == staff_id}

    # Admins rank drafts, with exact distances: the rule is about who asks.
    admin_view = await client.get(f"/v1/vacancies/{drafts[0]}/matches")
    assert admin_view.status_code == 200, admin_view.text
    [item] = admin_view.json()["items"]
    assert item["distance_km"] == pytest.approx(0.02 * KM_PER_DEGREE, abs=0.01)


async def test_a_proposed_person_is_located_no_finer_than_a_grid_cell(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Even for a person proposed to it, moving its vacancy about tells a landlord a band
    from the person's grid cell, never a distance: the answers are the same wherever in
    the cell the person lives."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    person = str((await create(client, "/v1/candidates", candidate_payload(siae, **ROUEN)))["id"])
    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        vacancy = (await create(staff, "/v1/vacancies", mission_at(landlord, 49.4431, 1.0993)))[
            "id"
        ]
        await propose(client, person, vacancy)

        async def sweep() -> list[dict[str, Any]]:
            """The vacancy walked north in 500 m steps, ranked at each step."""
            seen = []
            for step in range(0, 80, 4):
                lat = 49.4431 + step * 0.5 / KM_PER_DEGREE
                patched = await staff.patch(f"/v1/vacancies/{vacancy}", json={"latitude": lat})
                assert patched.status_code == 200, patched.text
                got = await staff.get(f"/v1/vacancies/{vacancy}/matches")
                assert got.status_code == 200, got.text
                [item] = got.json()["items"]
                assert item["distance_km"] is None
                assert "km away" not in " ".join(item["explanation"])
                assert set(item["contributions"]) <= {"competencies", "certification",
                                                      "landlord_history"}  # fmt: skip
                seen.append(item)
            return seen

        first = await sweep()
        bands = [item["distance_band"] for item in first]
        assert bands[0] == "under_5_km"
        assert bands[-1] == "over_30_km"
        # Elsewhere in the same cell (49.40-49.45, 1.05-1.10): not a byte changes.
        for spot in ({"latitude": 49.4012, "longitude": 1.0511}, {"latitude": 49.4498}):
            patched = await client.patch(f"/v1/candidates/{person}", json=spot)
            assert patched.status_code == 200, patched.text
            assert await sweep() == first


# --- every hidden field, through every route ---------------------------------------------


async def landlord_answers(
    staff: httpx.AsyncClient, person: str, vacancy: str, placement: str, other: str
) -> dict[str, Any]:
    """Every answer a landlord can get that mentions the person (status, ETag, body)."""
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/v1/candidates/{person}", None),
        ("GET", "/v1/candidates", None),
        ("GET", "/v1/candidates?phase=support", None),
        ("GET", "/v1/candidates?departement=76", None),
        ("GET", "/v1/candidates?updated_since=2020-01-01T00:00:00Z", None),
        ("GET", f"/v1/candidates?structure_id={ELSEWHERE}", None),
        ("GET", f"/v1/candidates/{person}/history", None),
        ("GET", f"/v1/candidates/{person}/activities", None),
        ("GET", f"/v1/candidates/{person}/matches", None),
        ("GET", f"/v1/candidates/{other}", None),
        ("PATCH", f"/v1/candidates/{person}", {"max_commute_km": 5}),
        ("GET", "/v1/placements", None),
        ("GET", f"/v1/placements?candidate_id={person}", None),
        ("GET", f"/v1/placements/{placement}", None),
        ("GET", f"/v1/placements/{placement}/history", None),
        ("POST", f"/v1/placements/{placement}/transitions", {"to": "started"}),
        ("POST", f"/v1/placements/{placement}/follow-ups", {"at": "2026-01-01", "in_post": True}),
        ("POST", "/v1/matching/assignments", {}),
    ]
    for limit in (1, 50, 200):
        for extra in ("", "&include_excluded=false", "&include_excluded=true"):
            calls.append(("GET", f"/v1/vacancies/{vacancy}/matches?limit={limit}{extra}", None))
    answers = {}
    for method, path, body in calls:
        got = await staff.request(method, path, json=body)
        answers[f"{method} {path}"] = (got.status_code, got.headers.get("etag"), got.json())
    return answers


async def test_no_hidden_field_reaches_a_landlord_by_any_route(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    other_siae = (await create_structure(client, "insertion"))["id"]
    partner = (await create_structure(client, "partner"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = str((await create(client, "/v1/vacancies", mission_at(landlord, 49.45, 1.10)))["id"])
    person = str(
        (
            await create(
                client,
                "/v1/candidates",
                candidate_payload(
                    siae,
                    **{**ROUEN, **MARKERS, "latitude": 49.44917, "longitude": 1.08763},
                    first_name="Maëlle",
                    max_commute_km=37,
                    has_driving_licence=True,
                    available_from="2026-09-17",
                    preferred_contract_types=["apprenticeship", "mission"],
                    max_weekly_hours=31.5,
                    referrer_id=partner,
                    competencies={"cleaning_hygiene": 2},
                    certifications=[{"rncp_code": "RNCP40892", "status": "in_progress"}],
                ),
            )
        )["id"]
    )
    await force(client, person, "support")
    other = str((await create(client, "/v1/candidates", candidate_payload(siae)))["id"])
    placement = (await propose(client, person, vacancy))["id"]
    note = await client.post(
        f"/v1/placements/{placement}/transitions",
        json={"to": "interview", "note": "Private note of the federation staff."},
    )
    assert note.status_code == 200, note.text

    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        answers = await landlord_answers(staff, person, vacancy, placement, other)
        for call, (_, etag, body) in answers.items():
            text = str(body)
            for name, marker in MARKERS.items():
                assert marker not in text, (call, name)
            assert "Private note" not in text, call
            for shown in candidate_objects(body):
                assert shown["view"] == "reduced", call
                assert not HIDDEN & set(shown), (call, HIDDEN & set(shown))
            assert "distance_km" not in keys_in(body) or all(
                item["distance_km"] is None for item in body.get("items", [])
            ), call
            for item in body.get("items", []) if isinstance(body, dict) else []:
                assert set(item.get("contributions", {})) <= {
                    "competencies",
                    "certification",
                    "landlord_history",
                }, call
                assert "commute" not in " ".join(item.get("explanation", [])), call
            if etag is not None and "/v1/candidates/" in call:
                assert etag.startswith('"reduced-'), (call, etag)
        # Where a landlord may not go: refused without a word about the person.
        assert answers[f"GET /v1/candidates/{person}/history"][0] == 403
        assert answers[f"GET /v1/candidates/{person}/activities"][0] == 403
        assert answers[f"GET /v1/candidates/{other}"][0] == 404
        assert answers[f"GET /v1/candidates?structure_id={ELSEWHERE}"][0] == 422
        assert (
            answers[f"GET /v1/vacancies/{vacancy}/matches?limit=50&include_excluded=true"][0] == 422
        )
        ranked = answers[f"GET /v1/vacancies/{vacancy}/matches?limit=50"][2]
        assert [item["candidate"]["id"] for item in ranked["items"]] == [person]

        # By inference: change each hidden field in turn; no answer changes at all.
        changes: list[dict[str, Any]] = [
            {"email": "someone.else@example.org"},
            {"phone": "0699887766"},
            {"birth_date": "1988-05-20"},
            {"last_name": "Dubois"},  # the same initial
            {"postcode": "76000"},
            {"latitude": 49.4312, "longitude": 1.0633},  # the same grid cell
            {"max_commute_km": 12},
            {"has_driving_licence": False},
            {"accepts_onsite_housing": True},
            {"available_from": "2027-06-01"},
            {"available_from": None},
            {"preferred_contract_types": ["cdi"]},
            {"max_weekly_hours": 20},
            {"referrer_id": None},
            {"structure_id": other_siae},
        ]
        for change in changes:
            patched = await client.patch(f"/v1/candidates/{person}", json=change)
            assert patched.status_code == 200, (change, patched.text)
            again = await landlord_answers(staff, person, vacancy, placement, other)
            assert again == answers, change
        for activity in (
            {"type": "training", "occurred_on": "2026-03-02", "hours": 75,
             "training_mode": "external"},
            {"type": "skills_assessment", "occurred_on": "2026-03-09", "outcome": "positive",
             "competency_levels": {"cleaning_hygiene": 2}},  # the level it had
        ):  # fmt: skip
            recorded = await client.post(f"/v1/candidates/{person}/activities", json=activity)
            assert recorded.status_code == 201, recorded.text
            assert await landlord_answers(staff, person, vacancy, placement, other) == answers
        # A field the view shows does change the answers (the test can fail).
        patched = await client.patch(
            f"/v1/candidates/{person}", json={"competencies": {"cleaning_hygiene": 3}}
        )
        assert patched.status_code == 200
        assert await landlord_answers(staff, person, vacancy, placement, other) != answers


# --- per-view versions --------------------------------------------------------------------


async def test_a_partial_view_changes_only_with_its_own_fields(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    partner = (await create_structure(client, "partner"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = str((await create(client, "/v1/vacancies", mission_at(landlord, 49.45, 1.1)))["id"])
    person = str(
        (await create(client, "/v1/candidates", candidate_payload(siae, referrer_id=partner)))["id"]
    )
    await propose(client, person, vacancy)

    async with (
        await client_as(app, sessionmaker, "landlord", landlord) as staff,
        await client_as(app, sessionmaker, "prescriber", partner) as prescriber,
    ):

        async def stamps() -> dict[str, tuple[str, str, int]]:
            out = {}
            for name, http in (("reduced", staff), ("referral", prescriber), ("full", client)):
                got = await http.get(f"/v1/candidates/{person}")
                assert got.status_code == 200, got.text
                body = got.json()
                assert body["view"] == name
                out[name] = (got.headers["etag"], body["updated_at"], body["version"])
            return out

        first = await stamps()
        assert first["reduced"][0] == f'"reduced-{first["reduced"][2]}"'
        assert first["referral"][0] == f'"referral-{first["referral"][2]}"'
        assert first["full"][0] == f'"{first["full"][2]}"'

        async def after(change: dict[str, Any]) -> dict[str, tuple[str, str, int]]:
            patched = await client.patch(f"/v1/candidates/{person}", json=change)
            assert patched.status_code == 200, patched.text
            return await stamps()

        # Hidden from both partial views: only the full one moves.
        second = await after({"email": "new.address@example.org", "max_commute_km": 12})
        assert second["reduced"] == first["reduced"]
        assert second["referral"] == first["referral"]
        assert second["full"][2] == first["full"][2] + 1
        # Shown to landlords only.
        third = await after({"competencies": {"tenant_welcome": 2}})
        assert third["reduced"][2] == second["reduced"][2] + 1
        assert third["reduced"][1] > second["reduced"][1]
        assert third["referral"] == second["referral"]
        # Shown to prescribers only; a last name keeping its initial leaves landlords alone.
        fourth = await after({"last_name": "Exemplaire"})
        assert fourth["referral"][2] == third["referral"][2] + 1
        assert fourth["reduced"] == third["reduced"]
        # Another initial: both.
        fifth = await after({"last_name": "Martin"})
        assert fifth["referral"][2] == fourth["referral"][2] + 1
        assert fifth["reduced"][2] == fourth["reduced"][2] + 1
        # Writes through other routes: a transition (the phase, shown to both), then an
        # activity (training hours, hidden from both).
        await force(client, person, "support")
        moved = await stamps()
        assert moved["reduced"][2] == fifth["reduced"][2] + 1
        assert moved["referral"][2] == fifth["referral"][2] + 1
        trained = await client.post(
            f"/v1/candidates/{person}/activities",
            json={"type": "training", "occurred_on": "2026-03-02", "hours": 75,
                  "training_mode": "external"},
        )  # fmt: skip
        assert trained.status_code == 201, trained.text
        assert (await client.get(f"/v1/candidates/{person}")).json()["training_hours"] == 75
        assert (await stamps())["reduced"] == moved["reduced"]

        # A partial view's tag is no precondition for a write: 412.
        stale = await client.patch(
            f"/v1/candidates/{person}",
            json={"max_commute_km": 20},
            headers={"If-Match": moved["reduced"][0]},
        )
        assert is_problem(stale, 412), stale.text
        current = (await client.get(f"/v1/candidates/{person}")).headers["etag"]
        fresh = await client.patch(
            f"/v1/candidates/{person}", json={"max_commute_km": 20}, headers={"If-Match": current}
        )
        assert fresh.status_code == 200, fresh.text

        # Synchronisation by updated_since follows each view's own stamp.
        since = moved["reduced"][1]
        hidden_change = await client.patch(f"/v1/candidates/{person}", json={"phone": None})
        assert hidden_change.status_code == 200
        listed = await staff.get("/v1/candidates", params={"updated_since": since})
        assert [c["id"] for c in listed.json()["items"]] == [person]  # the stamp itself
        later = (await client.get(f"/v1/candidates/{person}")).json()["updated_at"]
        assert (await staff.get("/v1/candidates", params={"updated_since": later})).json()[
            "items"
        ] == []
        assert [
            c["id"]
            for c in (await client.get("/v1/candidates", params={"updated_since": later})).json()[
                "items"
            ]
        ] == [person]


def test_the_view_schemas_keep_their_own_stamps() -> None:
    for schema in (CandidateReduced, CandidateReferral):
        assert {"id", "updated_at", "version", "view"} <= set(schema.model_fields)
    assert "created_at" not in CandidateReduced.model_fields


# --- the landlord's full view --------------------------------------------------------------


async def test_a_landlord_reads_the_full_profile_only_while_a_placement_holds(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    mission = str((await create(client, "/v1/vacancies", mission_at(landlord, 49.45, 1.1)))["id"])
    job = str((await create(client, "/v1/vacancies", job_payload(landlord, **ROUEN)))["id"])
    person = str((await create(client, "/v1/candidates", candidate_payload(siae)))["id"])
    placement = (await propose(client, person, mission))["id"]

    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:

        async def view() -> str:
            got = await staff.get(f"/v1/candidates/{person}")
            assert got.status_code == 200, got.text
            [listed] = (await staff.get("/v1/candidates")).json()["items"]
            assert listed["view"] == got.json()["view"]
            ranked = (await staff.get(f"/v1/vacancies/{mission}/matches")).json()["items"]
            if ranked:
                assert ranked[0]["candidate"]["view"] == got.json()["view"]
            return str(got.json()["view"])

        assert await view() == "reduced"
        await accept_placement(client, placement)
        assert await view() == "full"
        await move(client, placement, to="started")
        assert await view() == "full"
        # The mission is over: the records stay, the live profile goes.
        await move(client, placement, to="completed")
        assert await view() == "reduced"
        again = await staff.get(f"/v1/placements/{placement}")
        assert again.status_code == 200
        assert again.json()["status"] == "completed"
        after = await client.patch(f"/v1/candidates/{person}", json={"phone": "0655443322"})
        assert after.status_code == 200
        assert "0655443322" not in (await staff.get(f"/v1/candidates/{person}")).text

        # A hire, started then ended: the same.
        await force(client, person, "support", "securing")
        hire = (await propose(client, person, job))["id"]
        await accept_placement(client, hire)
        await move(client, hire, to="started")
        assert await view() == "full"
        await move(client, hire, to="ended", reason="resigned")
        assert await view() == "reduced"


# --- who is in a landlord's rankings ------------------------------------------------------


async def test_people_off_the_path_are_in_no_landlord_ranking(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    elsewhere = (await create_structure(client, "landlord"))["id"]
    mission = str((await create(client, "/v1/vacancies", mission_at(landlord, 49.45, 1.1)))["id"])
    job = str((await create(client, "/v1/vacancies", job_payload(landlord, **ROUEN)))["id"])
    other_job = str((await create(client, "/v1/vacancies", job_payload(elsewhere, **ROUEN)))["id"])
    leaving = str((await create(client, "/v1/candidates", candidate_payload(siae)))["id"])
    staying = str((await create(client, "/v1/candidates", candidate_payload(siae)))["id"])
    hired = str((await create(client, "/v1/candidates", candidate_payload(siae)))["id"])
    for someone in (leaving, staying):
        await propose(client, someone, mission)
    await force(client, hired, "support", "securing")
    await propose(client, hired, job)
    hire_elsewhere = (await propose(client, hired, other_job))["id"]

    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:

        async def named(vacancy: str) -> set[str]:
            got = await staff.get(f"/v1/vacancies/{vacancy}/matches")
            assert got.status_code == 200, got.text
            return {item["candidate"]["id"] for item in got.json()["items"]}

        assert await named(mission) == {leaving, staying}
        assert await named(job) == {hired}
        exited = await client.post(
            f"/v1/candidates/{leaving}/transitions", json={"to": "exited", "reason": "moved_away"}
        )
        assert exited.status_code == 200, exited.text
        await accept_placement(client, hire_elsewhere)
        await move(client, hire_elsewhere, to="started")  # employed by the other landlord
        assert await named(mission) == {staying}
        assert await named(job) == set()
        # The placements themselves stay readable.
        assert (await staff.get(f"/v1/placements?candidate_id={leaving}")).json()["items"]

    # Their own structure and administrators still see them, as excluded by phase.
    async with await client_as(app, sessionmaker, "insertion", siae) as own:
        got = await own.get(f"/v1/vacancies/{mission}/matches?include_excluded=true")
        assert got.status_code == 200, got.text
        failed = {e["candidate"]["id"]: e["failed"] for e in got.json()["excluded"]}
        assert "phase" in failed[leaving]
    admin = await client.get(f"/v1/vacancies/{job}/matches?include_excluded=true")
    assert hired in {e["candidate"]["id"] for e in admin.json()["excluded"]}


async def test_a_landlord_counts_the_people_it_may_not_name(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = str(
        (
            await create(
                client,
                "/v1/vacancies",
                mission_at(
                    landlord, 49.4431, 1.0993, required_competencies={"cleaning_hygiene": 2}
                ),
            )
        )["id"]
    )
    strong = [
        str(
            (
                await create(
                    client,
                    "/v1/candidates",
                    candidate_payload(siae, **ROUEN, competencies={"cleaning_hygiene": 2},
                                      certifications=[{"rncp_code": "RNCP40892",
                                                       "status": "held"}]),
                )
            )["id"]
        )
        for _ in range(6)
    ]  # fmt: skip
    weak = [
        str((await create(client, "/v1/candidates", candidate_payload(siae, **ROUEN)))["id"])
        for _ in range(3)
    ]
    await create(client, "/v1/candidates", candidate_payload(siae, **ROUEN, consent_to_share=False))
    await propose(client, strong[0], vacancy)
    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        got = await staff.get(f"/v1/vacancies/{vacancy}/matches")
    assert got.status_code == 200, got.text
    body = got.json()
    assert [item["candidate"]["id"] for item in body["items"]] == [strong[0]]
    # Scored on competencies (25), certification (15), history (10): 40 of 50 points.
    assert body["criteria"] == ["competencies", "certification", "landlord_history"]
    assert body["items"][0]["score"] == 80.0
    assert body["items"][0]["contributions"] == {
        "competencies": 50.0,
        "certification": 30.0,
        "landlord_history": 0.0,
    }
    # The others: 5 strong (80) and 3 weak (0); the one who did not consent is not counted.
    assert body["others"] == {
        "eligible": 5,
        "by_score_band": [
            {"band": "0-40", "count": 0},
            {"band": "40-60", "count": 0},
            {"band": "60-80", "count": 0},
            {"band": "80-100", "count": 5},
        ],
        "count_step": 5,
    }
    assert not any(someone in got.text for someone in [*strong[1:], *weak])


async def test_the_counts_of_others_do_not_move_within_a_cell(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Eligibility of the people a landlord may not name is decided from their grid
    cells: five people crossing their commute's edge within a cell change no count."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    # Their cell is 49.40-49.45 N, 1.05-1.10 E; its centre 49.425, 1.075. The vacancy is
    # 10.5 km north of the centre: beyond a 10 km commute from the cell, within it from
    # the cell's northern edge (8.7 km), not from its southern edge (13 km).
    north, south = {"latitude": 49.4431, "longitude": 1.0993}, {"latitude": 49.4012}
    people = [
        str(
            (
                await create(
                    client,
                    "/v1/candidates",
                    candidate_payload(siae, **{**ROUEN, **north}, max_commute_km=10),
                )
            )["id"]
        )
        for _ in range(5)
    ]
    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        vacancy = (
            await create(
                staff, "/v1/vacancies", mission_at(landlord, 49.425 + 10.5 / KM_PER_DEGREE, 1.075)
            )
        )["id"]

        async def others() -> dict[str, Any]:
            got = await staff.get(f"/v1/vacancies/{vacancy}/matches")
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()["others"]
            return body

        at_north = await others()
        assert at_north["eligible"] == 0
        for someone in people:
            assert (await client.patch(f"/v1/candidates/{someone}", json=south)).status_code == 200
        assert await others() == at_north
        # In the next cell north (centre 4.9 km away) all five count.
        for someone in people:
            moved = await client.patch(f"/v1/candidates/{someone}", json={"latitude": 49.46})
            assert moved.status_code == 200
        assert (await others())["eligible"] == 5


async def test_a_landlord_reads_the_moves_not_the_other_sides_notes(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = str((await create(client, "/v1/vacancies", mission_at(landlord, 49.45, 1.1)))["id"])
    person = str((await create(client, "/v1/candidates", candidate_payload(siae)))["id"])
    async with (
        await client_as(app, sessionmaker, "insertion", siae) as structure,
        await client_as(app, sessionmaker, "landlord", landlord) as staff,
    ):
        placement = await create(
            structure,
            "/v1/placements",
            {"candidate_id": person, "vacancy_id": vacancy, "notes": "Structure's own notes."},
        )
        interview = await staff.post(
            f"/v1/placements/{placement['id']}/transitions",
            json={"to": "interview", "note": "Interview on Monday at the site office."},
        )
        assert interview.status_code == 200, interview.text
        assert interview.json()["notes"] is None
        withdrawn = await structure.post(
            f"/v1/placements/{placement['id']}/transitions",
            json={"to": "withdrawn", "reason": "candidate_declined",
                  "note": "Told us privately why she declined."},
        )  # fmt: skip
        assert withdrawn.status_code == 200, withdrawn.text

        seen_by_landlord = (await staff.get(f"/v1/placements/{placement['id']}/history")).json()
        seen_by_structure = (
            await structure.get(f"/v1/placements/{placement['id']}/history")
        ).json()
        staff_id, structure_id = subject_of(staff), subject_of(structure)
    own, other = seen_by_landlord["items"]
    assert (own["to_status"], own["note"], own["actor_id"]) == (
        "interview",
        "Interview on Monday at the site office.",
        staff_id,
    )
    # The other side's move: what, when and why, not its words nor its client.
    assert (other["to_status"], other["reason"], other["actor_role"]) == (
        "withdrawn",
        "candidate_declined",
        "insertion",
    )
    assert other["note"] is None
    assert other["actor_id"] is None
    assert other["at"]
    # The structure reads everything, the landlord's words included.
    assert [(m["note"], m["actor_id"]) for m in seen_by_structure["items"]] == [
        ("Interview on Monday at the site office.", staff_id),
        ("Told us privately why she declined.", structure_id),
    ]


async def test_a_draft_ranking_answers_as_the_spec_says_to_each_role(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    """Its landlord gets 409 vacancy-not-published; insertion staff, who never see drafts,
    404 as for an unknown id. The spec said "others get 409", so a partner coded for a
    409 it never receives."""
    landlord = (await create_structure(client, "landlord"))["id"]
    insertion = (await create_structure(client, "insertion"))["id"]
    draft = await create(client, "/v1/vacancies", job_payload(landlord, status="draft"))
    path = f"/v1/vacancies/{draft['id']}/matches"
    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        assert is_problem(await staff.get(path), 409)
    async with await client_as(app, sessionmaker, "insertion", insertion) as staff:
        assert is_problem(await staff.get(path), 404)
    operation = app.openapi()["paths"]["/v1/vacancies/{vacancy_id}/matches"]["get"]
    description = operation["description"]
    assert "its landlord gets 409 `vacancy-not-published`" in description
    assert "insertion staff, who do not see drafts, 404" in description
