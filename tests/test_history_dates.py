"""History imports with real dates: every date rule, each with a bad date.

Each refusal is a 422 naming the field and both dates (never a birth date), and changes
nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from tests.access_helpers import is_problem
from tests.conftest import client_as
from tests.factories import candidate_payload, create, create_structure
from tests.history import Programme, at, ok

TOMORROW = datetime.now(UTC) + timedelta(days=1)


def refused_for(response: httpx.Response, field: str, *dates: str) -> None:
    """A 422 on `field` whose message names every date given."""
    assert is_problem(response, 422), response.text
    errors = {tuple(e["loc"]): e["message"] for e in response.json()["errors"]}
    assert ("body", field) in errors, errors
    for day in dates:
        assert day in errors[("body", field)], (day, errors)


async def history(client: httpx.AsyncClient, person: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await ok(await client.get(f"/v1/candidates/{person}/history")))[
        "items"
    ]
    return items


async def test_the_history_keeps_effective_and_recorded_dates(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    person = await programme.person(date(2013, 4, 2))
    before = datetime.now(UTC)
    await programme.move(person, "support", date(2013, 5, 6))
    entry, move = await history(client, person)
    assert (entry["from_phase"], entry["to_phase"], entry["at"]) == (
        None,
        "recruitment",
        "2013-04-02T09:00:00Z",
    )
    assert move["at"] == "2013-05-06T09:00:00Z"
    assert datetime.fromisoformat(move["recorded_at"]) >= before
    profile = await ok(await client.get(f"/v1/candidates/{person}"))
    assert profile["phase_changed_at"] == "2013-05-06T09:00:00Z"
    # Without a date, a move takes effect now.
    await programme.admin.post(
        f"/v1/candidates/{person}/transitions", json={"to": "exited", "reason": "moved_away"}
    )
    last = (await history(client, person))[-1]
    assert datetime.fromisoformat(last["at"]) >= before


async def test_transition_dates(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    person = await programme.person(date(2014, 1, 6))
    await programme.move(person, "support", date(2014, 3, 3))
    url = f"/v1/candidates/{person}/transitions"
    exit_ = {"to": "exited", "reason": "other_job"}

    future = await client.post(url, json={**exit_, "effective_at": TOMORROW.isoformat()})
    refused_for(future, "effective_at", TOMORROW.date().isoformat())
    early = await client.post(url, json={**exit_, "effective_at": at(date(2014, 2, 1))})
    refused_for(early, "effective_at", "2014-02-01", "2014-03-03")
    assert (await ok(await client.get(f"/v1/candidates/{person}")))["phase"] == "support"
    assert len(await history(client, person)) == 2
    # The same instant as the previous move is not before it.
    same = await client.post(url, json={**exit_, "effective_at": at(date(2014, 3, 3))})
    assert same.status_code == 200, same.text


async def test_entry_dates(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    programme = await Programme.make(client)
    future = await client.post(
        "/v1/candidates",
        json=candidate_payload(programme.structure_id, entered_at=TOMORROW.isoformat()),
    )
    refused_for(future, "entered_at", TOMORROW.date().isoformat())
    partner = await create_structure(client, "partner")
    async with await client_as(app, sessionmaker, Role.PRESCRIBER, partner["id"]) as prescriber:
        dated = await prescriber.post(
            "/v1/candidates",
            json=candidate_payload(programme.structure_id, entered_at="2015-01-05T09:00:00Z"),
        )
    assert is_problem(dated, 403), dated.text
    listed = await ok(await client.get("/v1/candidates"))
    assert listed["items"] == []


def refused_without_dates(response: httpx.Response, field: str, *hidden: str) -> None:
    """A 422 on `field` that names none of `hidden` (a birth date is personal data)."""
    assert is_problem(response, 422), response.text
    assert ("body", field) in {tuple(e["loc"]) for e in response.json()["errors"]}
    for value in hidden:
        assert value not in response.text, response.text


async def test_a_path_never_begins_before_the_person_is_16(client: httpx.AsyncClient) -> None:
    """Nor, then, before they were born; the refusals never name the birth date."""
    programme = await Programme.make(client)

    async def register(birth: str, entered: str) -> httpx.Response:
        payload = candidate_payload(programme.structure_id, birth_date=birth, entered_at=entered)
        return await client.post("/v1/candidates", json=payload)

    unborn = await register("1985-01-02", "1980-01-01T00:00:00Z")
    refused_without_dates(unborn, "entered_at", "1985-01-02", "1980-01-01")
    # Late on the eve of the 16th birthday (UTC) is still too early.
    eve = await register("1985-01-02", "2001-01-01T23:59:59Z")
    refused_without_dates(eve, "entered_at", "1985-01-02", "2001-01-01")
    # In the first 16 years of the calendar, nobody is 16 yet (no 500: there is no day
    # 16 years before such a day).
    for ancient in ("0001-01-01T00:00:00Z", "0016-12-31T00:00:00Z"):
        refused_without_dates(await register("1985-01-02", ancient), "entered_at", "1985-01-02")
    assert (await ok(await client.get("/v1/candidates")))["items"] == []
    await ok(await register("1985-01-02", "2001-01-02T00:00:00Z"), 201)

    person = await programme.person(date(2010, 3, 1), birth_date="1990-04-12")
    url = f"/v1/candidates/{person}"
    for birth in ("2009-06-01", "1994-03-02", "2011-01-01"):
        later = await client.patch(url, json={"birth_date": birth})
        refused_without_dates(later, "birth_date", birth, "2010-03-01")
    profile = await ok(await client.get(url))
    assert (profile["birth_date"], profile["version"]) == ("1990-04-12", 1)
    # 16 on the day the path began: taken.
    assert (await ok(await client.patch(url, json={"birth_date": "1994-03-01"})))[
        "birth_date"
    ] == "1994-03-01"


async def test_a_bulk_import_keeps_the_age_at_entry_rule(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    item = candidate_payload(
        programme.structure_id,
        external_ref="LYON-2013-7",
        birth_date="1990-04-12",
        entered_at="2013-03-04T09:00:00Z",
    )
    bulk = "/v1/candidates/bulk"
    too_young = {**item, "birth_date": "2000-01-01"}
    created, refused = (
        await ok(
            await client.post(bulk, json={"items": [item, {**too_young, "external_ref": "X"}]})
        )
    )["items"]
    assert created["status"] == "created", created
    assert refused["status"] == "failed", refused
    assert refused["problem"]["status"] == 422
    assert [e["loc"] for e in refused["problem"]["errors"]] == [
        ["body", "items", "1", "entered_at"]
    ]
    # The same person sent again with a birth date after their entry: refused, unchanged.
    [again] = (await ok(await client.post(bulk, json={"items": [too_young]})))["items"]
    assert again["status"] == "failed", again
    assert [e["loc"] for e in again["problem"]["errors"]] == [["body", "items", "0", "birth_date"]]
    assert "2000-01-01" not in str(again)
    profile = await ok(await client.get(f"/v1/candidates/{created['id']}"))
    assert profile["birth_date"] == "1990-04-12"


async def test_proposal_dates(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    person = await programme.person(date(2015, 2, 2))
    await programme.move(person, "support", date(2015, 3, 2))
    await programme.move(person, "securing", date(2015, 6, 1))
    proposal = {"candidate_id": person, "vacancy_id": programme.job_id}
    future = await client.post(
        "/v1/placements", json={**proposal, "proposed_at": TOMORROW.isoformat()}
    )
    refused_for(future, "proposed_at", TOMORROW.date().isoformat())
    early = await client.post(
        "/v1/placements", json={**proposal, "proposed_at": at(date(2015, 1, 15))}
    )
    refused_for(early, "proposed_at", "2015-01-15", "2015-02-02")
    assert (await ok(await client.get("/v1/placements")))["items"] == []


async def test_placement_move_dates(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    person = await programme.person(date(2015, 2, 2))
    await programme.move(person, "support", date(2015, 3, 2))
    await programme.move(person, "securing", date(2015, 9, 1))
    # Proposed (for a job the person is now fit for) before they reached securing.
    placement = await create(
        client,
        "/v1/placements",
        {
            "candidate_id": person,
            "vacancy_id": programme.job_id,
            "proposed_at": at(date(2015, 6, 1)),
        },
    )
    moves = f"/v1/placements/{placement['id']}/transitions"

    before_proposal = await client.post(moves, json={"to": "accepted", "on": "2015-05-20"})
    refused_for(before_proposal, "on", "2015-05-20", "2015-06-01")
    instant = await client.post(
        moves, json={"to": "interview", "effective_at": at(date(2015, 6, 1), 8)}
    )
    refused_for(instant, "effective_at", "2015-06-01T08:00:00Z", "2015-06-01T09:00:00Z")
    future = await client.post(moves, json={"to": "accepted", "effective_at": TOMORROW.isoformat()})
    refused_for(future, "effective_at", TOMORROW.date().isoformat())
    mismatch = await client.post(
        moves, json={"to": "accepted", "on": "2015-06-10", "effective_at": at(date(2015, 6, 11))}
    )
    refused_for(mismatch, "on")
    await ok(await client.post(moves, json={"to": "accepted", "on": "2015-06-10"}))

    after_acceptance = await client.post(moves, json={"to": "started", "on": "2015-06-05"})
    refused_for(after_acceptance, "on", "2015-06-05", "2015-06-10")
    # A job cannot start before the person reached securing.
    unsecured = await client.post(moves, json={"to": "started", "on": "2015-07-01"})
    refused_for(unsecured, "on", "2015-07-01", "2015-09-01", "securing")
    assert (await ok(await client.get(f"/v1/placements/{placement['id']}")))["status"] == "accepted"
    assert (await ok(await client.get(f"/v1/candidates/{person}")))["phase"] == "securing"

    started = await ok(await client.post(moves, json={"to": "started", "on": "2015-09-01"}))
    assert started["started_on"] == "2015-09-01"
    # The move to employed takes effect on the start's day, after reaching securing.
    employed = (await history(client, person))[-1]
    assert (employed["to_phase"], employed["at"]) == ("employed", "2015-09-01T09:00:00Z")
    ended_early = await client.post(
        moves, json={"to": "ended", "reason": "resigned", "on": "2015-08-31"}
    )
    refused_for(ended_early, "on", "2015-08-31", "2015-09-01")


async def test_follow_up_dates(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    _, placement = await programme.hired_path(date(2015, 1, 5), date(2015, 6, 1), follow_ups=False)
    url = f"/v1/placements/{placement}/follow-ups"
    early = await client.post(url, json={"at": "2015-11-30", "in_post": True})
    refused_for(early, "at", "2015-11-30", "2015-12-01")
    future = await client.post(url, json={"at": TOMORROW.date().isoformat(), "in_post": True})
    refused_for(future, "at", TOMORROW.date().isoformat())
    recorded = await ok(await client.post(url, json={"at": "2015-12-01", "in_post": True}))
    assert recorded["follow_up_6m_recorded_at"] is not None
    assert recorded["follow_up_12m_recorded_at"] is None


async def test_activity_dates(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    person = await programme.person(date(2015, 2, 2))
    url = f"/v1/candidates/{person}/activities"
    trial = {"type": "work_trial", "outcome": "positive"}
    early = await client.post(url, json={**trial, "occurred_on": "2015-02-01"})
    refused_for(early, "occurred_on", "2015-02-01", "2015-02-02")
    activity = await ok(await client.post(url, json={**trial, "occurred_on": "2015-02-02"}), 201)
    corrected = await client.patch(f"{url}/{activity['id']}", json={"occurred_on": "2014-12-31"})
    refused_for(corrected, "occurred_on", "2014-12-31", "2015-02-02")
    assert (await ok(await client.get(f"{url}/{activity['id']}")))["occurred_on"] == "2015-02-02"


async def test_an_activity_is_never_dated_in_the_future(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    person = await programme.person(date(2015, 2, 2))
    url = f"/v1/candidates/{person}/activities"
    trial = {"type": "work_trial", "outcome": "positive"}
    tomorrow = TOMORROW.date().isoformat()
    for day in ("9999-12-31", tomorrow):
        refused_for(await client.post(url, json={**trial, "occurred_on": day}), "occurred_on", day)
    assert (await ok(await client.get(url)))["items"] == []
    # Today is not the future.
    today = datetime.now(UTC).date().isoformat()
    activity = await ok(await client.post(url, json={**trial, "occurred_on": today}), 201)
    moved = await client.patch(f"{url}/{activity['id']}", json={"occurred_on": tomorrow})
    refused_for(moved, "occurred_on", tomorrow)
    assert (await ok(await client.get(f"{url}/{activity['id']}")))["occurred_on"] == today
