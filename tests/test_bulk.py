"""Bulk sync by external reference, and the lookups partners sync with."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from tests.access_helpers import count_rows
from tests.conftest import client_as
from tests.factories import (
    candidate_payload,
    create_structure,
    referral_payload,
    vacancy_payload,
)


def person(structure_id: str, ref: str, **overrides: Any) -> dict[str, Any]:
    return {
        **candidate_payload(structure_id, first_name=f"P-{ref}"),
        "external_ref": ref,
        **overrides,
    }


async def post_bulk(http: httpx.AsyncClient, path: str, items: list[Any]) -> dict[str, Any]:
    response = await http.post(path, json={"items": items})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_mixed_items_good_ones_stand_and_a_second_send_changes_nothing(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    structure = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    items = [
        person(structure, "A-1"),
        person(structure, "A-2", birth_date="2030-01-01"),  # invalid field
        person(structure, "A-3"),
        {"first_name": "no ref"},  # not even a candidate
        person(landlord, "A-5"),  # a landlord is not an insertion structure
        person(structure, "A-6", phone="555-HELP-ME"),
        "not an object",
    ]
    first = await post_bulk(client, "/v1/candidates/bulk", items)
    assert [i["status"] for i in first["items"]] == [
        "created",
        "failed",
        "created",
        "failed",
        "failed",
        "failed",
        "failed",
    ]
    assert (first["created"], first["failed"]) == (2, 5)
    bad_date = first["items"][1]["problem"]
    assert bad_date["status"] == 422
    assert bad_date["type"] == "urn:tremplin:problem:validation-error"
    assert [e["loc"] for e in bad_date["errors"]] == [["body", "items", "1", "birth_date"]]
    assert first["items"][4]["problem"]["type"] == "urn:tremplin:problem:wrong-reference-kind"
    assert "555-HELP-ME" not in str(first)  # problems never echo the values
    candidates_before = await count_rows(sessionmaker, "candidates")
    events_before = await count_rows(sessionmaker, "events")
    assert candidates_before == 2

    second = await post_bulk(client, "/v1/candidates/bulk", items)
    assert [i["status"] for i in second["items"]] == [
        "unchanged",
        "failed",
        "unchanged",
        "failed",
        "failed",
        "failed",
        "failed",
    ]
    assert [i["id"] for i in second["items"]] == [i["id"] for i in first["items"]]
    assert await count_rows(sessionmaker, "candidates") == candidates_before
    assert await count_rows(sessionmaker, "events") == events_before

    # A changed field updates; fields left out keep their values.
    third = await post_bulk(
        client,
        "/v1/candidates/bulk",
        [{**person(structure, "A-1"), "max_commute_km": 12}],
    )
    assert third["items"][0]["status"] == "updated"
    found = await client.get("/v1/candidates", params={"external_ref": "A-1"})
    [record] = found.json()["items"]
    assert (record["max_commute_km"], record["external_ref"]) == (12, "A-1")
    assert record["email"] == "camille@example.org"


async def test_rules_of_the_single_routes_apply_per_item(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    own = (await create_structure(client, "insertion"))["id"]
    other = (await create_structure(client, "insertion"))["id"]
    async with await client_as(app, sessionmaker, Role.INSERTION, own) as staff:
        result = await post_bulk(
            staff, "/v1/candidates/bulk", [person(own, "X-1"), person(other, "X-2")]
        )
    assert [i["status"] for i in result["items"]] == ["created", "failed"]
    assert result["items"][1]["problem"]["status"] == 403
    landlord_id = (await create_structure(client, "landlord"))["id"]
    async with await client_as(app, sessionmaker, Role.LANDLORD, landlord_id) as landlord:
        refused = await landlord.post("/v1/candidates/bulk", json={"items": [person(own, "Y")]})
        assert refused.status_code == 403


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    structure = (await create_structure(client, "insertion"))["id"]
    empty = await client.post("/v1/candidates/bulk", json={"items": []})
    assert empty.status_code == 422
    too_many = await client.post(
        "/v1/candidates/bulk", json={"items": [{"external_ref": str(n)} for n in range(1001)]}
    )
    assert too_many.status_code == 422
    unknown = await client.post(
        "/v1/candidates/bulk", json={"items": [person(structure, "Z")], "mode": "replace"}
    )
    assert unknown.status_code == 422
    # Two items with one reference: the second updates what the first created.
    twice = await post_bulk(
        client,
        "/v1/candidates/bulk",
        [person(structure, "dup"), person(structure, "dup", max_commute_km=5)],
    )
    assert [i["status"] for i in twice["items"]] == ["created", "updated"]


async def test_vacancies_bulk(client: httpx.AsyncClient) -> None:
    landlord = (await create_structure(client, "landlord"))["id"]
    items = [
        {**vacancy_payload(landlord), "external_ref": "V-1"},
        {**vacancy_payload(landlord), "external_ref": "V-2", "positions": 0},
        {**vacancy_payload(landlord), "external_ref": "V-3", "kind": "job"},  # mission fields
    ]
    first = await post_bulk(client, "/v1/vacancies/bulk", items)
    assert [i["status"] for i in first["items"]] == ["created", "failed", "failed"]
    again = await post_bulk(client, "/v1/vacancies/bulk", items)
    assert [i["status"] for i in again["items"]] == ["unchanged", "failed", "failed"]
    retitled = await post_bulk(
        client, "/v1/vacancies/bulk", [{**items[0], "title": "Gardien (H/F)"}]
    )
    assert retitled["items"][0]["status"] == "updated"
    kind_change = await post_bulk(
        client,
        "/v1/vacancies/bulk",
        [{**items[0], "kind": "job", "contract_type": "cdi", "mission_type": None}],
    )
    [failed] = kind_change["items"]
    assert failed["problem"]["errors"][0]["loc"] == ["body", "items", "0", "kind"]
    found = await client.get("/v1/vacancies", params={"external_ref": "V-1"})
    assert [v["title"] for v in found.json()["items"]] == ["Gardien (H/F)"]


async def test_a_result_names_the_reference_as_stored(client: httpx.AsyncClient) -> None:
    structure = (await create_structure(client, "insertion"))["id"]
    landlord = (await create_structure(client, "landlord"))["id"]
    people = await post_bulk(client, "/v1/candidates/bulk", [person(structure, "  R-1 ")])
    vacancies = await post_bulk(
        client, "/v1/vacancies/bulk", [{**vacancy_payload(landlord), "external_ref": " V-9  "}]
    )
    for path, body, ref in (
        ("/v1/candidates", people, "R-1"),
        ("/v1/vacancies", vacancies, "V-9"),
    ):
        [item] = body["items"]
        assert (item["status"], item["external_ref"]) == ("created", ref)
        # The reference the result gives is the one a lookup finds the record by.
        found = await client.get(path, params={"external_ref": item["external_ref"]})
        assert [r["id"] for r in found.json()["items"]] == [item["id"]]


async def test_an_idempotency_key_replays_the_first_answer(client: httpx.AsyncClient) -> None:
    structure = (await create_structure(client, "insertion"))["id"]
    body = {"items": [person(structure, "K-1")]}
    headers = {"Idempotency-Key": "bulk-1"}
    first = await client.post("/v1/candidates/bulk", json=body, headers=headers)
    second = await client.post("/v1/candidates/bulk", json=body, headers=headers)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert first.json()["items"][0]["status"] == "created"


async def test_external_refs_are_unique_per_structure(client: httpx.AsyncClient) -> None:
    one = (await create_structure(client, "insertion"))["id"]
    two = (await create_structure(client, "insertion"))["id"]
    first = await client.post("/v1/candidates", json=person(one, "same"))
    assert first.status_code == 201
    elsewhere = await client.post("/v1/candidates", json=person(two, "same"))
    assert elsewhere.status_code == 201
    clash = await client.post("/v1/candidates", json=person(one, "same"))
    assert clash.status_code == 409
    assert clash.json()["type"] == "urn:tremplin:problem:external-ref-taken"
    moved = await client.patch(
        f"/v1/candidates/{elsewhere.json()['id']}", json={"structure_id": one}
    )
    assert moved.status_code == 409


async def test_a_prescriber_does_not_set_the_structures_reference(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    structure = await create_structure(client, "insertion")
    partner = await create_structure(client, "partner")
    async with await client_as(app, sessionmaker, Role.PRESCRIBER, partner["id"]) as prescriber:
        refused = await prescriber.post(
            "/v1/candidates", json={**referral_payload(structure["id"]), "external_ref": "P-1"}
        )
        assert refused.status_code == 403
        assert "external_ref" in refused.json()["detail"]
        referred = await prescriber.post("/v1/candidates", json=referral_payload(structure["id"]))
        assert referred.status_code == 201


async def test_lookups(client: httpx.AsyncClient, app: FastAPI, sessionmaker: Any) -> None:
    structure = await create_structure(client, "insertion")
    await create_structure(client, "insertion")
    found = await client.get("/v1/structures", params={"siret": structure["siret"]})
    assert [s["id"] for s in found.json()["items"]] == [structure["id"]]
    bad = await client.get("/v1/structures", params={"siret": "12345678901234"})
    assert bad.status_code == 422
    await client.post("/v1/candidates", json=person(structure["id"], "L-1"))
    partner = await create_structure(client, "partner")
    async with await client_as(app, sessionmaker, Role.PRESCRIBER, partner["id"]) as prescriber:
        hidden = await prescriber.get("/v1/candidates", params={"external_ref": "L-1"})
        assert hidden.status_code == 422  # not a field of the referral view


async def test_the_placement_machine_is_published(client: httpx.AsyncClient) -> None:
    machine = (await client.get("/v1/pathway/placements")).json()
    assert machine["initial"] == "proposed"
    assert set(machine["terminal"]) == {"completed", "ended", "rejected", "withdrawn", "expired"}
    moves = {(m["from_status"], m["to_status"]): m for m in machine["moves"]}
    assert moves[("proposed", "accepted")]["roles"] == ["admin", "landlord"]
    assert moves[("proposed", "expired")]["roles"] == []
    assert moves[("started", "ended")] == {
        "from_status": "started",
        "to_status": "ended",
        "roles": ["admin", "insertion"],
        "reason_required": True,
        "kinds": ["job"],
    }
    assert machine["phases_for_kind"] == {
        "mission": ["recruitment", "support"],
        "job": ["securing"],
    }
