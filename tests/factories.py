"""Valid payloads for every resource; tests override the fields they are about."""

from __future__ import annotations

import itertools
import random
from typing import Any

import httpx

from app.domain.identifiers import luhn_valid

_counter = itertools.count(1)


def make_siret() -> str:
    """A fresh SIRET with a valid Luhn checksum."""
    base = f"{random.randrange(10**7, 10**8)}{next(_counter) % 10**5:05d}"
    return next(base + str(d) for d in range(10) if luhn_valid(base + str(d)))


def structure_payload(kind: str = "insertion", **overrides: Any) -> dict[str, Any]:
    sub_kind = {"insertion": "AI", "landlord": "OPH", "partner": "france_travail"}[kind]
    payload: dict[str, Any] = {
        "kind": kind,
        "sub_kind": sub_kind,
        "name": f"Structure {kind} (fictional)",
        "siret": make_siret(),
        "address_line": "1 place de l'Exemple",
        "postcode": "76000",
        "commune_insee": "76540",
        "commune_name": "Rouen",
        "latitude": 49.4431,
        "longitude": 1.0993,
    }
    payload.update(overrides)
    return payload


# Candidates made by the factories entered their path on this day, so that tests may date
# activities and moves in the past (nothing on a path precedes its start).
ENTERED_AT = "2024-01-02T09:00:00Z"


def candidate_payload(structure_id: str, **overrides: Any) -> dict[str, Any]:
    """An insertion structure's registration; prescribers refer without `entered_at`
    (`referral_payload`)."""
    payload: dict[str, Any] = {
        "first_name": "Camille",
        "last_name": "Exemple",
        "birth_date": "1990-04-12",
        "email": "camille@example.org",
        "phone": "06 00 00 00 01",
        "postcode": "76000",
        "commune_insee": "76540",
        "structure_id": structure_id,
        "consent_to_share": True,
        "entered_at": ENTERED_AT,
    }
    payload.update(overrides)
    return payload


def referral_payload(structure_id: str, **overrides: Any) -> dict[str, Any]:
    """A prescriber's referral: the path starts when it is made."""
    payload = candidate_payload(structure_id, **overrides)
    payload.pop("entered_at", None)
    return payload


def vacancy_payload(landlord_id: str, **overrides: Any) -> dict[str, Any]:
    """A test mission by default: what a new candidate (in recruitment) can be proposed
    for. `job_payload` gives a lasting job."""
    payload: dict[str, Any] = {
        "landlord_id": landlord_id,
        "title": "Mission test de gardien d'immeuble",
        "kind": "mission",
        "contract_type": "mission",
        "mission_type": "test_mission",
        "postcode": "69008",
        "commune_insee": "69388",
        "start_date": "2027-01-04",
        "status": "open",
    }
    payload.update(overrides)
    return payload


JOB = {"kind": "job", "contract_type": "cdi", "mission_type": None, "title": "Gardien d'immeuble"}


def job_payload(landlord_id: str, **overrides: Any) -> dict[str, Any]:
    """A lasting job (CDI): for candidates in the securing phase."""
    return vacancy_payload(landlord_id, **{**JOB, **overrides})


async def create(client: httpx.AsyncClient, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_structure(
    client: httpx.AsyncClient, kind: str = "insertion", **kw: Any
) -> dict[str, Any]:
    return await create(client, "/v1/structures", structure_payload(kind, **kw))


async def create_candidate(
    client: httpx.AsyncClient, structure_id: str | None = None, **kw: Any
) -> dict[str, Any]:
    if structure_id is None:
        structure_id = (await create_structure(client, "insertion"))["id"]
    return await create(client, "/v1/candidates", candidate_payload(structure_id, **kw))


async def create_vacancy(
    client: httpx.AsyncClient, landlord_id: str | None = None, **kw: Any
) -> dict[str, Any]:
    if landlord_id is None:
        landlord_id = (await create_structure(client, "landlord"))["id"]
    return await create(client, "/v1/vacancies", vacancy_payload(landlord_id, **kw))
