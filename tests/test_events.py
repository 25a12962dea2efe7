"""The change feed: commit order, resumption, scoping per role, thin payloads, tombstones."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from app.domain.ids import uuid7
from app.schemas.events import EVENT_TYPES, CandidateDeleted
from app.services import events
from tests.access_helpers import build_world, propose
from tests.conftest import Backend, client_as
from tests.factories import candidate_payload, create, create_structure

WAIT_S = 20  # bound on every wait for the reader; never a speed assertion


async def read_all(http: httpx.AsyncClient, after: int = 0, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        response = await http.get("/v1/events", params={"after": after, **params})
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        if not body["items"]:
            return items
        assert body["next_after"] > after
        after = body["next_after"]


class Reader:
    """Polls the feed like a partner: resumes after the last `next_after`, keeps all."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.after = 0
        self.seen: list[dict[str, Any]] = []
        self.stop = False
        self.error: BaseException | None = None

    async def run(self) -> None:
        try:
            while not self.stop:
                response = await self.http.get("/v1/events", params={"after": self.after})
                assert response.status_code == 200, response.text
                body = response.json()
                self.seen += body["items"]
                assert body["next_after"] >= self.after
                self.after = body["next_after"]
                await asyncio.sleep(0.01)
        except BaseException as exc:  # surfaced by the test
            self.error = exc
            raise

    async def wait_for(self, ids: set[str]) -> None:
        for _ in range(WAIT_S * 100):
            if self.error is not None:
                raise self.error
            if ids <= {item["id"] for item in self.seen}:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the reader never saw {ids}")


def tombstone(structure_id: uuid.UUID) -> tuple[CandidateDeleted, events.Audience]:
    return CandidateDeleted(candidate_id=uuid7()), events.Audience(structure_id=structure_id)


async def test_a_late_commit_is_read_after_what_was_read_before(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: Backend,
) -> None:
    """A slow transaction writes first and commits last; faster ones commit meanwhile.
    A reader polling all along reads every event once, in commit order."""
    structure_id = uuid.UUID((await create_structure(client, "insertion"))["id"])
    reader = Reader(client)
    polling = asyncio.create_task(reader.run())
    commit_order: list[str] = []

    slow = sessionmaker()
    slow_ids = []
    for _ in range(3):
        data, audience = tombstone(structure_id)
        slow_ids.append(str(events.emit(slow, data, audience).id))
    await slow.flush()  # written (ids and times earlier than the fast ones), not committed

    async def fast_transaction() -> list[str]:
        async with sessionmaker() as session:
            ids = []
            for _ in range(2):
                data, audience = tombstone(structure_id)
                ids.append(str(events.emit(session, data, audience).id))
            await session.commit()
            commit_order.extend(ids)
            return ids

    async def fast_transactions() -> list[str]:
        # One after another: each commits before the next begins, so their commit order
        # is unambiguous (concurrent ones may be read in either order).
        return [i for _ in range(3) for i in await fast_transaction()]

    fast = asyncio.create_task(fast_transactions())
    if backend.is_postgres:
        # The fast ones commit while the slow one is open, and the reader sees them.
        fast_ids = await fast
        await reader.wait_for(set(fast_ids))
        assert not {item["id"] for item in reader.seen} & set(slow_ids)
    else:
        # SQLite serialises writers: the fast ones wait for the slow one's commit.
        await asyncio.sleep(0.2)
        assert commit_order == []
    await slow.commit()
    if backend.is_postgres:
        commit_order.extend(slow_ids)
    else:
        commit_order[:0] = slow_ids
        fast_ids = await fast
    await slow.close()
    await reader.wait_for(set(slow_ids) | set(fast_ids))
    reader.stop = True
    await polling

    read_ids = [item["id"] for item in reader.seen]
    assert len(read_ids) == len(set(read_ids)) == 9, "an event was read twice or missed"
    assert read_ids == commit_order
    positions = [item["position"] for item in reader.seen]
    assert positions == sorted(positions)


async def test_resuming_after_the_last_position_misses_nothing(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    structure = await create_structure(client, "insertion")
    for n in range(5):
        await create(
            client, "/v1/candidates", candidate_payload(structure["id"], first_name=f"P{n}")
        )
    first = (await client.get("/v1/events", params={"limit": 2})).json()
    assert [e["type"] for e in first["items"]] == ["candidate.created"] * 2
    assert first["next_after"] == first["items"][-1]["position"]
    rest = await read_all(client, after=first["next_after"])
    everything = await read_all(client)
    assert [e["id"] for e in first["items"] + rest] == [e["id"] for e in everything]
    assert len(everything) == 5
    # On the last page, next_after is the newest position: polling it again is empty.
    last = (await client.get("/v1/events", params={"after": 0, "limit": 200})).json()
    again = (await client.get("/v1/events", params={"after": last["next_after"]})).json()
    assert again == {"items": [], "next_after": last["next_after"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": -1}, "after"),
        ({"after": str(2**63)}, "after"),
        ({"after": "9" * 30}, "after"),
        ({"after": "x"}, "after"),
        ({"after": "1.0"}, "after"),
        ({"after": "+1"}, "after"),
        ({"after": " 1"}, "after"),
        ({"after": "1_0"}, "after"),
        ({"limit": "1.0"}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"types": "candidate.nothing"}, "types"),
        ({"since": "2026-01-01T00:00:00Z"}, "since"),
    ],
)
async def test_bad_feed_parameters_are_refused(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/v1/events", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert any(field in err["loc"] for err in response.json()["errors"])


async def test_types_filter(client: httpx.AsyncClient) -> None:
    structure = await create_structure(client, "insertion")
    candidate = await create(client, "/v1/candidates", candidate_payload(structure["id"]))
    moved = await client.post(
        f"/v1/candidates/{candidate['id']}/transitions",
        json={"to": "exited", "reason": "moved_away"},
    )
    assert moved.status_code == 200
    only = await read_all(client, types=["candidate.phase_changed"])
    assert [e["type"] for e in only] == ["candidate.phase_changed"]
    data = only[0]["data"]
    assert data.pop("at")[:10] == only[0]["timestamp"][:10]  # when it took effect
    assert data == {
        "candidate_id": candidate["id"],
        "structure_id": structure["id"],
        "from": "recruitment",
        "to": "exited",
        "reason": "moved_away",
        "forced": False,
    }
    both = await read_all(client, types=["candidate.phase_changed", "candidate.created"])
    assert [e["type"] for e in both] == ["candidate.created", "candidate.phase_changed"]


# Keys a payload may hold: ids, kinds, statuses, counters. Never a name or a contact.
THIN_KEYS = {
    "candidate_id",
    "structure_id",
    "vacancy_id",
    "landlord_id",
    "placement_id",
    "activity_id",
    "phase",
    "from",
    "to",
    "reason",
    "forced",
    "type",
    "kind",
    "status",
    "vacancy_status",
    "version",
    "milestone_months",
    "in_post",
    "due_on",
    "at",
}


def test_every_payload_schema_is_thin() -> None:
    for model in EVENT_TYPES.values():
        keys = set(model.model_json_schema(by_alias=True)["properties"])
        assert keys <= THIN_KEYS, (model.event_type, keys - THIN_KEYS)


async def test_each_role_reads_the_events_of_what_it_may_read(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    own = await create(
        client,
        "/v1/candidates",
        candidate_payload(world.insertion_id, referrer_id=world.partner_id, first_name="Dominique"),
    )
    other = await create(
        client,
        "/v1/candidates",
        candidate_payload(world.other_insertion_id, referrer_id=world.other_partner_id),
    )
    activity = await client.post(
        f"/v1/candidates/{own['id']}/activities",
        json={"type": "work_trial", "occurred_on": "2026-06-01", "outcome": "positive"},
    )
    assert activity.status_code == 201
    placement = await propose(client, own["id"], world.vacancy_id)
    await propose(client, other["id"], world.other_vacancy_id)
    draft = await create(
        client,
        "/v1/vacancies",
        {**_vacancy(world.landlord_id), "status": "draft", "title": "Brouillon"},
    )

    def subjects(feed: list[dict[str, Any]]) -> set[tuple[str, str]]:
        out = set()
        for event in feed:
            data = event["data"]
            subject = next(
                data[k] for k in ("placement_id", "vacancy_id", "candidate_id") if k in data
            )
            out.add((event["type"], subject))
        return out

    async def feed_of(role: Role, structure_id: str) -> list[dict[str, Any]]:
        async with await client_as(app, sessionmaker, role, structure_id) as http:
            return await read_all(http)

    everything = await read_all(client)
    insertion = subjects(await feed_of(Role.INSERTION, world.insertion_id))
    assert insertion == {
        ("candidate.created", own["id"]),
        ("activity.recorded", own["id"]),
        ("placement.proposed", placement["id"]),
        # Published vacancies, as insertion staff read them; never a draft.
        ("vacancy.created", world.vacancy_id),
        ("vacancy.created", world.other_vacancy_id),
    }
    prescriber = subjects(await feed_of(Role.PRESCRIBER, world.partner_id))
    assert prescriber == {("candidate.created", own["id"])}
    landlord = subjects(await feed_of(Role.LANDLORD, world.landlord_id))
    assert landlord == {
        ("vacancy.created", world.vacancy_id),
        ("vacancy.created", draft["id"]),
        ("placement.proposed", placement["id"]),
    }
    assert subjects(everything) >= insertion | prescriber | landlord
    # Nothing personal travels in events, whoever reads them.
    assert "Dominique" not in json.dumps(everything)
    async with await client_as(app, sessionmaker, Role.OBSERVER) as observer:
        assert (await observer.get("/v1/events")).status_code == 403


def _vacancy(landlord_id: str) -> dict[str, Any]:
    from tests.factories import vacancy_payload

    return vacancy_payload(landlord_id)


async def test_deletions_are_tombstones(client: httpx.AsyncClient) -> None:
    structure = await create_structure(client, "insertion")
    candidate = await create(client, "/v1/candidates", candidate_payload(structure["id"]))
    landlord = await create_structure(client, "landlord")
    vacancy = await create(client, "/v1/vacancies", _vacancy(landlord["id"]))
    assert (await client.delete(f"/v1/candidates/{candidate['id']}")).status_code == 204
    assert (await client.delete(f"/v1/vacancies/{vacancy['id']}")).status_code == 204
    feed = await read_all(client)
    tail = [(e["type"], e["data"]) for e in feed[-2:]]
    assert tail == [
        ("candidate.deleted", {"candidate_id": candidate["id"]}),
        ("vacancy.deleted", {"vacancy_id": vacancy["id"], "landlord_id": landlord["id"]}),
    ]


async def test_updates_emit_only_when_something_changed(client: httpx.AsyncClient) -> None:
    structure = await create_structure(client, "insertion")
    candidate = await create(client, "/v1/candidates", candidate_payload(structure["id"]))
    path = f"/v1/candidates/{candidate['id']}"
    same = await client.patch(path, json={"max_commute_km": candidate["max_commute_km"]})
    assert same.status_code == 200
    assert same.json()["version"] == candidate["version"]
    changed = await client.patch(path, json={"max_commute_km": 12})
    assert changed.json()["version"] == candidate["version"] + 1
    updates = await read_all(client, types=["candidate.updated"])
    assert [e["data"]["version"] for e in updates] == [candidate["version"] + 1]


async def test_the_backlog_counts_work_waiting_for_workers(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The seam of the metrics gauge: events not yet sequenced, deliveries pending."""
    structure_id = uuid.UUID((await create_structure(client, "insertion"))["id"])
    async with sessionmaker() as session:
        for _ in range(3):
            data, audience = tombstone(structure_id)
            events.emit(session, data, audience)
        await session.commit()
        assert await events.backlog(session) == events.Backlog(3, 0)
        await events.sequence(session)
        await session.commit()
        assert await events.backlog(session) == events.Backlog(0, 0)


AHEAD = "urn:tremplin:problem:cursor-ahead-of-feed"


async def test_the_last_possible_position_is_valid_input_but_ahead_of_the_feed(
    client: httpx.AsyncClient,
) -> None:
    """The spec allows any position up to 2**63 - 1 (not a 422), and a feed that has not
    reached it says the cursor is ahead of it."""
    response = await client.get("/v1/events", params={"after": str(2**63 - 1)})
    assert response.status_code == 409, response.text
    assert response.json()["type"] == AHEAD


async def test_a_cursor_ahead_of_the_feed_is_refused_not_left_waiting(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A cursor from elsewhere (a staging feed's, say) beyond the newest position would
    read as "nothing new" forever; it answers 409 with the newest position instead."""
    structure = await create_structure(client, "insertion")
    for n in range(3):
        await create(
            client, "/v1/candidates", candidate_payload(structure["id"], first_name=f"P{n}")
        )
    newest = await client.get("/v1/events", params={"after": 0})
    assert newest.status_code == 200
    top = newest.json()["next_after"]
    assert top == newest.json()["items"][-1]["position"]

    # The newest position itself is a cursor the feed gave: nothing new yet, poll again.
    assert (await client.get("/v1/events", params={"after": top})).json() == {
        "items": [],
        "next_after": top,
    }
    for after in (top + 1, top + 1_000_000):
        ahead = await client.get("/v1/events", params={"after": after, "types": "vacancy.created"})
        assert ahead.status_code == 409, ahead.text
        assert ahead.headers["content-type"] == "application/problem+json"
        body = ahead.json()
        assert body["type"] == AHEAD
        assert body["newest_position"] == top
        assert str(top) in body["detail"]
        assert "ahead" in body["detail"]
        assert body["instance"] == "/v1/events"
    documented = app.openapi()["paths"]["/v1/events"]["get"]["responses"]["409"]
    assert "cursor-ahead-of-feed" in documented["description"]

    # Once the feed has grown past it, the same cursor reads like any other.
    await create(client, "/v1/candidates", candidate_payload(structure["id"], first_name="P3"))
    later = await client.get("/v1/events", params={"after": top})
    assert later.status_code == 200
    assert [e["position"] for e in later.json()["items"]] == [top + 1]
    assert (await client.get("/v1/events", params={"after": top + 1})).status_code == 200


async def test_every_cursor_handed_out_is_accepted_while_writers_commit(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Readers resume from one another's cursors while transactions commit around them
    (one held open across the reads): a position some answer gave is never 409."""
    structure_id = uuid.UUID((await create_structure(client, "insertion"))["id"])
    slow = sessionmaker()
    data, audience = tombstone(structure_id)
    events.emit(slow, data, audience)
    await slow.flush()  # written first, committed last
    given: list[int] = [0]
    done = False

    async def write() -> None:
        nonlocal done
        try:
            for _ in range(15):
                async with sessionmaker() as session:
                    data, audience = tombstone(structure_id)
                    events.emit(session, data, audience)
                    await session.commit()
        finally:
            done = True

    async def read() -> None:
        while not done:
            after = given[-1]
            response = await client.get("/v1/events", params={"after": after, "limit": 1})
            assert response.status_code == 200, response.text
            given.append(max(given[-1], response.json()["next_after"]))
            await asyncio.sleep(0)

    if slow.get_bind().dialect.name == "sqlite":
        await slow.commit()  # SQLite serialises writers: the others would wait for it
    await asyncio.gather(write(), read(), read())
    await slow.commit()
    await slow.close()
    for after in set(given):
        assert (await client.get("/v1/events", params={"after": after})).status_code == 200
