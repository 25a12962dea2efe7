"""Every validation rule, with a bad value: a 4xx problem+json, and nothing written.

Each table holds changes to a valid payload from tests.factories; the test posts it,
expects the error, and checks the table it would have written to is still empty
(or, for a PATCH, that the resource did not change).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Candidate, Placement, Structure, Vacancy
from app.models.base import Entity
from tests.factories import (
    candidate_payload,
    create,
    create_candidate,
    create_structure,
    create_vacancy,
    job_payload,
    structure_payload,
    vacancy_payload,
)

PROBLEM_JSON = "application/problem+json"
MAX_BODY_BYTES = 1_048_576  # the default limit
OMIT = object()  # in a table of changes: remove the field from the payload

Loc = tuple[str, ...]
Maker = async_sessionmaker[AsyncSession]


# --- helpers -------------------------------------------------------------------------


def changed(payload: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for name, value in changes.items():
        if value is OMIT:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:tremplin:problem:{slug}"
    assert body["status"] == status
    return body


def assert_invalid(response: httpx.Response) -> dict[str, Any]:
    return assert_problem(response, 422, "validation-error")


def assert_error_at(problem: dict[str, Any], *locs: Loc) -> None:
    """One of the problem's errors has a `loc` that starts with one of `locs`.

    Tests check this last, after what was (not) written, so that a vague `loc`
    does not hide a worse failure.
    """
    got = [tuple(error["loc"]) for error in problem["errors"]]
    assert any(loc[: len(want)] == want for loc in got for want in locs), (
        f"no error at {locs}; errors are at {got}"
    )


async def count(sessionmaker: Maker, model: type[Entity]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def years_ago(years: int, days: int = 0) -> str:
    today = dt.date.today()
    try:
        day = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        day = today.replace(year=today.year - years, day=28)
    return (day + dt.timedelta(days=days)).isoformat()


def bad_levels(field: str, competency: str) -> list[Any]:
    """A competency level of any JSON type but an integer, or null: refused at its key."""
    return [
        pytest.param(
            {field: {competency: value}},
            [("body", field, competency)],
            id=f"competency-level-{label}",
        )
        for value, label in ((True, "boolean"), (2.0, "number"), ("2", "string"), (None, "null"))
    ]


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
async def insertion(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_structure(client, "insertion")


@pytest.fixture
async def landlord(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_structure(client, "landlord")


@pytest.fixture
async def partner(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_structure(client, "partner")


@pytest.fixture
async def candidate(client: httpx.AsyncClient, insertion: dict[str, Any]) -> dict[str, Any]:
    return await create_candidate(client, insertion["id"], latitude=49.44, longitude=1.1)


@pytest.fixture
async def vacancy(client: httpx.AsyncClient, landlord: dict[str, Any]) -> dict[str, Any]:
    return await create_vacancy(client, landlord["id"], latitude=45.73, longitude=4.87)


@pytest.fixture
async def placement(
    client: httpx.AsyncClient, candidate: dict[str, Any], vacancy: dict[str, Any]
) -> dict[str, Any]:
    return await create(
        client,
        "/v1/placements",
        {"candidate_id": candidate["id"], "vacancy_id": vacancy["id"], "start_date": "2027-01-04"},
    )


# --- structures ----------------------------------------------------------------------

SIRET = ("body", "siret")
INSEE = ("body", "commune_insee")
LAT = ("body", "latitude")
LON = ("body", "longitude")
COORDS = (LAT, LON)

STRUCTURE_INVALID = [
    pytest.param({"siret": "44306184100048"}, [SIRET], id="siret-bad-checksum"),
    pytest.param({"siret": "4430618410004"}, [SIRET], id="siret-13-digits"),
    pytest.param({"siret": "443061841000470"}, [SIRET], id="siret-15-digits"),
    pytest.param({"siret": "4430618410004A"}, [SIRET], id="siret-letter"),
    pytest.param({"siret": "ABCDEFGHIJKLMN"}, [SIRET], id="siret-letters"),
    pytest.param({"siret": ""}, [SIRET], id="siret-empty"),
    pytest.param({"siret": OMIT}, [SIRET], id="siret-missing"),
    # Digit sum 20 but Luhn fails: the La Poste exception is for SIREN 356000000 only.
    pytest.param({"siret": "44306184100004"}, [SIRET], id="siret-sum-rule-outside-la-poste"),
    # La Poste SIREN, Luhn fails and digit sum 16 is not a multiple of 5.
    pytest.param({"siret": "35600000000002"}, [SIRET], id="siret-la-poste-fails-both"),
    pytest.param({"commune_insee": "96001"}, [INSEE], id="insee-departement-96"),
    pytest.param({"commune_insee": "20001"}, [INSEE], id="insee-corsica-before-1976"),
    pytest.param({"commune_insee": "2C001"}, [INSEE], id="insee-2C"),
    pytest.param({"commune_insee": "1234"}, [INSEE], id="insee-4-digits"),
    pytest.param({"commune_insee": "97501"}, [INSEE], id="insee-not-a-departement-975"),
    pytest.param({"postcode": "7600"}, [("body", "postcode")], id="postcode-4-digits"),
    pytest.param({"postcode": "76OOO"}, [("body", "postcode")], id="postcode-letters"),
    pytest.param({"latitude": 90.01}, [LAT], id="latitude-over-90"),
    pytest.param({"latitude": -90.01}, [LAT], id="latitude-under-minus-90"),
    pytest.param({"longitude": 180.01}, [LON], id="longitude-over-180"),
    pytest.param({"longitude": -180.01}, [LON], id="longitude-under-minus-180"),
    pytest.param({"longitude": OMIT}, COORDS, id="latitude-without-longitude"),
    pytest.param({"latitude": OMIT}, COORDS, id="longitude-without-latitude"),
    pytest.param({"latitude": None}, COORDS, id="latitude-null-longitude-given"),
    pytest.param({"kind": "school"}, [("body", "kind")], id="unknown-kind"),
    pytest.param({"sub_kind": "OPH"}, [("body", "sub_kind")], id="insertion-with-OPH"),
    pytest.param({"sub_kind": "bakery"}, [("body", "sub_kind")], id="unknown-sub-kind"),
    pytest.param(
        {"kind": "landlord", "sub_kind": "AI"}, [("body", "sub_kind")], id="landlord-with-AI"
    ),
    pytest.param(
        {"kind": "partner", "sub_kind": "GEIQ"}, [("body", "sub_kind")], id="partner-with-GEIQ"
    ),
    pytest.param({"name": ""}, [("body", "name")], id="name-empty"),
    pytest.param({"name": "   "}, [("body", "name")], id="name-blank"),
    pytest.param({"name": "x" * 201}, [("body", "name")], id="name-too-long"),
    pytest.param({"website": "https://example.org"}, [("body", "website")], id="unknown-field"),
    pytest.param({"departement": "75"}, [("body", "departement")], id="derived-field-given"),
]


@pytest.mark.parametrize(("changes", "locs"), STRUCTURE_INVALID)
async def test_structure_create_refuses(
    client: httpx.AsyncClient, sessionmaker: Maker, changes: dict[str, Any], locs: list[Loc]
) -> None:
    response = await client.post("/v1/structures", json=changed(structure_payload(), changes))
    problem = assert_invalid(response)
    assert await count(sessionmaker, Structure) == 0
    assert_error_at(problem, *locs)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # La Poste: Luhn fails but the digit sum (20) is a multiple of 5.
        pytest.param({"siret": "35600000000015"}, {"siret": "35600000000015"}, id="la-poste"),
        pytest.param(
            {"siret": "443 061 841 00047"}, {"siret": "44306184100047"}, id="siret-with-spaces"
        ),
        pytest.param(
            {"commune_insee": "2A004", "postcode": "20000"},
            {"departement": "2A", "region": "94"},
            id="corse-du-sud",
        ),
        pytest.param(
            {"commune_insee": "2B033", "postcode": "20200"},
            {"departement": "2B", "region": "94"},
            id="haute-corse",
        ),
        pytest.param(
            {"commune_insee": "97411", "postcode": "97400"},
            {"departement": "974", "region": "04"},
            id="la-reunion",
        ),
        pytest.param(
            {"commune_insee": "97611", "postcode": "97600"},
            {"departement": "976", "region": "06"},
            id="mayotte",
        ),
        pytest.param(
            {"commune_insee": "69388", "postcode": "69008"},
            {"departement": "69", "region": "84"},
            id="lyon",
        ),
        pytest.param(
            {"latitude": 90, "longitude": -180}, {"latitude": 90, "longitude": -180}, id="bounds"
        ),
        pytest.param(
            {"latitude": None, "longitude": None},
            {"latitude": None, "longitude": None},
            id="no-coordinates",
        ),
        pytest.param({"kind": "partner", "sub_kind": "plie"}, {"sub_kind": "plie"}, id="plie"),
    ],
)
async def test_structure_create_accepts(
    client: httpx.AsyncClient,
    sessionmaker: Maker,
    changes: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    response = await client.post("/v1/structures", json=changed(structure_payload(), changes))
    assert response.status_code == 201, response.text
    body = response.json()
    assert {name: body[name] for name in expected} == expected
    assert await count(sessionmaker, Structure) == 1


@pytest.mark.parametrize(
    "second", ["44306184100047", "443 061 841 00047"], ids=["same", "same-with-spaces"]
)
async def test_duplicate_siret_is_a_conflict(
    client: httpx.AsyncClient, sessionmaker: Maker, second: str
) -> None:
    await create_structure(client, siret="44306184100047")
    response = await client.post("/v1/structures", json=structure_payload("landlord", siret=second))
    assert_problem(response, 409, "duplicate")
    assert await count(sessionmaker, Structure) == 1


async def test_patch_to_a_taken_siret_is_a_conflict(client: httpx.AsyncClient) -> None:
    await create_structure(client, siret="44306184100047")
    other = await create_structure(client)
    response = await client.patch(f"/v1/structures/{other['id']}", json={"siret": "44306184100047"})
    assert_problem(response, 409, "duplicate")
    after = (await client.get(f"/v1/structures/{other['id']}")).json()
    assert after["siret"] == other["siret"]
    assert after["version"] == 1


# --- candidates ----------------------------------------------------------------------

EMAIL = ("body", "email")
PHONE = ("body", "phone")
BIRTH = ("body", "birth_date")

CANDIDATE_INVALID = [
    pytest.param({"birth_date": years_ago(15)}, [BIRTH], id="aged-15"),
    pytest.param({"birth_date": years_ago(16, days=1)}, [BIRTH], id="16-tomorrow"),
    pytest.param({"birth_date": years_ago(0, days=1)}, [BIRTH], id="born-tomorrow"),
    pytest.param({"birth_date": years_ago(100, days=-1)}, [BIRTH], id="over-100-years"),
    pytest.param({"birth_date": "1990-02-30"}, [BIRTH], id="not-a-date"),
    pytest.param({"email": "secret-person@@x"}, [EMAIL], id="email-two-ats"),
    pytest.param({"email": "camille.example.org"}, [EMAIL], id="email-no-at"),
    pytest.param({"email": "camille@"}, [EMAIL], id="email-no-domain"),
    pytest.param({"phone": "12345678"}, [PHONE], id="phone-no-prefix"),
    pytest.param({"phone": "061234567"}, [PHONE], id="phone-9-digits"),
    pytest.param({"phone": "06123456789"}, [PHONE], id="phone-11-digits"),
    pytest.param({"phone": "+3361234567"}, [PHONE], id="phone-french-too-short"),
    pytest.param({"phone": "call me maybe"}, [PHONE], id="phone-words"),
    pytest.param({"phone": "0012"}, [PHONE], id="phone-short-international"),
    pytest.param({"commune_insee": "96001"}, [INSEE], id="insee-96"),
    pytest.param({"commune_insee": "2C001"}, [INSEE], id="insee-2C"),
    pytest.param({"postcode": "760000"}, [("body", "postcode")], id="postcode-6-digits"),
    pytest.param({"latitude": 91, "longitude": 1}, [LAT], id="latitude-91"),
    pytest.param({"latitude": 49, "longitude": -181}, [LON], id="longitude-minus-181"),
    pytest.param({"latitude": 49.4}, COORDS, id="latitude-only"),
    pytest.param({"longitude": 1.1}, COORDS, id="longitude-only"),
    pytest.param(
        {"competencies": {"plumbing": 2}},
        [("body", "competencies", "plumbing")],
        id="unknown-competency",
    ),
    pytest.param(
        {"competencies": {"cleaning_hygiene": 4}},
        [("body", "competencies", "cleaning_hygiene")],
        id="competency-level-4",
    ),
    pytest.param(
        {"competencies": {"mediation": -1}},
        [("body", "competencies", "mediation")],
        id="competency-level-minus-1",
    ),
    *bad_levels("competencies", "mediation"),
    pytest.param(
        {
            "certifications": [
                {"rncp_code": "RNCP40892", "status": "in_progress"},
                {"rncp_code": "RNCP40892", "status": "held", "date": "2025-06-30"},
            ]
        },
        [("body", "certifications")],
        id="duplicate-rncp",
    ),
    pytest.param(
        {"certifications": [{"rncp_code": "40892", "status": "held"}]},
        [("body", "certifications", "0", "rncp_code")],
        id="rncp-without-prefix",
    ),
    pytest.param(
        {"certifications": [{"rncp_code": "RNCP12", "status": "held"}]},
        [("body", "certifications", "0", "rncp_code")],
        id="rncp-too-short",
    ),
    pytest.param(
        {"certifications": [{"rncp_code": "rncp40892", "status": "held"}]},
        [("body", "certifications", "0", "rncp_code")],
        id="rncp-lower-case",
    ),
    pytest.param(
        {"certifications": [{"rncp_code": "RNCP40892", "status": "failed"}]},
        [("body", "certifications", "0", "status")],
        id="certification-unknown-status",
    ),
    pytest.param({"max_commute_km": 301}, [("body", "max_commute_km")], id="commute-301"),
    pytest.param({"max_commute_km": -1}, [("body", "max_commute_km")], id="commute-negative"),
    pytest.param({"first_name": ""}, [("body", "first_name")], id="first-name-empty"),
    # A name that looks blank or breaks a line (they were taken: 201).
    pytest.param({"first_name": "Jean\nDupont"}, [("body", "first_name")], id="name-line-break"),
    pytest.param({"last_name": "\u200b"}, [("body", "last_name")], id="name-zero-width-space"),
    pytest.param({"last_name": "\ufeff \u200b"}, [("body", "last_name")], id="name-invisible"),
    # Reads "Martin" in a list while "nitraM" is stored: a right-to-left override.
    pytest.param({"last_name": "\u202enitraM"}, [("body", "last_name")], id="name-bidi-override"),
    pytest.param({"first_name": "Ana\u2066x"}, [("body", "first_name")], id="name-bidi-isolate"),
    pytest.param({"last_name": "\u3164"}, [("body", "last_name")], id="name-hangul-filler"),
    pytest.param({"last_name": "\u2800"}, [("body", "last_name")], id="name-braille-blank"),
    pytest.param({"last_name": "\x1b[2J"}, [("body", "last_name")], id="name-escape-sequence"),
    pytest.param({"commune_name": "Rouen\tCentre"}, [("body", "commune_name")], id="name-tab"),
    pytest.param({"last_name": OMIT}, [("body", "last_name")], id="last-name-missing"),
    pytest.param({"phase": "employed"}, [("body", "phase")], id="phase-given"),
    pytest.param({"nir": "190047512345678"}, [("body", "nir")], id="unknown-field-nir"),
    pytest.param(
        {"consent_given_at": "2026-01-01T00:00:00Z"},
        [("body", "consent_given_at")],
        id="read-only-consent-time",
    ),
]


@pytest.mark.parametrize(("changes", "locs"), CANDIDATE_INVALID)
async def test_candidate_create_refuses(
    client: httpx.AsyncClient,
    sessionmaker: Maker,
    insertion: dict[str, Any],
    changes: dict[str, Any],
    locs: list[Loc],
) -> None:
    payload = changed(candidate_payload(insertion["id"]), changes)
    response = await client.post("/v1/candidates", json=payload)
    problem = assert_invalid(response)
    assert await count(sessionmaker, Candidate) == 0
    assert_error_at(problem, *locs)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"phone": "0612345678"}, {"phone": "+33612345678"}, id="french-national"),
        pytest.param({"phone": "06 12 34 56 78"}, {"phone": "+33612345678"}, id="with-spaces"),
        pytest.param({"phone": "06.12.34.56.78"}, {"phone": "+33612345678"}, id="with-dots"),
        pytest.param({"phone": "+33 6 12 34 56 78"}, {"phone": "+33612345678"}, id="plus-33"),
        pytest.param({"phone": "0033612345678"}, {"phone": "+33612345678"}, id="double-zero"),
        pytest.param({"phone": "+33 (0)6 12 34 56 78"}, {"phone": "+33612345678"}, id="+33(0)"),
        pytest.param({"phone": "+44 20 7946 0958"}, {"phone": "+442079460958"}, id="uk"),
        pytest.param({"phone": None, "email": None}, {"phone": None, "email": None}, id="none"),
        pytest.param(
            {"first_name": "Nguyễn Thị", "last_name": "O'Brien-李\u00a0محمد"},
            {"first_name": "Nguyễn Thị", "last_name": "O'Brien-李\u00a0محمد"},
            id="names-of-the-world",
        ),
        # A right-to-left mark in a mixed-script name is a mark, not an override: kept.
        pytest.param(
            {"last_name": "Ali \u200fمحمد"},
            {"last_name": "Ali \u200fمحمد"},
            id="name-with-a-direction-mark",
        ),
        # 16 today, so on a path that begins today (the factories' entry is in the past).
        pytest.param(
            {"birth_date": years_ago(16), "entered_at": OMIT},
            {"birth_date": years_ago(16)},
            id="aged-16",
        ),
        pytest.param({"birth_date": years_ago(100)}, {"birth_date": years_ago(100)}, id="aged-100"),
        pytest.param(
            {"commune_insee": "2A004", "postcode": "20000"},
            {"departement": "2A", "region": "94"},
            id="ajaccio",
        ),
        pytest.param(
            {"commune_insee": "97411", "postcode": "97400"},
            {"departement": "974", "region": "04"},
            id="saint-denis-reunion",
        ),
        pytest.param(
            {"competencies": {"cleaning_hygiene": 3, "mediation": 0}},
            {"competencies.cleaning_hygiene": 3, "competencies.mediation": 0},
            id="competency-levels-0-and-3",
        ),
    ],
)
async def test_candidate_create_accepts(
    client: httpx.AsyncClient,
    insertion: dict[str, Any],
    changes: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    payload = changed(candidate_payload(insertion["id"]), changes)
    response = await client.post("/v1/candidates", json=payload)
    assert response.status_code == 201, response.text
    body = response.json()
    for name, value in expected.items():
        got: Any = body
        for part in name.split("."):
            got = got[part]
        assert got == value, name


@pytest.mark.parametrize(
    ("field", "target_kind"),
    [
        ("structure_id", "landlord"),
        ("structure_id", "partner"),
        ("referrer_id", "insertion"),
        ("referrer_id", "landlord"),
    ],
)
async def test_candidate_reference_of_the_wrong_kind_is_a_conflict(
    client: httpx.AsyncClient,
    sessionmaker: Maker,
    insertion: dict[str, Any],
    field: str,
    target_kind: str,
) -> None:
    target = await create_structure(client, target_kind)
    payload = changed(candidate_payload(insertion["id"]), {field: target["id"]})
    response = await client.post("/v1/candidates", json=payload)
    body = assert_problem(response, 409, "wrong-reference-kind")
    assert body["field"] == field
    assert await count(sessionmaker, Candidate) == 0


async def test_candidate_referrer_that_is_a_partner_is_accepted(
    client: httpx.AsyncClient, insertion: dict[str, Any], partner: dict[str, Any]
) -> None:
    created = await create_candidate(client, insertion["id"], referrer_id=partner["id"])
    assert created["referrer_id"] == partner["id"]


@pytest.mark.parametrize("field", ["structure_id", "referrer_id"])
async def test_candidate_reference_to_nothing_is_invalid(
    client: httpx.AsyncClient, sessionmaker: Maker, insertion: dict[str, Any], field: str
) -> None:
    payload = changed(candidate_payload(insertion["id"]), {field: str(uuid.uuid4())})
    response = await client.post("/v1/candidates", json=payload)
    problem = assert_invalid(response)
    assert await count(sessionmaker, Candidate) == 0
    assert_error_at(problem, ("body", field))


async def test_candidate_patch_to_a_landlord_is_a_conflict(
    client: httpx.AsyncClient, candidate: dict[str, Any], landlord: dict[str, Any]
) -> None:
    url = f"/v1/candidates/{candidate['id']}"
    response = await client.patch(url, json={"structure_id": landlord["id"]})
    assert_problem(response, 409, "wrong-reference-kind")
    after = (await client.get(url)).json()
    assert after["structure_id"] == candidate["structure_id"]
    assert after["version"] == candidate["version"]


async def test_phase_cannot_be_patched(
    client: httpx.AsyncClient, candidate: dict[str, Any]
) -> None:
    url = f"/v1/candidates/{candidate['id']}"
    response = await client.patch(url, json={"phase": "employed"})
    problem = assert_invalid(response)
    after = (await client.get(url)).json()
    assert after["phase"] == "recruitment"
    assert after["version"] == candidate["version"]
    assert_error_at(problem, ("body", "phase"))


# --- vacancies -----------------------------------------------------------------------

MISSION = {"kind": "mission", "contract_type": "mission", "mission_type": "test_mission"}
KIND_RULE = (("body", "mission_type"), ("body", "contract_type"))

VACANCY_INVALID = [
    pytest.param({"positions": 0}, [("body", "positions")], id="positions-0"),
    pytest.param({"positions": -1}, [("body", "positions")], id="positions-negative"),
    pytest.param({"positions": 501}, [("body", "positions")], id="positions-501"),
    pytest.param({"positions": 1.5}, [("body", "positions")], id="positions-fraction"),
    pytest.param({"weekly_hours": 0}, [("body", "weekly_hours")], id="weekly-hours-0"),
    pytest.param({"weekly_hours": 61}, [("body", "weekly_hours")], id="weekly-hours-61"),
    pytest.param({"weekly_hours": 60.5}, [("body", "weekly_hours")], id="weekly-hours-60.5"),
    pytest.param(
        {"start_date": "2027-01-04", "end_date": "2027-01-03"},
        [("body", "end_date")],
        id="end-before-start",
    ),
    pytest.param({"start_date": OMIT}, [("body", "start_date")], id="start-date-missing"),
    pytest.param({"kind": "internship"}, [("body", "kind")], id="unknown-kind"),
    pytest.param({"contract_type": "freelance"}, [("body", "contract_type")], id="bad-contract"),
    pytest.param({**MISSION, "mission_type": OMIT}, KIND_RULE, id="mission-without-mission-type"),
    pytest.param({**MISSION, "contract_type": "cdi"}, KIND_RULE, id="mission-with-cdi"),
    pytest.param({**MISSION, "contract_type": "cdd"}, KIND_RULE, id="mission-with-cdd"),
    pytest.param({"contract_type": "mission"}, KIND_RULE, id="job-with-contract-mission"),
    pytest.param({"mission_type": "replacement"}, KIND_RULE, id="job-with-mission-type"),
    pytest.param(
        {**MISSION, "mission_type": "holiday"}, [("body", "mission_type")], id="unknown-mission"
    ),
    pytest.param({"rome_code": "K2502"}, [("body", "rome_code")], id="other-rome-code"),
    pytest.param(
        {"appellation_code": "99999"}, [("body", "appellation_code")], id="unknown-appellation"
    ),
    pytest.param({"status": "closed"}, [("body", "status")], id="created-closed"),
    pytest.param(
        {"required_competencies": {"plumbing": 1}},
        [("body", "required_competencies", "plumbing")],
        id="unknown-competency",
    ),
    pytest.param(
        {"required_competencies": {"safety_rounds": 4}},
        [("body", "required_competencies", "safety_rounds")],
        id="competency-level-4",
    ),
    pytest.param(
        {"required_competencies": {"safety_rounds": -1}},
        [("body", "required_competencies", "safety_rounds")],
        id="competency-level-minus-1",
    ),
    *bad_levels("required_competencies", "safety_rounds"),
    pytest.param(
        {"required_certification": "RNCP-40892"},
        [("body", "required_certification")],
        id="bad-rncp",
    ),
    pytest.param({"commune_insee": "20001"}, [INSEE], id="insee-20"),
    pytest.param({"commune_insee": "1234"}, [INSEE], id="insee-4-digits"),
    pytest.param({"latitude": 45.7}, COORDS, id="latitude-only"),
    pytest.param({"latitude": 45.7, "longitude": 200}, [LON], id="longitude-200"),
    pytest.param({"title": ""}, [("body", "title")], id="title-empty"),
    pytest.param({"title": "Gardien\nH/F"}, [("body", "title")], id="title-line-break"),
    pytest.param({"address_line": "\u200b"}, [("body", "address_line")], id="address-invisible"),
    pytest.param({"salary": 2000}, [("body", "salary")], id="unknown-field"),
]


@pytest.mark.parametrize(("changes", "locs"), VACANCY_INVALID)
async def test_vacancy_create_refuses(
    client: httpx.AsyncClient,
    sessionmaker: Maker,
    landlord: dict[str, Any],
    changes: dict[str, Any],
    locs: list[Loc],
) -> None:
    payload = changed(job_payload(landlord["id"]), changes)
    response = await client.post("/v1/vacancies", json=payload)
    problem = assert_invalid(response)
    assert await count(sessionmaker, Vacancy) == 0
    assert_error_at(problem, *locs)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({**MISSION, "mission_type": "work_mission"}, id="work-mission"),
        pytest.param({"contract_type": "professionalisation"}, id="professionalisation"),
        pytest.param({"positions": 500, "weekly_hours": 60}, id="upper-bounds"),
        pytest.param({"start_date": "2027-01-04", "end_date": "2027-01-04"}, id="one-day"),
    ],
)
async def test_vacancy_create_accepts(
    client: httpx.AsyncClient, landlord: dict[str, Any], changes: dict[str, Any]
) -> None:
    payload = changed(job_payload(landlord["id"]), changes)
    response = await client.post("/v1/vacancies", json=payload)
    assert response.status_code == 201, response.text
    body = response.json()
    assert {name: body[name] for name in changes} == changes


@pytest.mark.parametrize("target_kind", ["partner", "insertion"])
async def test_vacancy_landlord_of_the_wrong_kind_is_a_conflict(
    client: httpx.AsyncClient, sessionmaker: Maker, target_kind: str
) -> None:
    target = await create_structure(client, target_kind)
    response = await client.post("/v1/vacancies", json=vacancy_payload(target["id"]))
    body = assert_problem(response, 409, "wrong-reference-kind")
    assert body["field"] == "landlord_id"
    assert await count(sessionmaker, Vacancy) == 0


async def test_vacancy_landlord_that_does_not_exist_is_invalid(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    response = await client.post("/v1/vacancies", json=vacancy_payload(str(uuid.uuid4())))
    problem = assert_invalid(response)
    assert await count(sessionmaker, Vacancy) == 0
    assert_error_at(problem, ("body", "landlord_id"))


# --- placements ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "locs"),
    [
        pytest.param(
            {"start_date": "2027-02-01", "end_date": "2027-01-31"},
            [("body", "end_date")],
            id="end-before-start",
        ),
        pytest.param({"notes": "x" * 2001}, [("body", "notes")], id="notes-too-long"),
        pytest.param({"candidate_id": "not-a-uuid"}, [("body", "candidate_id")], id="bad-uuid"),
        pytest.param({"vacancy_id": OMIT}, [("body", "vacancy_id")], id="vacancy-missing"),
        pytest.param({"status": "accepted"}, [("body", "status")], id="status-given"),
    ],
)
async def test_placement_create_refuses(
    client: httpx.AsyncClient,
    sessionmaker: Maker,
    candidate: dict[str, Any],
    vacancy: dict[str, Any],
    changes: dict[str, Any],
    locs: list[Loc],
) -> None:
    payload = changed({"candidate_id": candidate["id"], "vacancy_id": vacancy["id"]}, changes)
    response = await client.post("/v1/placements", json=payload)
    problem = assert_invalid(response)
    assert await count(sessionmaker, Placement) == 0
    assert_error_at(problem, *locs)


@pytest.mark.parametrize("field", ["candidate_id", "vacancy_id"])
async def test_placement_reference_to_nothing_is_invalid(
    client: httpx.AsyncClient,
    sessionmaker: Maker,
    candidate: dict[str, Any],
    vacancy: dict[str, Any],
    field: str,
) -> None:
    payload = {"candidate_id": candidate["id"], "vacancy_id": vacancy["id"]}
    payload[field] = str(uuid.uuid4())
    response = await client.post("/v1/placements", json=payload)
    problem = assert_invalid(response)
    assert await count(sessionmaker, Placement) == 0
    assert_error_at(problem, ("body", field))


# --- PATCH ---------------------------------------------------------------------------

PATCH_INVALID = [
    # explicit null for a field that may be omitted but never emptied
    pytest.param("structure", {"name": None}, [("body", "name")], id="structure-name-null"),
    pytest.param("structure", {"siret": None}, [SIRET], id="structure-siret-null"),
    pytest.param("structure", {"commune_insee": None}, [INSEE], id="structure-insee-null"),
    pytest.param(
        "structure", {"sub_kind": None}, [("body", "sub_kind")], id="structure-sub-kind-null"
    ),
    pytest.param(
        "candidate", {"first_name": None}, [("body", "first_name")], id="candidate-name-null"
    ),
    pytest.param("candidate", {"birth_date": None}, [BIRTH], id="candidate-birth-date-null"),
    pytest.param(
        "candidate",
        {"structure_id": None},
        [("body", "structure_id")],
        id="candidate-structure-null",
    ),
    pytest.param(
        "candidate",
        {"consent_to_share": None},
        [("body", "consent_to_share")],
        id="candidate-consent-null",
    ),
    pytest.param(
        "candidate",
        {"competencies": None},
        [("body", "competencies")],
        id="candidate-competencies-null",
    ),
    pytest.param("vacancy", {"title": None}, [("body", "title")], id="vacancy-title-null"),
    pytest.param(
        "vacancy", {"positions": None}, [("body", "positions")], id="vacancy-positions-null"
    ),
    pytest.param(
        "vacancy", {"start_date": None}, [("body", "start_date")], id="vacancy-start-null"
    ),
    pytest.param("vacancy", {"status": None}, [("body", "status")], id="vacancy-status-null"),
    # coordinates made incomplete, against the stored other half
    pytest.param("structure", {"latitude": None}, COORDS, id="structure-drops-latitude"),
    pytest.param("candidate", {"longitude": None}, COORDS, id="candidate-drops-longitude"),
    pytest.param("vacancy", {"latitude": None}, COORDS, id="vacancy-drops-latitude"),
    # other rules, checked against the stored values
    pytest.param("structure", {"siret": "44306184100048"}, [SIRET], id="structure-bad-siret"),
    pytest.param(
        "structure", {"sub_kind": "OPH"}, [("body", "sub_kind")], id="structure-wrong-sub-kind"
    ),
    pytest.param("structure", {"kind": "landlord"}, [("body", "kind")], id="structure-kind"),
    pytest.param("candidate", {"email": "secret-person@@x"}, [EMAIL], id="candidate-bad-email"),
    pytest.param("candidate", {"birth_date": years_ago(10)}, [BIRTH], id="candidate-aged-10"),
    pytest.param(
        "candidate",
        {"certifications": [{"rncp_code": "RNCP40892", "status": "held"}] * 2},
        [("body", "certifications")],
        id="candidate-duplicate-rncp",
    ),
    pytest.param(
        "vacancy", {"end_date": "2026-12-31"}, [("body", "end_date")], id="vacancy-end-before"
    ),
    pytest.param("vacancy", {"contract_type": "cdi"}, KIND_RULE, id="mission-gets-job-contract"),
    pytest.param("vacancy", {"mission_type": None}, KIND_RULE, id="mission-loses-mission-type"),
    pytest.param("vacancy", {"weekly_hours": 61}, [("body", "weekly_hours")], id="vacancy-61h"),
    pytest.param("vacancy", {"landlord_id": None}, [("body", "landlord_id")], id="vacancy-owner"),
    pytest.param("vacancy", {"kind": "mission"}, [("body", "kind")], id="vacancy-kind"),
    pytest.param(
        "placement", {"end_date": "2027-01-03"}, [("body", "end_date")], id="placement-end-before"
    ),
    pytest.param("placement", {"status": "accepted"}, [("body", "status")], id="placement-status"),
]


@pytest.mark.parametrize(("resource", "changes", "locs"), PATCH_INVALID)
async def test_patch_refuses(
    client: httpx.AsyncClient,
    insertion: dict[str, Any],
    placement: dict[str, Any],
    resource: str,
    changes: dict[str, Any],
    locs: list[Loc],
) -> None:
    url = {
        "structure": f"/v1/structures/{insertion['id']}",
        "candidate": f"/v1/candidates/{placement['candidate_id']}",
        "vacancy": f"/v1/vacancies/{placement['vacancy_id']}",
        "placement": f"/v1/placements/{placement['id']}",
    }[resource]
    before = (await client.get(url)).json()

    response = await client.patch(url, json=changes)

    problem = assert_invalid(response)
    assert (await client.get(url)).json() == before
    assert_error_at(problem, *locs)


# --- list query parameters -----------------------------------------------------------

LISTS = ["/v1/structures", "/v1/candidates", "/v1/vacancies", "/v1/placements"]
MODELS: dict[str, type[Entity]] = {
    "/v1/structures": Structure,
    "/v1/candidates": Candidate,
    "/v1/vacancies": Vacancy,
    "/v1/placements": Placement,
}

QUERY_INVALID = [
    pytest.param({"colour": "blue"}, ("query", "colour"), id="unknown-parameter"),
    pytest.param({"limit": 0}, ("query", "limit"), id="limit-0"),
    pytest.param({"limit": 201}, ("query", "limit"), id="limit-201"),
    pytest.param({"limit": "ten"}, ("query", "limit"), id="limit-not-a-number"),
    pytest.param({"cursor": "not a cursor"}, ("query", "cursor"), id="cursor-garbage"),
    pytest.param({"cursor": "AAAA"}, ("query", "cursor"), id="cursor-too-short"),
    pytest.param({"cursor": "é" * 8}, ("query", "cursor"), id="cursor-not-ascii"),
    pytest.param({"cursor": "A" * 65}, ("query", "cursor"), id="cursor-too-long"),
    pytest.param(
        {"updated_since": "2026-01-31T00:00:00"}, ("query", "updated_since"), id="naive-time"
    ),
    pytest.param({"updated_since": "yesterday"}, ("query", "updated_since"), id="not-a-time"),
    # Valid RFC 3339, but before year 1 or after year 9999 once converted to UTC.
    pytest.param(
        {"updated_since": "0001-01-01T00:00:00+14:00"},
        ("query", "updated_since"),
        id="time-before-year-1-in-utc",
    ),
    pytest.param(
        {"updated_since": "9999-12-31T23:59:59-14:00"},
        ("query", "updated_since"),
        id="time-after-year-9999-in-utc",
    ),
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(("params", "loc"), QUERY_INVALID)
async def test_list_refuses_query(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], loc: Loc
) -> None:
    assert_error_at(assert_invalid(await client.get(path, params=params)), loc)


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/v1/structures", {"kind": "school"}, ("query", "kind")),
        ("/v1/structures", {"departement": "96x"}, ("query", "departement")),
        ("/v1/candidates", {"phase": "hired"}, ("query", "phase")),
        ("/v1/candidates", {"structure_id": "42"}, ("query", "structure_id")),
        ("/v1/vacancies", {"status": "published"}, ("query", "status")),
        ("/v1/vacancies", {"landlord_id": "abc"}, ("query", "landlord_id")),
        ("/v1/placements", {"status": "hired"}, ("query", "status")),
        ("/v1/placements", {"vacancy_id": "abc"}, ("query", "vacancy_id")),
    ],
)
async def test_list_refuses_bad_filter(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], loc: Loc
) -> None:
    assert_error_at(assert_invalid(await client.get(path, params=params)), loc)


# --- text the databases cannot both store --------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/structures", "name"),
        ("/v1/structures", "address_line"),
        ("/v1/candidates", "first_name"),
        ("/v1/vacancies", "description"),
        ("/v1/placements", "notes"),
    ],
)
async def test_nul_character_in_text_is_invalid(
    client: httpx.AsyncClient,
    sessionmaker: Maker,
    insertion: dict[str, Any],
    candidate: dict[str, Any],
    vacancy: dict[str, Any],
    path: str,
    name: str,
) -> None:
    """PostgreSQL cannot store U+0000 in text: it must be refused up front on both."""
    payload = {
        "/v1/structures": structure_payload(),
        "/v1/candidates": candidate_payload(insertion["id"]),
        "/v1/vacancies": vacancy_payload(vacancy["landlord_id"]),
        "/v1/placements": {"candidate_id": candidate["id"], "vacancy_id": vacancy["id"]},
    }[path]
    model = MODELS[path]
    rows_before = await count(sessionmaker, model)

    response = await client.post(path, json={**payload, name: "Les Tilleuls\u0000B"})

    problem = assert_invalid(response)
    assert await count(sessionmaker, model) == rows_before
    assert_error_at(problem, ("body", name))


# --- malformed and oversized bodies ----------------------------------------------------

MALFORMED = [
    pytest.param(b'{"name": ', id="truncated"),
    pytest.param(b'{"name": "x",}', id="trailing-comma"),
    pytest.param(b"{'name': 'x'}", id="single-quotes"),
    pytest.param(b"kind=insertion", id="form-encoded"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'"text"', id="string"),
    pytest.param(b"null", id="null"),
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("content", MALFORMED)
async def test_malformed_json_body_is_invalid(
    client: httpx.AsyncClient, sessionmaker: Maker, path: str, content: bytes
) -> None:
    response = await client.post(
        path, content=content, headers={"content-type": "application/json"}
    )
    problem = assert_invalid(response)
    assert await count(sessionmaker, MODELS[path]) == 0
    assert_error_at(problem, ("body",))
    # A syntax error says so, in the shape of every other: no byte offset as a field.
    if content[:1] not in (b"[", b'"', b"n") and content != b"kind=insertion":
        assert problem["errors"][0]["loc"] == ["body"]


async def test_malformed_json_patch_is_invalid(
    client: httpx.AsyncClient, insertion: dict[str, Any]
) -> None:
    url = f"/v1/structures/{insertion['id']}"
    response = await client.patch(
        url, content=b'{"name": "Renamed"', headers={"content-type": "application/json"}
    )
    assert_error_at(assert_invalid(response), ("body",))
    assert (await client.get(url)).json() == insertion


def _structure_json(**overrides: Any) -> str:
    return json.dumps(structure_payload(**overrides))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(_structure_json().encode().replace(b"fictional", b"fictional\xff"), id="0xff"),
        pytest.param(_structure_json().encode("utf-16"), id="utf-16"),
        pytest.param(_structure_json().encode("utf-16-le"), id="utf-16-no-bom"),
        pytest.param(_structure_json().encode("utf-32"), id="utf-32"),
        pytest.param(_structure_json(latitude=1.5).replace("1.5", "NaN").encode(), id="nan"),
        pytest.param(
            _structure_json(latitude=1.5).replace("1.5", "Infinity").encode(), id="infinity"
        ),
        pytest.param(b'{"name": ' + b"[" * 100_000, id="nested-too-deep"),
    ],
)
async def test_a_body_that_is_not_utf8_json_is_invalid(
    client: httpx.AsyncClient, sessionmaker: Maker, content: bytes
) -> None:
    """RFC 8259: UTF-8, and no NaN or Infinity; the same answer as any JSON syntax error."""
    response = await client.post(
        "/v1/structures", content=content, headers={"content-type": "application/json"}
    )
    problem = assert_invalid(response)
    assert problem["errors"] == [
        {"loc": ["body"], "message": "the body is not valid UTF-8 JSON", "type": "json_invalid"}
    ]
    assert await count(sessionmaker, Structure) == 0


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/x-www-form-urlencoded", id="form (curl -d)"),
        pytest.param("text/plain", id="text"),
        pytest.param(None, id="none"),
    ],
)
async def test_a_json_body_sent_as_another_type_names_the_content_type(
    client: httpx.AsyncClient, sessionmaker: Maker, content_type: str | None
) -> None:
    """A partner whose client sends valid JSON under the wrong Content-Type is told
    which header to fix, not that its body is not an object."""
    request = client.build_request("POST", "/v1/structures", content=_structure_json().encode())
    request.headers.pop("content-type", None)
    if content_type is not None:
        request.headers["content-type"] = content_type
    problem = assert_invalid(await client.send(request))
    assert problem["errors"] == [
        {
            "loc": ["header", "content-type"],
            "message": "send the body as application/json",
            "type": "media_type",
        }
    ]
    assert await count(sessionmaker, Structure) == 0


def padded_structure(size: int) -> bytes:
    """A valid structure payload, padded with JSON whitespace to exactly `size` bytes."""
    raw = json.dumps(structure_payload()).encode()
    return raw[:-1] + b" " * (size - len(raw)) + raw[-1:]


async def _chunks(content: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


async def test_body_at_the_size_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/structures",
        content=padded_structure(MAX_BODY_BYTES),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_size_limit_is_refused(
    client: httpx.AsyncClient, sessionmaker: Maker, streamed: bool
) -> None:
    content = padded_structure(MAX_BODY_BYTES + 1)
    response = await client.post(
        "/v1/structures",
        content=_chunks(content) if streamed else content,
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")
    assert await count(sessionmaker, Structure) == 0


# --- error bodies never echo what was rejected ----------------------------------------


@pytest.mark.parametrize(
    ("path", "changes"),
    [
        pytest.param("/v1/candidates", {"email": "secret-person@@x"}, id="email"),
        pytest.param("/v1/candidates", {"email": "secret.person@localhost"}, id="email-no-dot"),
        pytest.param("/v1/candidates", {"phone": "+99 secret 0000"}, id="phone"),
        pytest.param("/v1/candidates", {"first_name": "Secretname" * 11}, id="name-too-long"),
        pytest.param("/v1/candidates", {"birth_date": "secret-birthday"}, id="birth-date"),
        pytest.param("/v1/candidates", {"postcode": "secret"}, id="postcode"),
        pytest.param("/v1/candidates", {"nir": "190047512345678"}, id="unknown-field"),
        pytest.param("/v1/structures", {"siret": "SECRET-SIRET-1"}, id="siret"),
        pytest.param("/v1/structures", {"sub_kind": "secret-sub-kind"}, id="sub-kind"),
    ],
)
async def test_error_does_not_echo_the_rejected_value(
    client: httpx.AsyncClient, insertion: dict[str, Any], path: str, changes: dict[str, Any]
) -> None:
    base = candidate_payload(insertion["id"]) if path == "/v1/candidates" else structure_payload()
    response = await client.post(path, json=changed(base, changes))
    assert_invalid(response)
    for value in changes.values():
        assert str(value) not in response.text


async def test_a_choice_part_of_an_allowed_value_is_told_the_allowed_values(
    client: httpx.AsyncClient,
) -> None:
    """`moved` is a piece of `moved_away`: the message still lists what to send (it
    answered "this value is not accepted here", taking the list for an echo)."""
    candidate = await create_candidate(client)
    response = await client.post(
        f"/v1/candidates/{candidate['id']}/transitions", json={"to": "exited", "reason": "moved"}
    )
    problem = assert_invalid(response)
    assert problem["errors"][0]["loc"] == ["body", "reason"]
    assert "'moved_away'" in problem["errors"][0]["message"]
    response = await client.get("/v1/events", params={"types": "candidate"})
    problem = assert_invalid(response)
    assert problem["errors"][0]["loc"] == ["query", "types", "0"]
    assert "'candidate.created'" in problem["errors"][0]["message"]


SECRET = "Jean Dupont, 1985-01-02, jean.dupont@example.org"


async def test_a_bad_tag_is_not_echoed(client: httpx.AsyncClient) -> None:
    """A discriminator's message names the tags it expects, never the one it got."""
    candidate = await create_candidate(client)
    response = await client.post(
        f"/v1/candidates/{candidate['id']}/activities",
        json={"type": SECRET, "occurred_on": "2026-01-05", "outcome": "positive"},
    )
    problem = assert_invalid(response)
    assert SECRET not in response.text
    assert "Jean" not in response.text
    assert "work_trial" in json.dumps(problem["errors"])  # what to send instead
    assert_error_at(problem, ("body", "type"))


async def test_a_huge_bad_tag_is_not_sent_back(client: httpx.AsyncClient) -> None:
    candidate = await create_candidate(client)
    response = await client.post(
        f"/v1/candidates/{candidate['id']}/activities",
        json={"type": "x" * 900_000, "occurred_on": "2026-01-05", "outcome": "positive"},
    )
    assert_invalid(response)
    assert len(response.content) < 10_000


async def test_unknown_scopes_are_named_by_position(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/clients",
        json={"name": "partner", "role": "admin", "scopes": ["candidates:read", SECRET]},
    )
    problem = assert_invalid(response)
    assert "Jean" not in response.text
    assert "positions 1" in json.dumps(problem["errors"])
    assert_error_at(problem, ("body", "scopes"))


async def test_an_enum_error_lists_values_not_python_names(
    client: httpx.AsyncClient, landlord: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/vacancies", json=vacancy_payload(landlord["id"], status="closed")
    )
    problem = assert_invalid(response)
    messages = json.dumps(problem["errors"])
    assert "VacancyStatus" not in messages
    assert "'draft'" in messages
    assert_error_at(problem, ("body", "status"))


async def test_an_email_error_quotes_none_of_its_characters(
    client: httpx.AsyncClient, insertion: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/candidates", json=candidate_payload(insertion["id"], email="jeanne@dup@ont.fr")
    )
    problem = assert_invalid(response)
    (error,) = problem["errors"]
    assert error["message"].startswith("value is not a valid email address")
    assert "'@'" not in error["message"]
    assert "dup" not in response.text


async def test_unknown_assignment_vacancies_are_counted_in_plain_words(
    client: httpx.AsyncClient,
) -> None:
    """One unknown vacancy reads "1 vacancy is", not "1 vacancies are"."""
    for ids, message in [
        ([uuid.uuid4()], "1 vacancy is unknown, not open or already full"),
        ([uuid.uuid4(), uuid.uuid4()], "2 vacancies are unknown, not open or already full"),
    ]:
        response = await client.post(
            "/v1/matching/assignments", json={"scope": {"vacancy_ids": [str(i) for i in ids]}}
        )
        problem = assert_invalid(response)
        assert problem["errors"] == [
            {"loc": ["body", "scope", "vacancy_ids"], "message": message, "type": "value_error"}
        ]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/events?after=0&after=2", "after"),
        ("/v1/events?limit=1&limit=2", "limit"),
        (
            "/v1/candidates?updated_since=2026-01-01T00:00:00Z&updated_since=2026-02-01T00:00:00Z",
            "updated_since",
        ),
        ("/v1/structures?limit=1&limit=50", "limit"),
    ],
)
async def test_a_one_value_query_parameter_given_twice_is_refused(
    client: httpx.AsyncClient, path: str, name: str
) -> None:
    """The last value won: `after=0&after=2` read the feed after position 2, skipping
    what the partner's URL builder meant to ask for."""
    problem = assert_invalid(await client.get(path))
    assert problem["errors"] == [
        {"loc": ["query", name], "message": "give this parameter once", "type": "repeated"}
    ]


async def test_a_list_query_parameter_may_repeat(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/events", params=[("types", "candidate.created"), ("types", "vacancy.created")]
    )
    assert response.status_code == 200, response.text


async def test_a_name_that_would_not_show_on_one_line_is_told_why(
    client: httpx.AsyncClient, insertion: dict[str, Any]
) -> None:
    payload = candidate_payload(insertion["id"], first_name="Jean\nDupont")
    problem = assert_invalid(await client.post("/v1/candidates", json=payload))
    [error] = problem["errors"]
    assert error["message"].startswith("one line of visible text"), error
    assert "Dupont" not in str(problem)
