"""The four resources as a client sees them: create, read, update, delete, list."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Phase, PlacementStatus
from app.models import Candidate, Placement
from app.models.base import Entity
from tests.factories import (
    JOB,
    candidate_payload,
    create,
    create_candidate,
    create_structure,
    create_vacancy,
    structure_payload,
    vacancy_payload,
)

PROBLEM_JSON = "application/problem+json"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$")

Maker = async_sessionmaker[AsyncSession]
Json = dict[str, Any]


# --- helpers -------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int, slug: str) -> Json:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: Json = response.json()
    assert body["type"] == f"urn:tremplin:problem:{slug}"
    assert body["status"] == status
    return body


def assert_utc_timestamp(value: str) -> dt.datetime:
    assert RFC3339_UTC.match(value), value
    return dt.datetime.fromisoformat(value)


async def count(sessionmaker: Maker, model: type[Entity]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def set_column(sessionmaker: Maker, model: type[Entity], id_: str, **values: Any) -> None:
    """Put a row in a state the API cannot reach yet (e.g. a later phase)."""
    async with sessionmaker() as session:
        await session.execute(update(model).where(model.id == uuid.UUID(id_)).values(**values))
        await session.commit()


async def list_ids(client: httpx.AsyncClient, path: str, **params: Any) -> set[str]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    return {item["id"] for item in page["items"]}


async def propose(
    client: httpx.AsyncClient, candidate_id: str, vacancy_id: str, **extra: Any
) -> Json:
    return await create(
        client, "/v1/placements", {"candidate_id": candidate_id, "vacancy_id": vacancy_id, **extra}
    )


# --- one table for what every resource shares ------------------------------------------


async def _structure_body(client: httpx.AsyncClient) -> Json:
    return structure_payload("landlord", sub_kind="ESH")


async def _candidate_body(client: httpx.AsyncClient) -> Json:
    structure = await create_structure(client, "insertion")
    return candidate_payload(structure["id"], phone="+33600000001", latitude=49.4, longitude=1.1)


async def _vacancy_body(client: httpx.AsyncClient) -> Json:
    landlord = await create_structure(client, "landlord")
    return vacancy_payload(landlord["id"], positions=2, weekly_hours=38.5, onsite_housing=True)


async def _placement_body(client: httpx.AsyncClient) -> Json:
    candidate = await create_candidate(client)
    vacancy = await create_vacancy(client)
    return {
        "candidate_id": candidate["id"],
        "vacancy_id": vacancy["id"],
        "start_date": "2027-01-04",
        "notes": "Met the site manager.",
    }


@dataclass(frozen=True)
class Resource:
    path: str
    id_param: str
    body: Callable[[httpx.AsyncClient], Awaitable[Json]]
    change: Json = field(default_factory=dict)

    async def create(self, client: httpx.AsyncClient) -> Json:
        return await create(client, self.path, await self.body(client))


RESOURCES = [
    pytest.param(
        Resource("/v1/structures", "structure_id", _structure_body, {"name": "OPH Rouen"}),
        id="structure",
    ),
    pytest.param(
        Resource("/v1/candidates", "candidate_id", _candidate_body, {"first_name": "Dominique"}),
        id="candidate",
    ),
    pytest.param(
        Resource("/v1/vacancies", "vacancy_id", _vacancy_body, {"positions": 3}), id="vacancy"
    ),
    pytest.param(
        Resource("/v1/placements", "placement_id", _placement_body, {"notes": "Interview soon."}),
        id="placement",
    ),
]

DELETABLE = [p for p in RESOURCES if p.id != "placement"]  # placements are never deleted


def created_values(created: Json, resource: Resource) -> Json:
    """A PATCH body putting back what the resource was created with."""
    return {name: created[name] for name in resource.change}


@pytest.mark.parametrize("resource", RESOURCES)
async def test_create_answers_the_stored_representation(
    client: httpx.AsyncClient, resource: Resource
) -> None:
    payload = await resource.body(client)

    response = await client.post(resource.path, json=payload)

    assert response.status_code == 201, response.text
    body = response.json()
    # A candidate's entered_at is stored as the first row of their history, not a field.
    stored = {name: value for name, value in payload.items() if name != "entered_at"}
    assert {name: body[name] for name in stored} == stored
    assert body["version"] == 1
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"{resource.path}/{body['id']}"
    created = assert_utc_timestamp(body["created_at"])
    assert assert_utc_timestamp(body["updated_at"]) == created
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=1)

    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'


@pytest.mark.parametrize("resource", RESOURCES)
async def test_unknown_id_is_not_found(client: httpx.AsyncClient, resource: Resource) -> None:
    url = f"{resource.path}/{uuid.uuid4()}"
    assert_problem(await client.get(url), 404, "not-found")
    assert_problem(await client.patch(url, json=resource.change), 404, "not-found")


@pytest.mark.parametrize("resource", DELETABLE)
async def test_delete_unknown_id_is_not_found(
    client: httpx.AsyncClient, resource: Resource
) -> None:
    assert_problem(await client.delete(f"{resource.path}/{uuid.uuid4()}"), 404, "not-found")


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("bad_id", ["42", "not-a-uuid", "0193-7000"])
async def test_malformed_id_is_invalid(
    client: httpx.AsyncClient, resource: Resource, bad_id: str
) -> None:
    response = await client.get(f"{resource.path}/{bad_id}")
    problem = assert_problem(response, 422, "validation-error")
    assert ["path", resource.id_param] in [error["loc"] for error in problem["errors"]]


@pytest.mark.parametrize("resource", RESOURCES)
async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, resource: Resource
) -> None:
    before = await resource.create(client)
    url = f"{resource.path}/{before['id']}"

    response = await client.patch(url, json=resource.change)

    assert response.status_code == 200, response.text
    after = response.json()
    assert response.headers["etag"] == '"2"'
    assert after["version"] == 2
    assert {name: after[name] for name in resource.change} == resource.change
    untouched = set(before) - set(resource.change) - {"version", "updated_at"}
    assert {n: after[n] for n in untouched} == {n: before[n] for n in untouched}
    assert assert_utc_timestamp(after["updated_at"]) > dt.datetime.fromisoformat(
        before["updated_at"]
    )
    fetched = await client.get(url)
    assert fetched.json() == after
    assert fetched.headers["etag"] == '"2"'


@pytest.mark.parametrize("resource", RESOURCES)
async def test_patch_with_stale_if_match_changes_nothing(
    client: httpx.AsyncClient, resource: Resource
) -> None:
    created = await resource.create(client)
    url = f"{resource.path}/{created['id']}"
    first = await client.patch(url, json=resource.change, headers={"If-Match": '"1"'})
    assert first.status_code == 200, first.text
    current = first.json()

    stale = await client.patch(
        url, json=created_values(created, resource), headers={"If-Match": '"1"'}
    )

    assert_problem(stale, 412, "precondition-failed")
    assert (await client.get(url)).json() == current


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(
    "if_match",
    ['"01"', '" 1"', 'W/"1"', "1", '"' + "9" * 5000 + '"', '"' + "9" * 20 + '", "01"'],
)
async def test_patch_with_an_if_match_not_exactly_our_tag_fails(
    client: httpx.AsyncClient, resource: Resource, if_match: str
) -> None:
    """Strong comparison: only the exact tag matches; not another spelling of the
    number, nor one too long to be a version (never a 500)."""
    created = await resource.create(client)
    url = f"{resource.path}/{created['id']}"

    response = await client.patch(url, json=resource.change, headers={"If-Match": if_match})

    assert_problem(response, 412, "precondition-failed")
    assert (await client.get(url)).json() == created


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("if_match", ['"1"', '"7", "1"', "*"])
async def test_patch_with_matching_if_match_succeeds(
    client: httpx.AsyncClient, resource: Resource, if_match: str
) -> None:
    created = await resource.create(client)
    url = f"{resource.path}/{created['id']}"

    response = await client.patch(url, json=resource.change, headers={"If-Match": if_match})

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    again = await client.patch(
        url, json=created_values(created, resource), headers={"If-Match": response.headers["etag"]}
    )
    assert again.status_code == 200, again.text
    assert again.headers["etag"] == '"3"'


@pytest.mark.parametrize("resource", DELETABLE)
async def test_delete_with_stale_if_match_keeps_the_resource(
    client: httpx.AsyncClient, resource: Resource
) -> None:
    created = await resource.create(client)
    url = f"{resource.path}/{created['id']}"
    assert (await client.patch(url, json=resource.change)).status_code == 200

    assert_problem(
        await client.delete(url, headers={"If-Match": '"1"'}), 412, "precondition-failed"
    )

    assert (await client.get(url)).status_code == 200
    response = await client.delete(url, headers={"If-Match": '"2"'})
    assert response.status_code == 204
    assert_problem(await client.get(url), 404, "not-found")


@pytest.mark.parametrize("resource", DELETABLE)
async def test_delete_unreferenced_resource(client: httpx.AsyncClient, resource: Resource) -> None:
    created = await resource.create(client)
    url = f"{resource.path}/{created['id']}"

    response = await client.delete(url)

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(url), 404, "not-found")
    assert_problem(await client.delete(url), 404, "not-found")


# --- structures ------------------------------------------------------------------------


async def test_structure_territory_is_derived_from_the_commune(
    client: httpx.AsyncClient,
) -> None:
    created = await create_structure(client)  # Rouen
    assert (created["departement"], created["region"]) == ("76", "28")
    url = f"/v1/structures/{created['id']}"

    response = await client.patch(url, json={"commune_insee": "2B033", "postcode": "20200"})

    assert response.status_code == 200, response.text
    assert (response.json()["departement"], response.json()["region"]) == ("2B", "94")
    assert await list_ids(client, "/v1/structures", departement="2B") == {created["id"]}
    assert await list_ids(client, "/v1/structures", departement="76") == set()


@pytest.mark.parametrize(
    ("referenced_kind", "reference"),
    [("insertion", "structure_id"), ("partner", "referrer_id"), ("landlord", "landlord_id")],
)
async def test_delete_referenced_structure_is_refused(
    client: httpx.AsyncClient, referenced_kind: str, reference: str
) -> None:
    structure = await create_structure(client, referenced_kind)
    if reference == "landlord_id":
        await create_vacancy(client, structure["id"])
    elif reference == "referrer_id":
        await create_candidate(client, referrer_id=structure["id"])
    else:
        await create_candidate(client, structure["id"])
    url = f"/v1/structures/{structure['id']}"

    refused = await client.delete(url)
    assert_problem(refused, 409, "resource-in-use")
    # The caller learns what still refers to it, not only that something does.
    named = "vacancies" if reference == "landlord_id" else "candidates"
    assert f"({named})" in refused.json()["detail"], refused.json()

    still = await client.get(url)
    assert still.status_code == 200
    assert still.json() == structure


# --- candidates ------------------------------------------------------------------------


async def test_candidate_starts_in_recruitment(client: httpx.AsyncClient) -> None:
    candidate = await create_candidate(
        client, commune_insee="97411", postcode="97400", entered_at=None
    )

    assert candidate["phase"] == "recruitment"
    assert candidate["departement"] == "974"
    assert candidate["region"] == "04"
    phase_changed = assert_utc_timestamp(candidate["phase_changed_at"])
    assert abs(phase_changed - dt.datetime.fromisoformat(candidate["created_at"])) < dt.timedelta(
        seconds=5
    )
    # An imported path began when the structure says it did.
    imported = await create_candidate(client, entered_at="2019-03-04T08:30:00Z")
    assert imported["phase_changed_at"] == "2019-03-04T08:30:00Z"


async def test_candidate_consent_time_follows_consent(client: httpx.AsyncClient) -> None:
    without = await create_candidate(client, consent_to_share=False)
    assert without["consent_given_at"] is None

    candidate = await create_candidate(client, consent_to_share=True)
    given = assert_utc_timestamp(candidate["consent_given_at"])
    url = f"/v1/candidates/{candidate['id']}"

    unchanged = await client.patch(url, json={"consent_to_share": True, "max_commute_km": 40})
    assert unchanged.json()["consent_given_at"] == candidate["consent_given_at"]

    withdrawn = (await client.patch(url, json={"consent_to_share": False})).json()
    assert withdrawn["consent_to_share"] is False
    assert withdrawn["consent_given_at"] is None

    again = (await client.patch(url, json={"consent_to_share": True})).json()
    assert again["consent_to_share"] is True
    assert assert_utc_timestamp(again["consent_given_at"]) > given
    assert (await client.get(url)).json() == again


async def test_candidate_patch_moves_the_territory(client: httpx.AsyncClient) -> None:
    candidate = await create_candidate(client)
    url = f"/v1/candidates/{candidate['id']}"

    response = await client.patch(url, json={"commune_insee": "2A004", "postcode": "20000"})

    assert response.status_code == 200, response.text
    assert (response.json()["departement"], response.json()["region"]) == ("2A", "94")


async def test_candidate_certifications_and_competencies_round_trip(
    client: httpx.AsyncClient,
) -> None:
    certifications = [
        {"rncp_code": "RNCP40892", "status": "in_progress", "date": "2027-06-30"},
        {"rncp_code": "RNCP40262", "status": "held", "date": None},
    ]
    candidate = await create_candidate(
        client, certifications=certifications, competencies={"mediation": 2}
    )
    assert candidate["certifications"] == certifications
    assert candidate["competencies"]["mediation"] == 2
    assert candidate["competencies"]["cleaning_hygiene"] == 0

    url = f"/v1/candidates/{candidate['id']}"
    response = await client.patch(url, json={"competencies": {"cleaning_hygiene": 3}})

    after = response.json()
    assert after["competencies"]["cleaning_hygiene"] == 3
    assert after["competencies"]["mediation"] == 0  # the levels are replaced as a whole
    assert after["certifications"] == certifications


async def test_a_patched_certification_without_a_date_reads_back(
    client: httpx.AsyncClient,
) -> None:
    """Found by the contract fuzzer: an entry's left-out `date` was dropped from the stored
    JSON, and reading the person back answered 500."""
    candidate = await create_candidate(client)
    url = f"/v1/candidates/{candidate['id']}"
    patched = await client.patch(
        url, json={"certifications": [{"rncp_code": "RNCP40892", "status": "held"}]}
    )
    assert patched.status_code == 200, patched.text
    expected = [{"rncp_code": "RNCP40892", "status": "held", "date": None}]
    assert patched.json()["certifications"] == expected
    assert (await client.get(url)).json()["certifications"] == expected


# --- placements and what they hold -------------------------------------------------------


async def test_placement_is_created_proposed(client: httpx.AsyncClient) -> None:
    candidate = await create_candidate(client)
    vacancy = await create_vacancy(client)

    response = await client.post(
        "/v1/placements", json={"candidate_id": candidate["id"], "vacancy_id": vacancy["id"]}
    )

    assert response.status_code == 201, response.text
    placement = response.json()
    assert placement["status"] == "proposed"
    assert placement["start_date"] is None
    assert response.headers["location"] == f"/v1/placements/{placement['id']}"
    proposed = assert_utc_timestamp(placement["proposed_at"])
    assert abs(dt.datetime.now(dt.UTC) - proposed) < dt.timedelta(minutes=1)


async def test_second_open_placement_for_the_same_pair_is_a_conflict(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    candidate = await create_candidate(client)
    vacancy = await create_vacancy(client)
    first = await propose(client, candidate["id"], vacancy["id"])

    response = await client.post(
        "/v1/placements", json={"candidate_id": candidate["id"], "vacancy_id": vacancy["id"]}
    )

    assert_problem(response, 409, "duplicate")
    assert await count(sessionmaker, Placement) == 1

    # Once the first is closed (withdrawn), the person may be proposed again.
    await set_column(sessionmaker, Placement, first["id"], status=PlacementStatus.WITHDRAWN)
    again = await client.post(
        "/v1/placements", json={"candidate_id": candidate["id"], "vacancy_id": vacancy["id"]}
    )
    assert again.status_code == 201, again.text


@pytest.mark.parametrize("status", ["draft", "closed", "cancelled"])
async def test_placement_on_a_vacancy_that_is_not_open_is_a_conflict(
    client: httpx.AsyncClient, sessionmaker: Maker, status: str
) -> None:
    candidate = await create_candidate(client)
    vacancy = await create_vacancy(client, status="draft" if status == "draft" else "open")
    if status != "draft":
        patched = await client.patch(f"/v1/vacancies/{vacancy['id']}", json={"status": status})
        assert patched.status_code == 200, patched.text

    response = await client.post(
        "/v1/placements", json={"candidate_id": candidate["id"], "vacancy_id": vacancy["id"]}
    )

    assert_problem(response, 409, "vacancy-not-open")
    assert await count(sessionmaker, Placement) == 0


async def test_placements_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    placement = await propose(
        client, (await create_candidate(client))["id"], (await create_vacancy(client))["id"]
    )
    url = f"/v1/placements/{placement['id']}"

    assert_problem(await client.delete(url), 405, "method-not-allowed")

    assert (await client.get(url)).json() == placement


@pytest.mark.parametrize("held_by", ["candidate", "vacancy"])
async def test_delete_of_a_placed_candidate_or_vacancy_is_refused(
    client: httpx.AsyncClient, held_by: str
) -> None:
    """A vacancy with placements stays (close or cancel it); a person is erased whatever
    their history (tests/test_data_rights.py), their placements kept without them."""
    candidate = await create_candidate(client)
    vacancy = await create_vacancy(client)
    placement = await propose(client, candidate["id"], vacancy["id"])
    held = candidate if held_by == "candidate" else vacancy
    url = f"/v1/{'candidates' if held_by == 'candidate' else 'vacancies'}/{held['id']}"

    if held_by == "candidate":
        assert (await client.delete(url)).status_code == 204
        assert_problem(await client.get(url), 404, "not-found")
        kept = (await client.get(f"/v1/placements/{placement['id']}")).json()
        assert kept["status"] == "withdrawn"
        return
    refused = await client.delete(url)
    assert_problem(refused, 409, "resource-in-use")
    assert "close or cancel it instead" in refused.json()["detail"], refused.json()

    assert (await client.get(url)).json() == held


# --- lists -----------------------------------------------------------------------------


async def test_structures_filter_by_kind_and_departement(client: httpx.AsyncClient) -> None:
    insertion = (await create_structure(client, "insertion"))["id"]  # Rouen, 76
    landlord = (await create_structure(client, "landlord", commune_insee="69388"))["id"]
    partner = (await create_structure(client, "partner", commune_insee="2A004"))["id"]
    path = "/v1/structures"

    assert await list_ids(client, path) == {insertion, landlord, partner}
    assert await list_ids(client, path, kind="landlord") == {landlord}
    assert await list_ids(client, path, kind="partner") == {partner}
    assert await list_ids(client, path, departement="2A") == {partner}
    assert await list_ids(client, path, departement="76", kind="insertion") == {insertion}
    assert await list_ids(client, path, departement="69", kind="insertion") == set()


async def test_candidates_filter_by_structure_phase_and_departement(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    s1 = (await create_structure(client))["id"]
    s2 = (await create_structure(client))["id"]
    c1 = (await create_candidate(client, s1))["id"]  # Rouen, 76
    c2 = (await create_candidate(client, s2, commune_insee="69388", postcode="69008"))["id"]
    c3 = (await create_candidate(client, s1, commune_insee="2A004", postcode="20000"))["id"]
    await set_column(sessionmaker, Candidate, c3, phase=Phase.SUPPORT)
    path = "/v1/candidates"

    assert await list_ids(client, path, structure_id=s1) == {c1, c3}
    assert await list_ids(client, path, structure_id=s2) == {c2}
    assert await list_ids(client, path, phase="support") == {c3}
    assert await list_ids(client, path, phase="recruitment") == {c1, c2}
    assert await list_ids(client, path, phase="employed") == set()
    assert await list_ids(client, path, departement="69") == {c2}
    assert await list_ids(client, path, structure_id=s1, phase="recruitment") == {c1}


async def test_vacancies_filter_by_landlord_kind_status_and_departement(
    client: httpx.AsyncClient,
) -> None:
    l1 = (await create_structure(client, "landlord"))["id"]
    l2 = (await create_structure(client, "landlord"))["id"]
    v1 = (await create_vacancy(client, l1, **JOB))["id"]  # job, open, Lyon 69
    mission = {"kind": "mission", "contract_type": "mission", "mission_type": "replacement"}
    v2 = (await create_vacancy(client, l1, status="draft", commune_insee="76540", **mission))["id"]
    v3 = (await create_vacancy(client, l2, status="draft", commune_insee="97411", **JOB))["id"]
    path = "/v1/vacancies"

    assert await list_ids(client, path, landlord_id=l1) == {v1, v2}
    assert await list_ids(client, path, landlord_id=l2) == {v3}
    assert await list_ids(client, path, kind="mission") == {v2}
    assert await list_ids(client, path, kind="job") == {v1, v3}
    assert await list_ids(client, path, status="draft") == {v2, v3}
    assert await list_ids(client, path, status="closed") == set()
    assert await list_ids(client, path, departement="974") == {v3}
    assert await list_ids(client, path, landlord_id=l1, status="open") == {v1}


async def test_placements_filter_by_candidate_vacancy_and_status(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    c1 = (await create_candidate(client))["id"]
    c2 = (await create_candidate(client))["id"]
    v1 = (await create_vacancy(client))["id"]
    v2 = (await create_vacancy(client))["id"]
    p1 = (await propose(client, c1, v1))["id"]
    p2 = (await propose(client, c1, v2))["id"]
    p3 = (await propose(client, c2, v1))["id"]
    await set_column(sessionmaker, Placement, p3, status=PlacementStatus.WITHDRAWN)
    path = "/v1/placements"

    assert await list_ids(client, path, candidate_id=c1) == {p1, p2}
    assert await list_ids(client, path, candidate_id=c2) == {p3}
    assert await list_ids(client, path, vacancy_id=v1) == {p1, p3}
    assert await list_ids(client, path, status="withdrawn") == {p3}
    assert await list_ids(client, path, status="proposed") == {p1, p2}
    assert await list_ids(client, path, vacancy_id=v1, status="proposed") == {p1}


@pytest.mark.parametrize("resource", RESOURCES)
async def test_list_pages_through_every_row_once(
    client: httpx.AsyncClient, resource: Resource
) -> None:
    created = {(await resource.create(client))["id"] for _ in range(3)}

    first = (await client.get(resource.path, params={"limit": 2})).json()
    second = (
        await client.get(resource.path, params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()

    assert len(first["items"]) == 2
    assert first["next_cursor"]
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    seen = [item["id"] for item in first["items"] + second["items"]]
    assert sorted(seen) == sorted(created)


@pytest.mark.parametrize("resource", RESOURCES)
async def test_updated_since_returns_rows_changed_at_or_after(
    client: httpx.AsyncClient, resource: Resource
) -> None:
    early = await resource.create(client)
    late = await resource.create(client)
    changed = (await client.patch(f"{resource.path}/{early['id']}", json=resource.change)).json()
    changed_at = dt.datetime.fromisoformat(changed["updated_at"])
    late_at = dt.datetime.fromisoformat(late["updated_at"])
    assert late_at < changed_at

    def since(instant: dt.datetime) -> Awaitable[set[str]]:
        return list_ids(client, resource.path, updated_since=instant.isoformat())

    assert await since(late_at) == {early["id"], late["id"]}
    assert await since(changed_at) == {early["id"]}
    paris = changed_at.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert await since(paris) == {early["id"]}
    assert await since(changed_at + dt.timedelta(microseconds=1)) == set()


@pytest.mark.parametrize("resource", DELETABLE)
async def test_a_delete_answers_204_with_no_body_and_no_content_type(
    client: httpx.AsyncClient, resource: Resource
) -> None:
    created = await resource.create(client)
    response = await client.delete(f"{resource.path}/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_trailing_slash_is_another_path_not_a_redirect(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/v1/candidates/")
    assert_problem(response, 404, "not-found")
    assert "location" not in response.headers


async def test_a_refused_structure_deletion_names_every_kind_of_record_in_the_way(
    client: httpx.AsyncClient,
) -> None:
    structure = await create_structure(client, "insertion")
    await create_candidate(client, structure["id"])
    made = await client.post(
        "/v1/clients", json={"name": "SIAE", "role": "insertion", "structure_id": structure["id"]}
    )
    assert made.status_code == 201, made.text
    refused = await client.delete(f"/v1/structures/{structure['id']}")
    assert_problem(refused, 409, "resource-in-use")
    assert "(API clients, candidates)" in refused.json()["detail"], refused.json()
