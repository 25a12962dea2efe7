"""Matching through the API, on both databases: rankings both ways, who may see them,
and the optimal assignment of candidates to open positions.

Expected scores are computed by hand from the default weights (distance 25,
competencies 25, certification 15, landlord history 10, training 10, waiting 10,
preferences 5; training saturates at 150 h, waiting at 365 days). Candidates created
during a test have waited 0 days.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.matching import SCORING_VERSION
from app.main import create_app
from app.schemas.matching import AssignmentResult
from tests.access_helpers import accept_placement, is_problem, propose, subject_of, token_of
from tests.conftest import Backend, client_as, http_client, make_settings
from tests.factories import (
    candidate_payload,
    create,
    create_structure,
    job_payload,
    vacancy_payload,
)

CRITERIA = {
    "distance",
    "competencies",
    "certification",
    "landlord_history",
    "training",
    "waiting",
    "preferences",
}
# Along a meridian a distance is R * delta-latitude: points an exact number of km apart.
KM_PER_DEGREE = 6371.0088 * math.pi / 180
ROUEN = {"postcode": "76000", "commune_insee": "76540", "latitude": 49.4431, "longitude": 1.0993}
EVREUX = {"postcode": "27000", "commune_insee": "27229", "latitude": 49.0241, "longitude": 1.1508}
LYON = {"postcode": "69008", "commune_insee": "69388", "latitude": 45.7347, "longitude": 4.8694}
NO_COORDINATES = {"latitude": None, "longitude": None}
HELD = [{"rncp_code": "RNCP40892", "status": "held"}]
IN_PROGRESS = [{"rncp_code": "RNCP40892", "status": "in_progress"}]
PERSONAL_FIELDS = {"birth_date", "email", "phone", "last_name", "latitude", "longitude"}


def north_of_rouen(km: float) -> dict[str, Any]:
    return {**ROUEN, "latitude": ROUEN["latitude"] + km / KM_PER_DEGREE}


async def person(admin: httpx.AsyncClient, structure_id: str, **kw: Any) -> str:
    """A consenting candidate in recruitment at Rouen (with coordinates), on the path
    since today unless `entered_at` says otherwise."""
    body = candidate_payload(structure_id, **{**ROUEN, "entered_at": _now(), **kw})
    return str((await create(admin, "/v1/candidates", body))["id"])


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


async def mission(admin: httpx.AsyncClient, landlord_id: str, **kw: Any) -> str:
    """An open test mission at Rouen (with coordinates)."""
    body = vacancy_payload(landlord_id, **{**ROUEN, **kw})
    return str((await create(admin, "/v1/vacancies", body))["id"])


async def job(admin: httpx.AsyncClient, landlord_id: str, **kw: Any) -> str:
    """An open CDI at Rouen (with coordinates)."""
    body = job_payload(landlord_id, **{**ROUEN, **kw})
    return str((await create(admin, "/v1/vacancies", body))["id"])


async def force(admin: httpx.AsyncClient, candidate_id: str, *phases: str) -> None:
    for phase in phases:
        moved = await admin.post(
            f"/v1/candidates/{candidate_id}/transitions",
            json={"to": phase, "force": True, "note": "Committee decision for the test."},
        )
        assert moved.status_code == 200, moved.text


async def ranking(http: httpx.AsyncClient, vacancy_id: str, **params: Any) -> dict[str, Any]:
    got = await http.get(f"/v1/vacancies/{vacancy_id}/matches", params=params)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


async def openings(http: httpx.AsyncClient, candidate_id: str, **params: Any) -> dict[str, Any]:
    got = await http.get(f"/v1/candidates/{candidate_id}/matches", params=params)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def ranked_ids(body: dict[str, Any]) -> list[str]:
    return [item["candidate"]["id"] for item in body["items"]]


def scores_by_id(body: dict[str, Any]) -> dict[str, float]:
    return {item["candidate"]["id"]: item["score"] for item in body["items"]}


def excluded(body: dict[str, Any], key: str = "candidate") -> dict[str, set[str]]:
    return {item[key]["id"]: set(item["failed"]) for item in body["excluded"]}


async def assign(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    got = await admin.post("/v1/matching/assignments", json=body)
    assert got.status_code == 200, got.text
    result: dict[str, Any] = got.json()
    # The answer is written without the response model: it must still be one, exactly.
    parsed = AssignmentResult.model_validate(result)
    assert parsed.model_dump(mode="json") == result
    return result


def pair_set(result: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["vacancy_id"], p["candidate_id"]) for p in result["pairs"]}


# --- rankings for a vacancy ---------------------------------------------------------------


async def test_vacancy_ranking_by_score_with_contributions_distance_and_explanation(
    client: httpx.AsyncClient,
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord, required_competencies={"cleaning_hygiene": 2})
    # 25 + 25 + 5
    near = await person(client, siae, competencies={"cleaning_hygiene": 2})
    # 15 of 30 km (12.5), half the level asked (12.5), preferences 5
    far = await person(client, siae, competencies={"cleaning_hygiene": 1}, **north_of_rouen(15))
    # 55 + a caretaker certification held (15)
    certified = await person(
        client, siae, competencies={"cleaning_hygiene": 2}, certifications=HELD
    )
    # no coordinates, same département: distance counts half (12.5) -> 42.5
    unlocated = await person(client, siae, competencies={"cleaning_hygiene": 2}, **NO_COORDINATES)

    body = await ranking(client, vacancy)
    assert body["vacancy_id"] == vacancy
    assert body["scoring_version"] == SCORING_VERSION
    assert body["weights"]["distance"] == 25
    assert body["weights"]["competencies"] == 25
    assert ranked_ids(body) == [certified, near, unlocated, far]
    assert [item["score"] for item in body["items"]] == [70.0, 55.0, 42.5, 30.0]
    assert body["excluded"] == []
    for item in body["items"]:
        assert set(item["contributions"]) == CRITERIA
        assert sum(item["contributions"].values()) == pytest.approx(item["score"], abs=0.05)
        assert item["explanation"]
        assert item["candidate"]["view"] == "full"
    items = {item["candidate"]["id"]: item for item in body["items"]}
    assert items[certified]["contributions"] == {
        "distance": 25.0,
        "competencies": 25.0,
        "certification": 15.0,
        "landlord_history": 0.0,
        "training": 0.0,
        "waiting": 0.0,
        "preferences": 5.0,
    }
    assert items[far]["contributions"]["distance"] == pytest.approx(12.5, abs=0.01)
    assert items[far]["contributions"]["competencies"] == pytest.approx(12.5, abs=0.01)
    assert items[near]["distance_km"] == pytest.approx(0.0, abs=0.01)
    assert items[far]["distance_km"] == pytest.approx(15.0, abs=0.01)
    assert items[unlocated]["distance_km"] is None
    assert items[unlocated]["contributions"]["distance"] == pytest.approx(12.5, abs=0.01)
    # Located pairs explain the distance; the fallback says it used the département.
    assert any("km" in line for line in items[far]["explanation"])
    assert not any("département" in line for line in items[far]["explanation"])
    assert any("département" in line for line in items[unlocated]["explanation"])
    assert any("certification" in line for line in items[certified]["explanation"])

    top_two = await ranking(client, vacancy, limit=2)
    assert ranked_ids(top_two) == [certified, near]
    assert [item["score"] for item in top_two["items"]] == [70.0, 55.0]
    for limit in (0, 201):
        refused = await client.get(f"/v1/vacancies/{vacancy}/matches", params={"limit": limit})
        assert is_problem(refused, 422), refused.text
    missing = await client.get(f"/v1/vacancies/{uuid.uuid4()}/matches")
    assert is_problem(missing, 404), missing.text


async def test_waiting_counts_from_when_the_path_began_not_from_the_import(
    client: httpx.AsyncClient,
) -> None:
    """A structure importing its history registers people today whose path began long
    ago: the waiting criterion reads the path's start (saturating at 365 days)."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    today = dt.datetime.now(dt.UTC)
    imported = await person(client, siae, entered_at=(today - dt.timedelta(days=400)).isoformat())
    # Noon, 146 days back: 146 calendar days whatever the hour now (waiting counts days
    # by date; "146 days and an hour ago" was 147 dates back in the first hour of a day).
    noon = today.replace(hour=12, minute=0, second=0, microsecond=0)
    halfway = await person(client, siae, entered_at=(noon - dt.timedelta(days=146)).isoformat())
    new = await person(client, siae)
    body = await ranking(client, vacancy)
    waiting = {item["candidate"]["id"]: item["contributions"]["waiting"] for item in body["items"]}
    assert waiting == {imported: 10.0, halfway: pytest.approx(4.0, abs=0.01), new: 0.0}
    assert ranked_ids(body) == [imported, halfway, new]


async def test_a_vacancy_without_coordinates_falls_back_to_the_departement(
    client: httpx.AsyncClient,
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord, **NO_COORDINATES)
    in_76 = await person(client, siae)
    in_27 = await person(client, siae, **EVREUX)

    body = await ranking(client, vacancy, include_excluded=True)
    assert ranked_ids(body) == [in_76]
    item = body["items"][0]
    assert item["distance_km"] is None
    assert item["score"] == 42.5  # 12.5 + 25 + 5
    assert any("département" in line for line in item["explanation"])
    assert excluded(body).get(in_27, {"distance"}) == {"distance"}


async def test_include_excluded_lists_each_removed_candidate_with_its_filters(
    client: httpx.AsyncClient,
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(
        client,
        landlord,
        onsite_housing=True,
        driving_licence_required=True,
        required_certification="RNCP40892",
        start_date="2027-01-04",
    )
    good = {
        "accepts_onsite_housing": True,
        "has_driving_licence": True,
        "certifications": IN_PROGRESS,
    }
    # A 60 km commute widens the search around the vacancy beyond the far candidate.
    eligible = await person(client, siae, max_commute_km=60, **good)
    expected = {
        await person(client, siae, available_from="2027-02-01", **good): {"availability"},
        await person(client, siae, max_commute_km=30, **north_of_rouen(40), **good): {"distance"},
        await person(client, siae, **{**good, "accepts_onsite_housing": False}): {"onsite_housing"},
        await person(client, siae, **{**good, "has_driving_licence": False}): {"driving_licence"},
        await person(client, siae, **{**good, "certifications": []}): {"certification"},
        await person(client, siae, consent_to_share=False, **good): {"consent"},
        await person(
            client, siae, consent_to_share=False, **{**good, "has_driving_licence": False}
        ): {"consent", "driving_licence"},
    }
    securing = await person(client, siae, **good)
    await force(client, securing, "support", "securing")
    expected[securing] = {"phase"}
    proposed = await person(client, siae, **good)
    await propose(client, proposed, vacancy)
    expected[proposed] = {"conflicting_placement"}

    plain = await ranking(client, vacancy)
    assert ranked_ids(plain) == [eligible]
    assert plain["excluded"] == []

    full = await ranking(client, vacancy, include_excluded=True)
    assert ranked_ids(full) == [eligible]
    assert excluded(full) == expected
    assert all(item["candidate"]["view"] == "full" for item in full["excluded"])


async def test_a_candidate_holding_an_accepted_job_is_not_ranked_for_another(
    client: httpx.AsyncClient,
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    first_job = await job(client, landlord)
    second_job = await job(client, landlord)
    hired = await person(client, siae)
    free = await person(client, siae)
    in_recruitment = await person(client, siae)
    for candidate in (hired, free):
        await force(client, candidate, "support", "securing")
    placement = await propose(client, hired, first_job)
    await accept_placement(client, placement["id"])

    body = await ranking(client, second_job, include_excluded=True)
    assert ranked_ids(body) == [free]
    assert excluded(body) == {hired: {"conflicting_placement"}, in_recruitment: {"phase"}}


# --- rankings for a candidate -------------------------------------------------------------


async def test_candidate_ranking_lists_open_vacancies_that_fit_the_phase(
    client: httpx.AsyncClient,
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    near = await mission(client, landlord)
    farther = await mission(client, landlord, **north_of_rouen(15))
    draft = await mission(client, landlord, status="draft")
    closed = await mission(client, landlord)
    patched = await client.patch(f"/v1/vacancies/{closed}", json={"status": "closed"})
    assert patched.status_code == 200, patched.text
    cdi = await job(client, landlord)
    lyon = await mission(client, landlord, **LYON)
    candidate = await person(client, siae)

    body = await openings(client, candidate)
    assert body["candidate_id"] == candidate
    assert body["scoring_version"] == SCORING_VERSION
    assert [item["vacancy"]["id"] for item in body["items"]] == [near, farther]
    assert [item["score"] for item in body["items"]] == [55.0, 42.5]
    for item in body["items"]:
        assert sum(item["contributions"].values()) == pytest.approx(item["score"], abs=0.05)
    assert body["items"][1]["distance_km"] == pytest.approx(15.0, abs=0.01)
    assert body["excluded"] == []

    with_excluded = await openings(client, candidate, include_excluded=True)
    assert [item["vacancy"]["id"] for item in with_excluded["items"]] == [near, farther]
    refused = excluded(with_excluded, "vacancy")
    assert refused.get(cdi) == {"phase"}
    for absent in (draft, closed):
        assert absent not in refused
    assert refused.get(lyon, {"distance"}) == {"distance"}

    # In securing, the same person is offered the job and no mission.
    await force(client, candidate, "support", "securing")
    securing = await openings(client, candidate)
    assert [item["vacancy"]["id"] for item in securing["items"]] == [cdi]


# --- tenancy ----------------------------------------------------------------------------


async def test_rankings_respect_tenancy(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ours = (await create_structure(client, "insertion"))["id"]
    theirs = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    other_landlord = (await create_structure(client, "landlord"))["id"]
    partner = (await create_structure(client, "partner"))["id"]
    vacancy = await mission(client, landlord)
    other_vacancy = await mission(client, other_landlord)
    draft = await mission(client, landlord, status="draft")
    own = await person(client, ours, referrer_id=partner)
    # Better placed than ours (a certification held): would rank first if visible.
    foreign = await person(client, theirs, certifications=HELD)
    foreign_refused = await person(client, theirs, consent_to_share=False)

    admin_view = await ranking(client, vacancy)
    assert ranked_ids(admin_view) == [foreign, own]

    async with await client_as(app, sessionmaker, "insertion", ours) as siae:
        mine = await ranking(siae, vacancy)
        assert ranked_ids(mine) == [own]
        assert mine["items"][0]["candidate"]["view"] == "full"
        with_excluded = await ranking(siae, vacancy, include_excluded=True)
        listed = set(ranked_ids(with_excluded)) | set(excluded(with_excluded))
        assert listed == {own}
        assert foreign not in listed
        assert foreign_refused not in listed
        assert is_problem(await siae.get(f"/v1/vacancies/{draft}/matches"), 404)
        assert (await openings(siae, own))["items"]
        refused = await siae.get(f"/v1/candidates/{foreign}/matches")
        assert is_problem(refused, 404), refused.text
        assert is_problem(await siae.post("/v1/matching/assignments", json={}), 403)

    await propose(client, own, vacancy)
    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        # Only the people proposed to the vacancy, by name; the others are counted.
        reduced = await ranking(staff, vacancy)
        assert ranked_ids(reduced) == [own]
        [item] = reduced["items"]
        assert item["candidate"]["view"] == "reduced"
        assert not PERSONAL_FIELDS & set(item["candidate"]), item
        assert item["distance_km"] is None
        assert item["distance_band"] == "under_5_km"
        assert reduced["considered"] is None
        assert reduced["others"]["eligible"] == 0  # foreign alone: fewer than 5
        refused = await staff.get(
            f"/v1/vacancies/{vacancy}/matches", params={"include_excluded": "true"}
        )
        assert is_problem(refused, 422), refused.text
        assert is_problem(await staff.get(f"/v1/vacancies/{other_vacancy}/matches"), 404)
        assert is_problem(await staff.get(f"/v1/candidates/{own}/matches"), 403)
        assert is_problem(await staff.post("/v1/matching/assignments", json={}), 403)

    for role, structure in (("prescriber", partner), ("observer", None)):
        async with await client_as(app, sessionmaker, role, structure) as outsider:
            for path in (f"/v1/vacancies/{vacancy}/matches", f"/v1/candidates/{own}/matches"):
                got = await outsider.get(path)
                assert is_problem(got, 403), (role, path, got.text)
            assign_refused = await outsider.post("/v1/matching/assignments", json={})
            assert is_problem(assign_refused, 403), (role, assign_refused.text)


async def test_a_landlord_never_sees_someone_who_did_not_consent(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Consent is what lets a profile reach landlords: withdrawn, the person leaves the
    ranking, even though still proposed."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    sharing = await person(client, siae)
    private = await person(client, siae)
    for someone in (sharing, private):
        await propose(client, someone, vacancy)
    patched = await client.patch(f"/v1/candidates/{private}", json={"consent_to_share": False})
    assert patched.status_code == 200, patched.text
    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        body = await ranking(staff, vacancy)
        staff_id = subject_of(staff)
    assert ranked_ids(body) == [sharing]
    seen = {e["candidate_id"] for e in await journal(client) if e["actor_id"] == staff_id}
    assert seen == {sharing}


# --- rankings are fresh computations ------------------------------------------------------


async def test_rankings_follow_writes(client: httpx.AsyncClient) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord, required_competencies={"cleaning_hygiene": 2})
    candidate = await person(client, siae)
    await force(client, candidate, "support")

    before = (await ranking(client, vacancy))["items"][0]
    assert before["score"] == 30.0  # 25 + 0 + 5
    assert before["contributions"]["competencies"] == 0.0

    patched = await client.patch(
        f"/v1/candidates/{candidate}", json={"competencies": {"cleaning_hygiene": 2}}
    )
    assert patched.status_code == 200, patched.text
    after_patch = (await ranking(client, vacancy))["items"][0]
    assert after_patch["contributions"]["competencies"] == 25.0
    assert after_patch["score"] == 55.0

    trained = await client.post(
        f"/v1/candidates/{candidate}/activities",
        json={
            "type": "training",
            "occurred_on": dt.date.today().isoformat(),
            "hours": 75,
            "training_mode": "external",
        },
    )
    assert trained.status_code == 201, trained.text
    after_training = (await ranking(client, vacancy))["items"][0]
    # 75 of 150 hours: 0.7 * 0.5 of the 10 points.
    assert after_training["contributions"]["training"] == pytest.approx(3.5, abs=0.01)
    assert after_training["score"] == 58.5
    # The other direction reads the same numbers.
    back = (await openings(client, candidate))["items"][0]
    assert back["vacancy"]["id"] == vacancy
    assert back["score"] == 58.5

    # A completed work mission with the vacancy's landlord counts as history.
    worked = await client.post(
        f"/v1/candidates/{candidate}/activities",
        json={
            "type": "work_mission",
            "occurred_on": dt.date.today().isoformat(),
            "landlord_id": landlord,
            "outcome": "positive",
        },
    )
    assert worked.status_code == 201, worked.text
    after_mission = (await ranking(client, vacancy))["items"][0]
    assert after_mission["contributions"]["landlord_history"] == 10.0
    assert after_mission["score"] == 68.5

    # Moving away beyond the commute removes the person from the ranking.
    moved = await client.patch(f"/v1/candidates/{candidate}", json=north_of_rouen(45))
    assert moved.status_code == 200, moved.text
    assert (await ranking(client, vacancy))["items"] == []


async def test_just_inside_the_commute_is_ranked_both_ways(client: httpx.AsyncClient) -> None:
    """29.99 km of a 30 km commute passes the distance filter (the scorer says so): the
    answer must equal a fresh computation, whatever the prefilter."""
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    candidate = await person(client, siae, max_commute_km=30, **north_of_rouen(29.99))

    body = await ranking(client, vacancy)
    assert ranked_ids(body) == [candidate]
    assert body["items"][0]["distance_km"] == pytest.approx(29.99, abs=0.01)
    # 25 * (1 - 29.99 / 30) = 0.008, + 25 + 5
    assert body["items"][0]["score"] == 30.01
    back = await openings(client, candidate)
    assert [item["vacancy"]["id"] for item in back["items"]] == [vacancy]
    scoped = await assign(client, scope={"departement": "76"}, min_score=0)
    assert pair_set(scoped) == {(vacancy, candidate)}


async def test_weights_come_from_the_settings(client: httpx.AsyncClient, backend: Backend) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    near = await person(client, siae)
    far = await person(client, siae, **north_of_rouen(15), certifications=HELD)
    default = await ranking(client, vacancy)
    # far: 12.5 + 25 + 15 + 5 = 57.5 beats near: 55
    assert scores_by_id(default) == {far: 57.5, near: 55.0}

    only_distance = {
        f"matching_weight_{name}": 0
        for name in ("competencies", "certification", "landlord_history", "training")
    } | {"matching_weight_waiting": 0, "matching_weight_preferences": 0}
    other = create_app(make_settings(backend.url, **only_distance))
    async with other.router.lifespan_context(other), http_client(other, token_of(client)) as http:
        body = await ranking(http, vacancy)
    assert body["weights"]["certification"] == 0
    assert ranked_ids(body) == [near, far]
    assert scores_by_id(body) == {near: 100.0, far: 50.0}


# --- assignment --------------------------------------------------------------------------


async def greedy_trap(admin: httpx.AsyncClient) -> dict[str, str]:
    """Two missions at Rouen (1 and 2 positions) and four candidates there, where taking
    the best pair first is not optimal. Scores by hand:

        c1: V1 70 (25+25+15+5), V2 63.75 (25+18.75+15+5)
        c2: V1 62.5 (25+25+7.5+5), V2 37.5 (25+0+7.5+5)
        c3: V1 30, V2 55
        c4: V1 30, V2 42.5 (25+12.5+5)
    """
    siae = (await create_structure(admin, "insertion"))["id"]
    landlord = (await create_structure(admin, "landlord"))["id"]
    names = {
        "V1": await mission(admin, landlord, required_competencies={"cleaning_hygiene": 2}),
        "V2": await mission(
            admin,
            landlord,
            positions=2,
            required_competencies={"tenant_welcome": 2, "mediation": 2},
        ),
        "c1": await person(
            admin,
            siae,
            competencies={"cleaning_hygiene": 2, "tenant_welcome": 2, "mediation": 1},
            certifications=HELD,
        ),
        "c2": await person(
            admin, siae, competencies={"cleaning_hygiene": 2}, certifications=IN_PROGRESS
        ),
        "c3": await person(admin, siae, competencies={"tenant_welcome": 2, "mediation": 2}),
        "c4": await person(admin, siae, competencies={"tenant_welcome": 1, "mediation": 1}),
    }
    return names


def best_total(
    positions: dict[str, int], scores: dict[tuple[str, str], float], min_score: float
) -> float:
    """Brute force: every way of giving each position one candidate (or nobody)."""
    slots = [v for v, n in positions.items() for _ in range(n)]
    candidates = sorted({c for _, c in scores})
    best = 0.0
    for choice in itertools.product([None, *candidates], repeat=len(slots)):
        chosen = [c for c in choice if c is not None]
        if len(chosen) != len(set(chosen)):
            continue
        pairs = [(v, c) for v, c in zip(slots, choice, strict=True) if c is not None]
        if all((v, c) in scores and scores[(v, c)] >= min_score for v, c in pairs):
            best = max(best, sum(scores[p] for p in pairs))
    return best


async def pair_scores(
    admin: httpx.AsyncClient, vacancy_ids: list[str]
) -> dict[tuple[str, str], float]:
    """Every eligible (vacancy, candidate) score, as the ranking endpoint reports it."""
    scores = {}
    for vacancy in vacancy_ids:
        for item in (await ranking(admin, vacancy, limit=200))["items"]:
            scores[(vacancy, item["candidate"]["id"])] = item["score"]
    return scores


def check_result(
    result: dict[str, Any],
    positions: dict[str, int],
    scores: dict[tuple[str, str], float],
    min_score: float,
) -> None:
    used = [p["candidate_id"] for p in result["pairs"]]
    assert len(used) == len(set(used)), "a candidate assigned twice"
    per_vacancy = Counter(p["vacancy_id"] for p in result["pairs"])
    assert all(per_vacancy[v] <= n for v, n in positions.items()), per_vacancy
    for p in result["pairs"]:
        assert p["score"] == scores[(p["vacancy_id"], p["candidate_id"])]
        assert p["score"] >= min_score
    assert result["total_score"] == pytest.approx(sum(p["score"] for p in result["pairs"]))
    assert result["total_score"] == pytest.approx(best_total(positions, scores, min_score))
    assert result["unfilled_positions"] == sum(positions.values()) - len(result["pairs"])
    assert result["scoring_version"] == SCORING_VERSION


async def test_assignment_maximises_the_total(client: httpx.AsyncClient) -> None:
    n = await greedy_trap(client)
    v1, v2, c1, c2, c3, c4 = (n[k] for k in ("V1", "V2", "c1", "c2", "c3", "c4"))
    positions = {v1: 1, v2: 2}
    scores = await pair_scores(client, [v1, v2])
    assert scores == {
        (v1, c1): 70.0,
        (v1, c2): 62.5,
        (v1, c3): 30.0,
        (v1, c4): 30.0,
        (v2, c1): 63.75,
        (v2, c2): 37.5,
        (v2, c3): 55.0,
        (v2, c4): 42.5,
    }

    # Default minimum score (40): c2 at V2, c3 and c4 at V1 are left apart.
    result = await assign(client, scope={"vacancy_ids": [v1, v2]})
    check_result(result, positions, scores, 40)
    assert pair_set(result) == {(v1, c2), (v2, c1), (v2, c3)}
    assert result["total_score"] == 181.25
    assert result["vacancies_considered"] == 2
    assert result["proposals_created"] == 0
    assert (await assign(client, scope={"vacancy_ids": [v1, v2]})) == result
    # Nothing was proposed.
    listed = await client.get("/v1/placements")
    assert listed.json()["items"] == []

    # A higher bar leaves a position of V2 empty rather than take a weak pair.
    strict = await assign(client, scope={"vacancy_ids": [v1, v2]}, min_score=60)
    check_result(strict, positions, scores, 60)
    assert pair_set(strict) == {(v1, c2), (v2, c1)}
    assert strict["total_score"] == 126.25
    assert strict["unfilled_positions"] == 1

    # No bar: every pair may be used; the optimum is unchanged here.
    loose = await assign(client, min_score=0)
    check_result(loose, positions, scores, 0)
    assert c4 not in {p["candidate_id"] for p in loose["pairs"]}


async def test_assignment_counts_only_free_positions(client: httpx.AsyncClient) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord, positions=2)
    people = [await person(client, siae) for _ in range(4)]
    placement = await propose(client, people[0], vacancy)
    await accept_placement(client, placement["id"])

    result = await assign(client, scope={"vacancy_ids": [vacancy]})
    assert len(result["pairs"]) == 1
    assert result["unfilled_positions"] == 0
    assert result["pairs"][0]["candidate_id"] in people[1:]


async def test_assignment_scopes(client: httpx.AsyncClient) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    normandy = (await create_structure(client, "landlord"))["id"]
    rhone = (await create_structure(client, "landlord", **LYON))["id"]
    rouen = await mission(client, normandy)
    evreux = await mission(client, normandy, **EVREUX)
    lyon = await mission(client, rhone, **LYON)
    for place in (ROUEN, EVREUX, LYON):
        await person(client, siae, **place)

    async def vacancies_of(scope: dict[str, Any]) -> set[str]:
        result = await assign(client, scope=scope)
        got = {p["vacancy_id"] for p in result["pairs"]}
        assert result["vacancies_considered"] == len(got)
        return got

    assert await vacancies_of({}) == {rouen, evreux, lyon}
    assert await vacancies_of({"departement": "76"}) == {rouen}
    assert await vacancies_of({"departement": "27"}) == {evreux}
    assert await vacancies_of({"region": "28"}) == {rouen, evreux}
    assert await vacancies_of({"region": "84"}) == {lyon}
    assert await vacancies_of({"landlord_ids": [rhone]}) == {lyon}
    assert await vacancies_of({"landlord_ids": [normandy]}) == {rouen, evreux}
    assert await vacancies_of({"vacancy_ids": [evreux, lyon]}) == {evreux, lyon}

    for scope in (
        {"departement": "76", "landlord_ids": [normandy]},
        {"region": "28", "vacancy_ids": [rouen]},
        {"vacancy_ids": [rouen, str(uuid.uuid4())]},
    ):
        refused = await client.post("/v1/matching/assignments", json={"scope": scope})
        assert is_problem(refused, 422), (scope, refused.text)
    # Landlords named must be landlords, as an objective's or a vacancy's: 409 otherwise.
    for kind in ("insertion", "partner"):
        other = (await create_structure(client, kind))["id"]
        for landlords in ([other], [normandy, other]):
            refused = await client.post(
                "/v1/matching/assignments", json={"scope": {"landlord_ids": landlords}}
            )
            assert is_problem(refused, 409), refused.text
            problem = refused.json()
            assert problem["type"] == "urn:tremplin:problem:wrong-reference-kind"
            assert (problem["field"], problem["expected_kind"]) == ("landlord_ids", "landlord")
    unknown = await client.post(
        "/v1/matching/assignments",
        json={"scope": {"landlord_ids": [normandy, str(uuid.uuid4())]}, "create_proposals": True},
    )
    assert is_problem(unknown, 422), unknown.text
    assert [e["loc"] for e in unknown.json()["errors"]] == [["body", "scope", "landlord_ids"]]
    assert await placements_now(client) == set()
    # An unknown region is refused as the figures and objectives refuse it.
    for region in ("99", "00", "12"):
        refused = await client.post("/v1/matching/assignments", json={"scope": {"region": region}})
        assert is_problem(refused, 422), (region, refused.text)
        figures = await client.get("/v1/stats/funnel", params={"region": region})
        assert [(e["loc"][1:], e["message"]) for e in refused.json()["errors"]] == [
            (["scope", "region"], e["message"]) for e in figures.json()["errors"]
        ]
    draft = await mission(client, normandy, status="draft")
    refused = await client.post(
        "/v1/matching/assignments", json={"scope": {"vacancy_ids": [draft]}}
    )
    assert is_problem(refused, 422), refused.text


async def placements_now(admin: httpx.AsyncClient) -> set[tuple[str, str, str]]:
    got = await admin.get("/v1/placements", params={"limit": 200})
    assert got.status_code == 200, got.text
    return {(p["vacancy_id"], p["candidate_id"], p["status"]) for p in got.json()["items"]}


async def test_create_proposals_makes_the_pairs_proposed_placements(
    client: httpx.AsyncClient,
) -> None:
    n = await greedy_trap(client)
    request = {"scope": {"vacancy_ids": [n["V1"], n["V2"]]}, "create_proposals": True}
    first = await assign(client, **request)
    assert first["proposals_created"] == 3
    assert pair_set(first) == {(n["V1"], n["c2"]), (n["V2"], n["c1"]), (n["V2"], n["c3"])}
    assert await placements_now(client) == {(v, c, "proposed") for v, c in pair_set(first)}

    # Open placements now remove those pairs: the second call never repeats one.
    second = await assign(client, **request)
    assert not pair_set(second) & pair_set(first)
    assert second["proposals_created"] == len(second["pairs"])
    assert await placements_now(client) == {
        (v, c, "proposed") for v, c in pair_set(first) | pair_set(second)
    }


async def test_a_second_call_proposes_nobody_already_proposed(client: httpx.AsyncClient) -> None:
    """After create_proposals, the people proposed hold open placements; an identical
    call must not put them forward again (each person used at most once)."""
    n = await greedy_trap(client)
    request = {"scope": {"vacancy_ids": [n["V1"], n["V2"]]}, "create_proposals": True}
    first = await assign(client, **request)
    proposed = {c for _, c in pair_set(first)}
    assert proposed == {n["c1"], n["c2"], n["c3"]}

    second = await assign(client, **request)
    again = {c for _, c in pair_set(second)}
    assert not again & proposed, f"proposed again: {again & proposed}"
    assert pair_set(second) <= {(n["V2"], n["c4"])}


async def test_assignment_is_admin_only(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    await mission(client, landlord)
    await person(client, siae)
    for role, structure in (("insertion", siae), ("landlord", landlord), ("observer", None)):
        async with await client_as(app, sessionmaker, role, structure) as http:
            refused = await http.post("/v1/matching/assignments", json={"create_proposals": True})
            assert is_problem(refused, 403), (role, refused.text)
    assert await placements_now(client) == set()
    assert len((await assign(client))["pairs"]) == 1


# --- audit --------------------------------------------------------------------------------


async def journal(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    got = await admin.get("/v1/audit", params={"limit": 200, **params})
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items


async def test_rankings_are_journaled(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    siae = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    vacancy = await mission(client, landlord)
    ranked = await person(client, siae)
    refused = await person(client, siae, consent_to_share=False)
    await person(client, siae, **LYON)  # far away: never read, never listed

    body = await ranking(client, vacancy, include_excluded=True)
    assert ranked_ids(body) == [ranked]
    assert set(excluded(body)) == {refused}
    admin_id = subject_of(client)
    lists = await journal(client, action="list")
    assert Counter((e["candidate_id"], e["actor_id"], e["field_class"]) for e in lists) == Counter(
        [(ranked, admin_id, "full"), (refused, admin_id, "full")]
    )

    proposed = await person(client, siae)
    await propose(client, proposed, vacancy)
    async with await client_as(app, sessionmaker, "landlord", landlord) as staff:
        await ranking(staff, vacancy)
        staff_id = subject_of(staff)
    # The landlord is named the person proposed; the others are only counted.
    staff_rows = [e for e in await journal(client, action="list") if e["actor_id"] == staff_id]
    assert [(e["candidate_id"], e["field_class"], e["operation"]) for e in staff_rows] == [
        (proposed, "reduced", "vacancies_matches")
    ]

    await openings(client, ranked)
    reads = await journal(client, action="read", candidate_id=ranked)
    assert [(e["actor_id"], e["field_class"]) for e in reads] == [(admin_id, "full")]


async def test_assignments_follow_writes_after_the_store_is_filled(
    client: httpx.AsyncClient,
) -> None:
    """The in-memory candidate store never answers from stale data."""
    n = await greedy_trap(client)
    v1, v2, c1, c2 = (n[k] for k in ("V1", "V2", "c1", "c2"))
    scope = {"vacancy_ids": [v1, v2]}
    first = await assign(client, scope=scope)  # fills the store
    assert (v2, c1) in pair_set(first)

    # A withdrawn consent takes c1 out at once.
    patched = await client.patch(f"/v1/candidates/{c1}", json={"consent_to_share": False})
    assert patched.status_code == 200, patched.text
    without = await assign(client, scope=scope)
    assert c1 not in {p["candidate_id"] for p in without["pairs"]}

    # A new candidate is weighed; once erased, no longer.
    structure = (await client.get(f"/v1/candidates/{c2}")).json()["structure_id"]
    considered = without["candidates_considered"]
    newcomer = await person(client, structure)
    assert (await assign(client, scope=scope))["candidates_considered"] == considered + 1
    assert (await client.delete(f"/v1/candidates/{newcomer}")).status_code == 204
    assert (await assign(client, scope=scope))["candidates_considered"] == considered
