"""The audit journal is complete: every operation of the permission table is called, and
its rows are checked against its classification in app.services.permissions.JOURNAL.

An operation that returns or changes someone's data must leave one row per person it
names, with its own name, the action it is classified under and the caller's view of
the person, in the same transaction as the access; an operation classified as touching
no personal data must leave none. A new operation fails here until it is classified
(and given a call builder in tests/test_permissions.py).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from app.services.permissions import JOURNAL, NOT_PERSONAL, OPERATIONS
from tests.access_helpers import subject_of
from tests.conftest import client_as
from tests.factories import candidate_payload
from tests.test_permissions import BUILDERS, Call, World

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PERSON_PATH = re.compile(rf"^/v1/candidates/({_UUID})")
_PLACEMENT_PATH = re.compile(rf"^/v1/placements/({_UUID})")


def test_every_operation_is_classified() -> None:
    """Adding an operation without saying whether it touches personal data fails here."""
    unclassified = sorted(set(OPERATIONS) - set(JOURNAL))
    assert not unclassified, f"classify in permissions.JOURNAL: {unclassified}"
    assert set(JOURNAL) <= set(OPERATIONS), "JOURNAL names operations that do not exist"


def _people_in(value: Any) -> set[str]:
    """The people an answer names: person representations and `candidate_id`s."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "view" in value and "id" in value:
            found.add(str(value["id"]))
        if value.get("candidate_id") is not None:
            found.add(str(value["candidate_id"]))
        for inner in value.values():
            found |= _people_in(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _people_in(inner)
    return found


async def _people_named(admin: httpx.AsyncClient, call: Call, body: Any) -> set[str]:
    people = _people_in(body)
    if match := _PERSON_PATH.match(call.path):
        people.add(match.group(1))
    if call.path == "/v1/candidates/bulk":
        # Each item's result names the person it created or updated.
        people |= {str(item["id"]) for item in body["items"] if item["id"] is not None}
    if match := _PLACEMENT_PATH.match(call.path):
        placement = await admin.get(f"/v1/placements/{match.group(1)}")
        people.add(placement.json()["candidate_id"])
    return people


async def _journal(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = (await admin.get("/v1/audit", params=params)).json()
        rows += page["items"]
        if page["next_cursor"] is None:
            return rows
        params["cursor"] = page["next_cursor"]


async def _rows_of(admin: httpx.AsyncClient, request_id: str) -> list[dict[str, Any]]:
    return [row for row in await _journal(admin) if row["request_id"] == request_id]


async def _a_world(
    admin: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> World:
    world = await World(admin, app, sessionmaker).build()
    # Someone a ranking and an assignment of the own vacancy find (the world's own
    # candidate is already proposed to it): in recruitment, in the vacancy's commune.
    extra = await admin.post(
        "/v1/candidates",
        json=candidate_payload(world.ids["ins_own"], postcode="69008", commune_insee="69388"),
    )
    assert extra.status_code == 201, extra.text
    return world


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_each_operation_leaves_its_journal_rows(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    operation: str,
) -> None:
    journal = JOURNAL.get(operation)
    assert journal is not None, f"{operation} is not classified in permissions.JOURNAL"
    world = await _a_world(client, app, sessionmaker)
    call = await BUILDERS[operation](world, "own", Role.ADMIN)
    request_id = f"journal-{operation}-{uuid.uuid4().hex[:8]}"
    response = await client.request(
        call.method, call.path, json=call.body, headers={"X-Request-ID": request_id}
    )
    assert response.status_code < 300, response.text
    rows = await _rows_of(client, request_id)
    if journal == NOT_PERSONAL:
        assert rows == [], f"{operation} is classified as touching no personal data"
        return
    body = response.json() if response.content else None
    people = await _people_named(client, call, body)
    assert people, f"the call of {operation} names nobody: the test proves nothing"
    assert {row["candidate_id"] for row in rows} == people
    assert len(rows) == len(people), "one row per person"
    admin = subject_of(client)
    for row in rows:
        assert row["operation"] == operation
        assert row["actor_id"] == admin
        if operation == "matching_assign" and row["action"] == "create":
            continue  # the proposals an assignment may make are creations
        assert row["action"] == journal, row
        assert row["field_class"] == "full"


# Operations a landlord may call that name a person, with the view it has of them.
LANDLORD_OPERATIONS = [
    name
    for name, op in OPERATIONS.items()
    if Role.LANDLORD in op.grants and JOURNAL.get(name) != NOT_PERSONAL
]


@pytest.mark.parametrize("operation", LANDLORD_OPERATIONS)
async def test_a_landlords_rows_carry_its_view(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    operation: str,
) -> None:
    world = await _a_world(client, app, sessionmaker)
    call = await BUILDERS[operation](world, "own", Role.LANDLORD)
    request_id = f"journal-landlord-{operation}"
    async with await client_as(app, sessionmaker, "landlord", world.ids["lan_own"]) as staff:
        response = await staff.request(
            call.method, call.path, json=call.body, headers={"X-Request-ID": request_id}
        )
        staff_id = subject_of(staff)
    assert response.status_code < 300, response.text
    rows = await _rows_of(client, request_id)
    people = await _people_named(client, call, response.json())
    assert people
    assert {row["candidate_id"] for row in rows} == people
    for row in rows:
        assert (row["operation"], row["actor_id"]) == (operation, staff_id)
        # The own placement's acceptance opens the full profile, and is journaled so.
        expected = "full" if operation == "placements_transition" else "reduced"
        assert row["field_class"] == expected, row


async def test_refused_and_failed_calls_leave_no_row(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The journal row is written in the transaction of the access: no access, no row."""
    world = await _a_world(client, app, sessionmaker)
    before = await _journal(client)
    async with await client_as(app, sessionmaker, "landlord", world.ids["lan_own"]) as staff:
        for path in (
            f"/v1/placements/{world.ids['pl_foreign']}",
            f"/v1/placements/{world.ids['pl_foreign']}/history",
            f"/v1/candidates/{world.ids['cand_foreign']}",
        ):
            assert (await staff.get(path)).status_code == 404
        refused = await staff.post(
            f"/v1/placements/{world.ids['pl_own']}/transitions", json={"to": "withdrawn"}
        )
        assert refused.status_code == 403, refused.text
    # A transition refused by the machine rolls its journal row back with it.
    conflict = await client.post(
        f"/v1/placements/{world.ids['pl_own']}/transitions", json={"to": "completed"}
    )
    assert conflict.status_code == 409, conflict.text
    assert await _journal(client) == before
