"""The audit journal: one row per access to a candidate's personal data, append-only."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import session_scope
from app.models import AuditEvent
from app.services import audit
from tests.access_helpers import build_world, count_rows, is_problem, subject_of
from tests.conftest import Backend, client_as
from tests.factories import candidate_payload, create_candidate

Row = tuple[str, str, str, str, str | None]


def journal_rows(items: list[dict[str, Any]]) -> Counter[Row]:
    return Counter(
        (e["action"], e["field_class"], e["actor_id"], e["candidate_id"], e["request_id"])
        for e in items
    )


async def read_journal(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await admin.get("/v1/audit", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def rid(name: str) -> dict[str, str]:
    return {"X-Request-ID": name}


async def test_scripted_session_leaves_exactly_the_expected_rows(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    admin_id = subject_of(client)
    created = await client.post(
        "/v1/candidates",
        json=candidate_payload(world.insertion_id, referrer_id=world.partner_id),
        headers=rid("adm-create-1"),
    )
    assert created.status_code == 201
    person = created.json()["id"]
    second = await client.post(
        "/v1/candidates",
        json=candidate_payload(world.insertion_id, first_name="Dominique"),
        headers=rid("adm-create-2"),
    )
    assert second.status_code == 201
    other = second.json()["id"]
    proposed = await client.post(
        "/v1/placements",
        json={"candidate_id": person, "vacancy_id": world.vacancy_id},
        headers=rid("adm-propose"),
    )
    assert proposed.status_code == 201, proposed.text

    async with (
        await client_as(app, sessionmaker, "insertion", world.insertion_id) as siae,
        await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord,
        await client_as(app, sessionmaker, "prescriber", world.partner_id) as prescriber,
    ):
        siae_id, landlord_id = subject_of(siae), subject_of(landlord)
        prescriber_id = subject_of(prescriber)
        read = await siae.get(f"/v1/candidates/{person}", headers=rid("siae-read"))
        assert read.status_code == 200
        listed = await siae.get("/v1/candidates", headers=rid("siae-list"))
        assert len(listed.json()["items"]) == 2
        reduced = await landlord.get(f"/v1/candidates/{person}", headers=rid("landlord-read"))
        assert reduced.json()["view"] == "reduced"
        referral = await prescriber.get(f"/v1/candidates/{person}", headers=rid("pre-read"))
        assert referral.json()["view"] == "referral"
        updated = await siae.patch(
            f"/v1/candidates/{person}", json={"max_commute_km": 45}, headers=rid("siae-update")
        )
        assert updated.status_code == 200, updated.text
        deleted = await siae.delete(f"/v1/candidates/{other}", headers=rid("siae-delete"))
        assert deleted.status_code == 204, deleted.text
        # Refused accesses touch nobody's data and leave no row.
        assert is_problem(await landlord.get(f"/v1/candidates/{other}"), 404)

    expected: Counter[Row] = Counter(
        [
            ("create", "full", admin_id, person, "adm-create-1"),
            ("create", "full", admin_id, other, "adm-create-2"),
            ("create", "full", admin_id, person, "adm-propose"),
            ("read", "full", siae_id, person, "siae-read"),
            ("list", "full", siae_id, person, "siae-list"),
            ("list", "full", siae_id, other, "siae-list"),
            ("read", "reduced", landlord_id, person, "landlord-read"),
            ("read", "referral", prescriber_id, person, "pre-read"),
            ("update", "full", siae_id, person, "siae-update"),
            ("delete", "full", siae_id, other, "siae-delete"),
        ]
    )
    items = await read_journal(client)
    assert journal_rows(items) == expected
    # Ids are version 7 UUIDs dated by their row, whichever database made them.
    for item in items:
        made = uuid.UUID(item["id"])
        assert made.version == 7
        at_ms = datetime.fromisoformat(item["at"]).timestamp() * 1000
        assert abs((made.int >> 80) - at_ms) < 60_000
    roles = {e["actor_id"]: (e["actor_kind"], e["actor_role"]) for e in items}
    assert roles == {
        admin_id: ("client", "admin"),
        siae_id: ("client", "insertion"),
        landlord_id: ("client", "landlord"),
        prescriber_id: ("client", "prescriber"),
    }
    structures = {e["actor_id"]: e["actor_structure_id"] for e in items}
    assert structures[siae_id] == world.insertion_id
    assert structures[landlord_id] == world.landlord_id
    assert structures[admin_id] is None


async def test_a_page_journals_the_people_it_shows_and_no_one_else(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A page reads one person more than it shows (is there a next page?): that one is
    journaled by the page that shows them, once, with the view the caller had."""
    world = await build_world(client)
    people = []
    for n in range(3):
        created = await client.post(
            "/v1/candidates", json=candidate_payload(world.insertion_id, first_name=f"P{n}")
        )
        assert created.status_code == 201, created.text
        people.append(created.json()["id"])
        proposed = await client.post(
            "/v1/placements", json={"candidate_id": people[-1], "vacancy_id": world.vacancy_id}
        )
        assert proposed.status_code == 201, proposed.text
    async with (
        await client_as(app, sessionmaker, "insertion", world.insertion_id) as siae,
        await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord,
    ):
        for caller, name, view in ((siae, "siae", "full"), (landlord, "landlord", "reduced")):
            first = await caller.get("/v1/candidates", params={"limit": 2}, headers=rid(name))
            assert first.status_code == 200, first.text
            shown = [c["id"] for c in first.json()["items"]]
            cursor = first.json()["next_cursor"]
            assert len(shown) == 2
            assert cursor
            rest = await caller.get(
                "/v1/candidates", params={"limit": 2, "cursor": cursor}, headers=rid(f"{name}+")
            )
            assert rest.status_code == 200, rest.text
            last = [c["id"] for c in rest.json()["items"]]
            assert rest.json()["next_cursor"] is None
            assert shown + last == sorted(people)
            caller_id = subject_of(caller)
            lists = await read_journal(client, action="list")
            assert journal_rows([e for e in lists if e["actor_id"] == caller_id]) == Counter(
                [("list", view, caller_id, p, name) for p in shown]
                + [("list", view, caller_id, p, f"{name}+") for p in last]
            )


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    candidate = await create_candidate(client)
    response = await client.get(f"/v1/candidates/{candidate['id']}")
    generated = response.headers["x-request-id"]
    assert generated
    reads = await read_journal(client, action="read")
    assert [e["request_id"] for e in reads] == [generated]


async def test_structure_and_vacancy_reads_are_not_journaled(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(client)
    await create_candidate(client, world.insertion_id)
    before = await count_rows(sessionmaker, "audit_events")
    assert before == 1  # the creation
    async with (
        await client_as(app, sessionmaker, "insertion", world.insertion_id) as siae,
        await client_as(app, sessionmaker, "landlord", world.landlord_id) as landlord,
    ):
        for http in (client, siae, landlord):
            for path in (
                "/v1/structures",
                f"/v1/structures/{world.insertion_id}",
                "/v1/vacancies",
                f"/v1/vacancies/{world.vacancy_id}",
            ):
                assert (await http.get(path)).status_code == 200, path
    assert await count_rows(sessionmaker, "audit_events") == before


def _event(at: datetime, actor: str, candidate: uuid.UUID, action: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "at": at,
        "actor_kind": "client",
        "actor_id": actor,
        "actor_role": "insertion",
        "actor_structure_id": None,
        "candidate_id": candidate,
        "action": action,
        "field_class": "full",
        "request_id": f"{actor}-{action}-{at:%m}",
    }


async def test_journal_filters(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    x, y = uuid.uuid4(), uuid.uuid4()
    events = {
        "jan": _event(datetime(2026, 1, 10, 12, tzinfo=UTC), "actor-a", x, "read"),
        "feb": _event(datetime(2026, 2, 10, 12, tzinfo=UTC), "actor-a", y, "list"),
        "mar": _event(datetime(2026, 3, 10, 12, tzinfo=UTC), "actor-b", x, "update"),
        "apr": _event(datetime(2026, 4, 10, 12, tzinfo=UTC), "actor-b", y, "read"),
    }
    async with session_scope(sessionmaker) as session:
        await session.execute(insert(AuditEvent), list(events.values()))
    names = {str(e["id"]): name for name, e in events.items()}

    async def found(**params: Any) -> set[str]:
        return {names[e["id"]] for e in await read_journal(client, **params)}

    assert await found() == {"jan", "feb", "mar", "apr"}
    assert await found(candidate_id=str(x)) == {"jan", "mar"}
    assert await found(actor_id="actor-b") == {"mar", "apr"}
    assert await found(action="read") == {"jan", "apr"}
    assert await found(since="2026-02-01T00:00:00Z") == {"feb", "mar", "apr"}
    assert await found(until="2026-03-01T00:00:00Z") == {"jan", "feb"}
    assert await found(since="2026-02-01T00:00:00Z", until="2026-04-01T00:00:00Z") == {
        "feb",
        "mar",
    }
    # Offsets are honoured: 13:00+02:00 is 11:00Z, before March's 12:00Z event.
    assert await found(since="2026-03-10T13:00:00+02:00") == {"mar", "apr"}
    assert await found(since="2026-03-10T12:30:00+00:00") == {"apr"}
    assert await found(candidate_id=str(x), action="update") == {"mar"}
    assert await found(actor_id="actor-a", since="2026-02-01T00:00:00Z") == {"feb"}
    assert await found(candidate_id=str(uuid.uuid4())) == set()

    assert is_problem(await client.get("/v1/audit", params={"action": "erase"}), 422)
    assert is_problem(await client.get("/v1/audit", params={"candidate_id": "x"}), 422)


async def test_journal_time_filters_without_timezone_are_refused(
    client: httpx.AsyncClient,
) -> None:
    """Like `updated_since` on every list: an instant without offset is ambiguous."""
    for name in ("since", "until"):
        response = await client.get("/v1/audit", params={name: "2026-02-01T00:00:00"})
        assert is_problem(response, 422), (name, response.status_code, response.text)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/v1/audit/{id}"),
        ("PUT", "/v1/audit/{id}"),
        ("DELETE", "/v1/audit/{id}"),
        ("DELETE", "/v1/audit"),
        ("PUT", "/v1/audit"),
        ("PATCH", "/v1/audit"),
        ("POST", "/v1/audit"),
    ],
)
async def test_no_route_changes_the_journal(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await create_candidate(client)
    [entry] = await read_journal(client)
    response = await client.request(
        method, path.format(id=entry["id"]), json={"action": "read", "actor_id": "someone"}
    )
    assert response.status_code in {404, 405}
    assert is_problem(response, response.status_code)
    assert await read_journal(client) == [entry]


async def test_openapi_offers_only_reads_of_the_journal(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    audit_paths = {p: set(ops) for p, ops in paths.items() if p.startswith("/v1/audit")}
    assert audit_paths == {"/v1/audit": {"get"}}


async def _some_rows(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    candidate = await create_candidate(client)
    await client.get(f"/v1/candidates/{candidate['id']}")
    rows = await read_journal(client)
    assert len(rows) == 2
    return rows


async def test_database_refuses_updates_of_the_journal(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rows = await _some_rows(client)
    with pytest.raises(DBAPIError):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE audit_events SET action = 'read'"))
    assert await read_journal(client) == rows


async def test_database_refuses_deletes_of_the_journal(
    client: httpx.AsyncClient, backend: Backend, engine: AsyncEngine
) -> None:
    if not backend.is_postgres:
        pytest.skip("SQLite's guard covers UPDATE only; PostgreSQL's trigger covers DELETE too")
    rows = await _some_rows(client)
    with pytest.raises(DBAPIError):
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_events"))
    assert await read_journal(client) == rows


async def test_purge_deletes_old_entries_only(
    client: httpx.AsyncClient,
    backend: Backend,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    recent = await _some_rows(client)
    old_id = uuid.uuid4()
    one_year_and_a_day = datetime.now(UTC) - timedelta(days=366)
    # Raw INSERT through the engine: the journal accepts new rows from anyone.
    async with engine.begin() as conn:
        await conn.execute(
            insert(AuditEvent),
            [
                {
                    **_event(one_year_and_a_day, "old-actor", uuid.uuid4(), "read"),
                    "id": old_id,
                }
            ],
        )
    assert await count_rows(sessionmaker, "audit_events") == 3

    async with session_scope(sessionmaker) as session:
        purged = await audit.purge(session, 365)
    assert purged == 1
    assert await read_journal(client) == recent

    if backend.is_postgres:  # the purge's permission ended with its transaction
        with pytest.raises(DBAPIError):
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM audit_events"))
        assert await count_rows(sessionmaker, "audit_events") == 2


_CLOSE_JOURNAL = {
    "postgresql": [
        "CREATE FUNCTION test_journal_closed() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'journal closed'; END $$",
        "CREATE TRIGGER test_journal_closed BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION test_journal_closed()",
    ],
    "sqlite": [
        "CREATE TRIGGER test_journal_closed BEFORE INSERT ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'journal closed'); END",
    ],
}
_OPEN_JOURNAL = {
    "postgresql": [
        "DROP TRIGGER test_journal_closed ON audit_events",
        "DROP FUNCTION test_journal_closed()",
    ],
    "sqlite": ["DROP TRIGGER test_journal_closed"],
}


async def test_a_read_that_cannot_be_journaled_shows_nothing(
    client: httpx.AsyncClient, app: FastAPI, backend: Backend, engine: AsyncEngine
) -> None:
    """The read of a person and its journal row succeed or fail together: on PostgreSQL
    they are one statement, run alone (no BEGIN, no COMMIT) unless the request already
    opened a transaction to read the caller's client row."""
    candidate = await create_candidate(client, last_name="Quenneville")
    person = candidate["id"]
    before = await read_journal(client)
    dialect = "postgresql" if backend.is_postgres else "sqlite"
    async with engine.begin() as conn:
        for statement in _CLOSE_JOURNAL[dialect]:
            await conn.execute(text(statement))
    try:
        # The caller's client row is cached: the first read runs alone; then with the
        # cache emptied, inside the request's transaction.
        refused = await client.get(f"/v1/candidates/{person}")
        app.state.authenticator.clients.forget()
        refused_in_transaction = await client.get(f"/v1/candidates/{person}")
    finally:
        async with engine.begin() as conn:
            for statement in _OPEN_JOURNAL[dialect]:
                await conn.execute(text(statement))
    for answer in (refused, refused_in_transaction):
        assert answer.status_code >= 400, answer.text
        assert "Quenneville" not in answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert await read_journal(client) == before

    shown = await client.get(f"/v1/candidates/{person}", headers=rid("after"))
    assert shown.status_code == 200
    assert shown.json()["last_name"] == "Quenneville"
    app.state.authenticator.clients.forget()
    again = await client.get(f"/v1/candidates/{person}", headers=rid("again"))
    assert again.status_code == 200
    reads = [e for e in await read_journal(client) if e["action"] == "read"]
    assert sorted((e["candidate_id"], e["request_id"]) for e in reads) == [
        (person, "after"),
        (person, "again"),
    ]
