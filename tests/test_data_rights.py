"""The person's data rights: export, erasure whatever the history, retention.

Erasure and retention must leave every figure as it was, and leave no identifying value
in any table: the test reads every row of every table, not only the API's answers.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import PROJECT_ROOT
from app.db import session_scope
from app.domain.enums import Role
from app.models import Base, Candidate, Event
from app.models.base import utcnow
from app.services.data_rights import anonymise_inactive
from tests.access_helpers import is_problem
from tests.conftest import Backend, client_as, make_settings
from tests.history import Programme, ok

FIGURES = ("funnel", "outcomes", "monthly")


async def figures(client: httpx.AsyncClient) -> dict[str, Any]:
    """Every figure, for a few periods and filters; `as_of` left out (it moves on)."""
    out = {}
    for query in ({}, {"year": 2015}, {"year": 2016}, {"departement": "76"}):
        for name in FIGURES:
            body = await ok(await client.get(f"/v1/stats/{name}", params=query))
            body["period"].pop("as_of")
            out[f"{name}:{sorted(query.items())}"] = body
    return out


async def identifying_values(
    sessionmaker: async_sessionmaker[AsyncSession], person: str
) -> list[str]:
    """What identifies the person, as stored: read back from the rows."""
    c = Candidate
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(
                    c.first_name,
                    c.last_name,
                    c.email,
                    c.phone,
                    c.birth_date,
                    c.latitude,
                    c.longitude,
                ).where(c.id == uuid.UUID(person))
            )
        ).one()
    values = [str(v) for v in row if v is not None]
    assert len(values) == 7, values
    return values


async def rows_containing(
    sessionmaker: async_sessionmaker[AsyncSession], needles: list[str]
) -> list[str]:
    found = []
    async with sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                cells = " | ".join(str(v) for v in row)
                found += [f"{table.name}: {n}" for n in needles if n in cells]
    return found


async def _person_with_everything(
    programme: Programme, client: httpx.AsyncClient, n: int
) -> tuple[str, list[str]]:
    """Hired in 2015, followed up, with notes everywhere notes go, and a pending proposal."""
    notes = [f"note-{n}-{kind}" for kind in ("activity", "transition", "placement", "move")]
    person = await programme.person(
        date(2014, 9, 1),
        first_name=f"Zéphyrine{n}",
        last_name=f"Quintaflor{n}",
        email=f"zephyrine.quintaflor{n}@example.org",
        phone=f"06 39 98 77 {n:02d}",
        birth_date=f"1987-06-{10 + n}",
        latitude=49.4417 + n / 1000,
        longitude=1.0931 + n / 1000,
    )
    await ok(
        await client.post(
            f"/v1/candidates/{person}/activities",
            json={
                "type": "work_trial",
                "occurred_on": "2014-09-15",
                "outcome": "positive",
                "notes": notes[0],
            },
        ),
        201,
    )
    await programme.move(person, "support", date(2014, 10, 1), note=notes[1])
    await programme.move(person, "securing", date(2015, 1, 5))
    start = date(2015, 3, 2)
    placement = await programme.hire(person, start)
    await ok(await client.patch(f"/v1/placements/{placement}", json={"notes": notes[2]}))
    for months in (6, 12):
        await programme.follow_up(placement, start, months, True)
    ended = await client.post(
        f"/v1/placements/{placement}/transitions",
        json={"to": "ended", "reason": "resigned", "on": "2016-05-02", "note": notes[3]},
    )
    await ok(ended)
    return person, notes


async def test_erasure_keeps_the_figures_and_leaves_no_trace(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    programme = await Programme.make(client)
    for i in range(4):
        await programme.hired_path(
            date(2015, 1, 5) + timedelta(days=i), date(2015, 6, 1) + timedelta(days=i)
        )
    person, notes = await _person_with_everything(programme, client, 1)
    # Back in securing after the job ended, proposed again, and accepted.
    proposal = {"candidate_id": person, "vacancy_id": programme.job_id}
    placement = (await ok(await client.post("/v1/placements", json=proposal), 201))["id"]
    await ok(await client.post(f"/v1/placements/{placement}/transitions", json={"to": "accepted"}))
    vacancy = await ok(await client.get(f"/v1/vacancies/{programme.job_id}"))
    held_before = vacancy["filled_positions"]
    identifiers = [*await identifying_values(sessionmaker, person), *notes]
    assert await rows_containing(sessionmaker, identifiers)  # the test can see them
    before = await figures(client)

    # The insertion structure erases the person, whatever their history.
    async with await client_as(app, sessionmaker, Role.INSERTION, programme.structure_id) as siae:
        erased = await siae.delete(f"/v1/candidates/{person}")
        assert erased.status_code == 204, erased.text
        assert is_problem(await siae.get(f"/v1/candidates/{person}"), 404)
    for path in ("", "/history", "/export", "/activities"):
        assert is_problem(await client.get(f"/v1/candidates/{person}{path}"), 404), path
    assert is_problem(await client.delete(f"/v1/candidates/{person}"), 404)
    listed = await ok(await client.get("/v1/candidates", params={"limit": 200}))
    assert person not in {c["id"] for c in listed["items"]}

    assert await figures(client) == before
    assert await rows_containing(sessionmaker, identifiers) == []
    # The pending job was withdrawn, its position freed; the history stays, without notes.
    withdrawn = await ok(await client.get(f"/v1/placements/{placement}"))
    assert withdrawn["status"] == "withdrawn"
    vacancy = await ok(await client.get(f"/v1/vacancies/{programme.job_id}"))
    assert vacancy["filled_positions"] == held_before - 1
    async with sessionmaker() as session:
        # The feed's tombstone, carrying only the id.
        erased_events = (
            await session.scalars(select(Event).where(Event.type == "candidate.deleted"))
        ).all()
        assert [(str(e.subject_id), e.payload) for e in erased_events] == [
            (person, {"candidate_id": person})
        ]
        kept = (
            await session.execute(
                select(Candidate.birth_date, Candidate.commune_insee, Candidate.departement).where(
                    Candidate.anonymised_at.is_not(None)
                )
            )
        ).one()
    assert (str(kept[0]), kept[1], kept[2]) == ("1987-01-01", "76540", "76")


async def test_retention_anonymises_the_inactive_and_keeps_the_figures(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: Backend,
) -> None:
    programme = await Programme.make(client)
    for i in range(5):
        await programme.hired_path(
            date(2015, 1, 5) + timedelta(days=i), date(2015, 6, 1) + timedelta(days=i)
        )
    person, notes = await _person_with_everything(programme, client, 2)
    identifiers = [*await identifying_values(sessionmaker, person), *notes]
    before = await figures(client)
    settings = make_settings(backend.url)

    # Nobody has been inactive for 24 months yet: everything here was recorded today.
    async with session_scope(sessionmaker) as session:
        assert (await anonymise_inactive(session, settings, dry_run=False)).found == 0
    later = utcnow() + timedelta(days=2 * 366 + 31)
    async with session_scope(sessionmaker) as session:
        dry = await anonymise_inactive(session, settings, dry_run=True, now=later)
    assert dry.found == 6
    assert await rows_containing(sessionmaker, identifiers)  # a dry run changes nothing
    async with session_scope(sessionmaker) as session:
        run = await anonymise_inactive(session, settings, dry_run=False, now=later, limit=4)
    assert (run.found, run.anonymised) == (4, 4)
    async with session_scope(sessionmaker) as session:
        run = await anonymise_inactive(session, settings, dry_run=False, now=later)
    assert (run.found, run.anonymised) == (2, 2)
    async with session_scope(sessionmaker) as session:  # safe to repeat
        assert (await anonymise_inactive(session, settings, dry_run=False, now=later)).found == 0

    assert await figures(client) == before
    assert await rows_containing(sessionmaker, identifiers) == []
    listed = await ok(await client.get("/v1/candidates"))
    assert listed["items"] == []


async def test_the_retention_command(backend: Backend, client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    await programme.person(date(2015, 1, 5))
    env = {**os.environ, "DATABASE_URL": backend.url, "ENVIRONMENT": "test"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", "retention", *args],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    dry = await asyncio.to_thread(run, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 0 people inactive for 24 months" in dry.stdout
    done = await asyncio.to_thread(run)
    assert done.returncode == 0, done.stderr
    assert "anonymised 0 people" in done.stdout
    env["RETENTION_INACTIVE_MONTHS"] = "0"
    refused = await asyncio.to_thread(run, "--dry-run")
    assert refused.returncode != 0


async def test_the_export_holds_everything_and_is_journaled(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    programme = await Programme.make(client)
    person, notes = await _person_with_everything(programme, client, 3)
    async with await client_as(app, sessionmaker, Role.INSERTION, programme.structure_id) as siae:
        await ok(await siae.get(f"/v1/candidates/{person}"))
        exported = await ok(await siae.get(f"/v1/candidates/{person}/export"))
    assert exported["candidate"]["id"] == person
    assert exported["candidate"]["first_name"] == "Zéphyrine3"
    assert [(t["from_phase"], t["to_phase"]) for t in exported["transitions"]] == [
        (None, "recruitment"),
        ("recruitment", "support"),
        ("support", "securing"),
        ("securing", "employed"),
        ("employed", "securing"),
    ]
    assert [a["notes"] for a in exported["activities"]] == [notes[0]]
    (placement,) = exported["placements"]
    assert placement["notes"] == notes[2]
    assert [h["to_status"] for h in placement["history"]] == ["accepted", "started", "ended"]
    assert [(f["milestone_months"], f["in_post"]) for f in exported["follow_ups"]] == [
        (6, True),
        (12, True),
    ]
    # Who accessed the record, this export included, from the journal.
    actions = [(a["actor_role"], a["action"]) for a in exported["accesses"]]
    assert ("insertion", "read") in actions
    assert actions[-1] == ("insertion", "read")
    assert {"admin", "insertion"} <= {role for role, _ in actions}
    journal = await ok(await client.get("/v1/audit", params={"candidate_id": person, "limit": 200}))
    assert len(journal["items"]) == len(exported["accesses"])
