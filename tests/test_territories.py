"""Observers read figures within a territory: national, one region or one département,
given to an API client (here) or carried by an OpenID Connect user's claim (test_auth)."""

from __future__ import annotations

import httpx

from tests.access_helpers import is_problem
from tests.factories import structure_payload
from tests.history import ok


async def test_observer_clients_have_a_territory(client: httpx.AsyncClient) -> None:
    national = await ok(
        await client.post("/v1/clients", json={"name": "DGEFP", "role": "observer"}), 201
    )
    assert national["territory"] == "national"
    regional = await ok(
        await client.post(
            "/v1/clients", json={"name": "DREETS", "role": "observer", "territory": "region:28"}
        ),
        201,
    )
    assert regional["territory"] == "region:28"
    moved = await ok(
        await client.patch(f"/v1/clients/{regional['id']}", json={"territory": "departement:76"})
    )
    assert moved["territory"] == "departement:76"
    for body in (
        {"territory": "region:99"},
        {"territory": "departement:00"},
        {"territory": "commune:76540"},
        {"territory": None},
    ):
        refused = await client.patch(f"/v1/clients/{regional['id']}", json=body)
        assert is_problem(refused, 422), (body, refused.text)
        assert ["body", "territory"] in [e["loc"][:2] for e in refused.json()["errors"]]
    structure = (await client.post("/v1/structures", json=structure_payload("insertion"))).json()
    not_observer = await client.post(
        "/v1/clients",
        json={
            "name": "SIAE",
            "role": "insertion",
            "structure_id": structure["id"],
            "territory": "national",
        },
    )
    assert is_problem(not_observer, 422)
    assert not_observer.json()["errors"][0]["loc"] == ["body", "territory"]
