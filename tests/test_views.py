"""What each role sees of a candidate: full, reduced (landlords) and referral (prescribers)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.access_helpers import accept_placement, build_world, is_problem, propose
from tests.conftest import client_as
from tests.factories import candidate_payload, create_candidate, referral_payload

ENTITY_KEYS = {"id", "created_at", "updated_at", "version", "view"}
# No created_at: when the record was made tells how long the person has waited.
REDUCED_KEYS = (ENTITY_KEYS - {"created_at"}) | {
    "first_name",
    "last_name_initial",
    "commune_insee",
    "commune_name",
    "departement",
    "competencies",
    "certifications",
    "phase",
}
REFERRAL_KEYS = ENTITY_KEYS | {
    "first_name",
    "last_name",
    "structure_id",
    "phase",
    "phase_changed_at",
}
PERSONAL_FIELDS = {"birth_date", "email", "phone", "last_name", "postcode", "latitude", "longitude"}


def ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_landlord_reduced_view_until_acceptance(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    person = await create_candidate(
        client,
        world.insertion_id,
        first_name="Maëlle",
        last_name="Durand",
        commune_name="Rouen",
        latitude=49.44,
        longitude=1.09,
        competencies={"cleaning_hygiene": 2},
        certifications=[{"rncp_code": "RNCP40892", "status": "in_progress"}],
    )
    placement = await propose(client, person["id"], world.vacancy_id)

    async with await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord:
        reduced = await landlord.get(f"/v1/candidates/{person['id']}")
        assert reduced.status_code == 200, reduced.text
        body = reduced.json()
        assert set(body) == REDUCED_KEYS
        assert not PERSONAL_FIELDS & set(body)
        assert body["view"] == "reduced"
        assert body["first_name"] == "Maëlle"
        assert body["last_name_initial"] == "D."
        assert body["departement"] == "76"
        assert body["competencies"]["cleaning_hygiene"] == 2
        assert body["certifications"][0]["rncp_code"] == "RNCP40892"
        for secret in ("Durand", "camille@example.org", "1990-04-12", "49.44"):
            assert secret not in reduced.text
        [listed] = (await landlord.get("/v1/candidates")).json()["items"]
        assert listed == body

        await accept_placement(client, placement["id"])

        full = await landlord.get(f"/v1/candidates/{person['id']}")
        assert full.status_code == 200
        assert full.json()["view"] == "full"
        assert full.json()["last_name"] == "Durand"
        assert full.json()["birth_date"] == "1990-04-12"
        assert full.json()["email"] == "camille@example.org"
        assert full.json() == (await client.get(f"/v1/candidates/{person['id']}")).json()
        [listed] = (await landlord.get("/v1/candidates")).json()["items"]
        assert listed["view"] == "full"


async def test_landlord_list_mixes_views_per_person(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    accepted = await create_candidate(client, world.insertion_id, first_name="Ana")
    pending = await create_candidate(client, world.insertion_id, first_name="Bao")
    to_accept = await propose(client, accepted["id"], world.vacancy_id)
    # Proposed before the acceptance fills the vacancy's only position.
    await propose(client, pending["id"], world.vacancy_id)
    await accept_placement(client, to_accept["id"])
    async with await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord:
        items = (await landlord.get("/v1/candidates")).json()["items"]
    views = {item["id"]: item["view"] for item in items}
    assert views == {accepted["id"]: "full", pending["id"]: "reduced"}


async def test_acceptance_by_another_landlord_does_not_open_the_profile(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    person = await create_candidate(client, world.insertion_id)
    await propose(client, person["id"], world.vacancy_id)
    elsewhere = await propose(client, person["id"], world.other_vacancy_id)
    await accept_placement(client, elsewhere["id"])
    async with await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord:
        response = await landlord.get(f"/v1/candidates/{person['id']}")
    assert response.json()["view"] == "reduced"
    assert "birth_date" not in response.json()


async def test_landlord_never_sees_a_candidate_not_proposed_to_it(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    proposed = await create_candidate(client, world.insertion_id, first_name="Proposée")
    unproposed = await create_candidate(client, world.insertion_id, first_name="Inconnue")
    to_other = await create_candidate(client, world.insertion_id, first_name="Ailleurs")
    await propose(client, proposed["id"], world.vacancy_id)
    await propose(client, to_other["id"], world.other_vacancy_id)
    async with await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord:
        assert ids(await landlord.get("/v1/candidates")) == {proposed["id"]}
        for hidden in (unproposed, to_other):
            response = await landlord.get(f"/v1/candidates/{hidden['id']}")
            assert is_problem(response, 404)
            assert hidden["first_name"] not in response.text
        missing = await landlord.get(f"/v1/candidates/{uuid.uuid4()}")
        assert is_problem(missing, 404)
        refused = await landlord.patch(
            f"/v1/candidates/{proposed['id']}", json={"max_commute_km": 5}
        )
        assert is_problem(refused, 403)


async def test_prescriber_refers_and_follows_its_people(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    theirs = await create_candidate(
        client, world.insertion_id, first_name="Référée", referrer_id=world.other_partner_id
    )
    unreferred = await create_candidate(client, world.insertion_id, first_name="Directe")
    async with await client_as(app, sessionmaker, "prescriber", world.partner_id) as prescriber:
        referred = await prescriber.post(
            "/v1/candidates", json=referral_payload(world.insertion_id, first_name="Lou")
        )
        assert referred.status_code == 201, referred.text
        body = referred.json()
        assert body["view"] == "referral"
        assert set(body) == REFERRAL_KEYS
        assert body["structure_id"] == world.insertion_id
        assert body["phase"] == "recruitment"
        assert referred.headers["location"] == f"/v1/candidates/{body['id']}"

        listing = await prescriber.get("/v1/candidates")
        assert ids(listing) == {body["id"]}
        for item in listing.json()["items"]:
            assert set(item) == REFERRAL_KEYS
        got = await prescriber.get(f"/v1/candidates/{body['id']}")
        assert got.json() == body
        for hidden in (theirs, unreferred):
            assert is_problem(await prescriber.get(f"/v1/candidates/{hidden['id']}"), 404)

        in_another_name = await prescriber.post(
            "/v1/candidates",
            json=referral_payload(world.insertion_id, referrer_id=world.other_partner_id),
        )
        assert is_problem(in_another_name, 403)
        assert is_problem(
            await prescriber.patch(f"/v1/candidates/{body['id']}", json={"max_commute_km": 5}),
            403,
        )

    stored = (await client.get(f"/v1/candidates/{body['id']}")).json()
    assert stored["view"] == "full"
    assert stored["referrer_id"] == world.partner_id
    assert stored["email"] == "camille@example.org"
    assert len((await client.get("/v1/candidates")).json()["items"]) == 3


async def test_insertion_staff_keep_to_their_structure(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    own = await create_candidate(client, world.insertion_id, first_name="Nour")
    foreign = await create_candidate(client, world.other_insertion_id, first_name="Yanis")
    async with await client_as(app, sessionmaker, "insertion", world.insertion_id) as siae:
        refused = await siae.post(
            "/v1/candidates", json=candidate_payload(world.other_insertion_id)
        )
        assert is_problem(refused, 403)
        assert ids(await siae.get("/v1/candidates")) == {own["id"]}
        filtered = await siae.get(
            "/v1/candidates", params={"structure_id": world.other_insertion_id}
        )
        assert ids(filtered) == set()
        for method, extra in (
            ("GET", {}),
            ("PATCH", {"json": {"max_commute_km": 5}}),
            ("DELETE", {}),
        ):
            response = await siae.request(method, f"/v1/candidates/{foreign['id']}", **extra)
            assert is_problem(response, 404), method
            assert "Yanis" not in response.text
        moved = await siae.patch(
            f"/v1/candidates/{own['id']}", json={"structure_id": world.other_insertion_id}
        )
        assert is_problem(moved, 403)
        mine = await siae.get(f"/v1/candidates/{own['id']}")
        assert mine.json()["view"] == "full"
        assert mine.json()["structure_id"] == world.insertion_id
        created = await siae.post("/v1/candidates", json=candidate_payload(world.insertion_id))
        assert created.status_code == 201
        assert created.json()["view"] == "full"
    # Nothing of the refused requests reached the database.
    still = (await client.get(f"/v1/candidates/{foreign['id']}")).json()
    assert still["max_commute_km"] == foreign["max_commute_km"]
    assert len((await client.get("/v1/candidates")).json()["items"]) == 3


async def test_observer_sees_no_personal_data(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    person = await create_candidate(
        client,
        world.insertion_id,
        first_name="Zephyrine",
        email="zephyrine.observee@example.org",
        referrer_id=world.partner_id,
    )
    placement = await propose(client, person["id"], world.vacancy_id)
    admin_clients = (await client.get("/v1/clients")).json()["items"]
    paths = [
        "/v1/structures",
        f"/v1/structures/{world.insertion_id}",
        "/v1/candidates",
        f"/v1/candidates/{person['id']}",
        "/v1/vacancies",
        f"/v1/vacancies/{world.vacancy_id}",
        "/v1/placements",
        f"/v1/placements/{placement['id']}",
        "/v1/clients",
        f"/v1/clients/{admin_clients[0]['id']}",
        "/v1/audit",
    ]
    responses: list[Any] = []
    async with await client_as(app, sessionmaker, "observer") as observer:
        for path in paths:
            responses.append(await observer.get(path))
        responses.append(await observer.get("/v1/candidates", params={"limit": 200}))
        responses.append(
            await observer.post("/v1/candidates", json=candidate_payload(world.insertion_id))
        )
    for path, response in zip([*paths, "list", "create"], responses, strict=True):
        assert is_problem(response, 403), path
        assert "Zephyrine" not in response.text
        assert "zephyrine.observee@example.org" not in response.text
    assert len((await client.get("/v1/candidates")).json()["items"]) == 1
