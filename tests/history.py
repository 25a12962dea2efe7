"""Replaying a programme's past through the API, with the real date of every step.

A person's path is imported as a structure would: registered with the day it began,
moved along with each move's effective date, proposed, accepted and started on a job on
their days, then followed up at 6 and 12 months. Guards are met by forcing the moves
(an admin's import, recorded as forced) unless the caller records the activities.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx

from app.schemas.placements import _months_later as months_later
from tests.factories import candidate_payload, create, create_structure, job_payload

_people = itertools.count(1)


def at(day: date, hour: int = 9) -> str:
    return datetime.combine(day, time(hour), tzinfo=UTC).isoformat().replace("+00:00", "Z")


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Programme:
    """An insertion structure, a landlord and an open job with room for every hire."""

    admin: httpx.AsyncClient
    structure_id: str
    landlord_id: str
    job_id: str

    @classmethod
    async def make(cls, admin: httpx.AsyncClient, positions: int = 50, **place: Any) -> Programme:
        structure = await create_structure(admin, "insertion", **place)
        landlord = await create_structure(admin, "landlord", **place)
        job = await create(
            admin, "/v1/vacancies", job_payload(landlord["id"], positions=positions, status="open")
        )
        return cls(admin, structure["id"], landlord["id"], job["id"])

    async def person(self, entered: date, **overrides: Any) -> str:
        n = next(_people)
        fields = {
            "first_name": f"Prénom{n}",
            "last_name": f"Nom{n}",
            "email": f"personne{n}@example.org",
            "entered_at": at(entered),
        }
        payload = candidate_payload(self.structure_id, **{**fields, **overrides})
        return str((await create(self.admin, "/v1/candidates", payload))["id"])

    async def move(self, person: str, to: str, day: date, **extra: Any) -> dict[str, Any]:
        body = {"to": to, "effective_at": at(day), **extra}
        if to in ("support", "securing") and "force" not in extra:
            body |= {"force": True, "note": "imported from the programme's records"}
        return await ok(await self.admin.post(f"/v1/candidates/{person}/transitions", json=body))

    async def hire(self, person: str, start: date, *, vacancy_id: str | None = None) -> str:
        """Proposed a month before the start, accepted two weeks before, then started."""
        placement = await create(
            self.admin,
            "/v1/placements",
            {
                "candidate_id": person,
                "vacancy_id": vacancy_id or self.job_id,
                "proposed_at": at(start - timedelta(days=30)),
            },
        )
        moves = f"/v1/placements/{placement['id']}/transitions"
        await ok(
            await self.admin.post(
                moves, json={"to": "accepted", "on": str(start - timedelta(days=14))}
            )
        )
        await ok(await self.admin.post(moves, json={"to": "started", "on": str(start)}))
        return str(placement["id"])

    async def follow_up(self, placement: str, start: date, months: int, in_post: bool) -> None:
        body = {"at": str(months_later(start, months)), "in_post": in_post}
        await ok(await self.admin.post(f"/v1/placements/{placement}/follow-ups", json=body))

    async def hired_path(
        self, entered: date, start: date, *, follow_ups: bool = True, **overrides: Any
    ) -> tuple[str, str]:
        """Entered, support, securing, hired; in post at 6 and 12 months when due."""
        person = await self.person(entered, **overrides)
        await self.move(person, "support", entered + timedelta(days=30))
        await self.move(person, "securing", start - timedelta(days=60))
        placement = await self.hire(person, start)
        today = date.today()
        for months in (6, 12):
            if follow_ups and months_later(start, months) <= today:
                await self.follow_up(placement, start, months, True)
        return person, placement

    async def exited_path(self, entered: date, left: date, reason: str = "other_job") -> str:
        """Entered, support a month later, then left (at least a month after entering)."""
        person = await self.person(entered)
        await self.move(person, "support", entered + timedelta(days=30))
        await self.move(person, "exited", left, reason=reason)
        return person
