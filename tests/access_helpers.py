"""Helpers shared by the partner-access tests (auth, idempotency, audit, views)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import create, create_structure, create_vacancy

PROBLEM_JSON = "application/problem+json"


def is_problem(response: httpx.Response, status: int) -> bool:
    return (
        response.status_code == status
        and response.headers.get("content-type", "").startswith(PROBLEM_JSON)
        and response.json().get("status") == status
    )


def token_of(http: httpx.AsyncClient) -> str:
    return str(http.headers["Authorization"]).removeprefix("Bearer ")


def subject_of(http: httpx.AsyncClient) -> str:
    """The actor id behind an HTTP client's bearer token (the `sub` claim)."""
    claims = jwt.decode(token_of(http), options={"verify_signature": False})
    return str(claims["sub"])


async def scalar(sessionmaker: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> Any:
    async with sessionmaker() as session:
        return await session.scalar(text(sql), params)


async def count_rows(sessionmaker: async_sessionmaker[AsyncSession], table: str) -> int:
    return int(await scalar(sessionmaker, f"SELECT count(*) FROM {table}"))


@dataclass(frozen=True)
class World:
    """Structures of every kind and one open vacancy per landlord, made by an admin."""

    insertion_id: str
    other_insertion_id: str
    landlord_id: str
    other_landlord_id: str
    partner_id: str
    other_partner_id: str
    vacancy_id: str
    other_vacancy_id: str


async def build_world(admin: httpx.AsyncClient) -> World:
    insertion = await create_structure(admin, "insertion", name="SIAE Rouen (fictional)")
    other_insertion = await create_structure(admin, "insertion", name="SIAE Lyon (fictional)")
    landlord = await create_structure(admin, "landlord", name="OPH Rouen (fictional)")
    other_landlord = await create_structure(admin, "landlord", name="ESH Lyon (fictional)")
    partner = await create_structure(admin, "partner", name="PLIE Rouen (fictional)")
    other_partner = await create_structure(admin, "partner", name="Mission locale (fictional)")
    vacancy = await create_vacancy(admin, landlord["id"])
    other_vacancy = await create_vacancy(admin, other_landlord["id"])
    return World(
        insertion_id=insertion["id"],
        other_insertion_id=other_insertion["id"],
        landlord_id=landlord["id"],
        other_landlord_id=other_landlord["id"],
        partner_id=partner["id"],
        other_partner_id=other_partner["id"],
        vacancy_id=vacancy["id"],
        other_vacancy_id=other_vacancy["id"],
    )


async def propose(admin: httpx.AsyncClient, candidate_id: str, vacancy_id: str) -> dict[str, Any]:
    return await create(
        admin, "/v1/placements", {"candidate_id": candidate_id, "vacancy_id": vacancy_id}
    )


async def accept_placement(admin: httpx.AsyncClient, placement_id: str) -> None:
    """The landlord's acceptance, made by an admin through the placement machine."""
    response = await admin.post(
        f"/v1/placements/{placement_id}/transitions", json={"to": "accepted"}
    )
    assert response.status_code == 200, response.text
