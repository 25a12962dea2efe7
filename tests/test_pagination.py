"""Keyset pagination: every row exactly once, in id order, under filters and concurrent writes.

Rows are seeded in bulk through the session factory (hundreds of rows per test), and
read back through the HTTP API the way a partner synchronising its data would.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.identifiers import luhn_valid
from app.domain.ids import uuid7
from app.models import Candidate, Structure
from app.routers.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.services.common import territory
from tests.factories import candidate_payload, structure_payload

Maker = async_sessionmaker[AsyncSession]

SEED_SIZE = 520
OLD = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)
RECENT = datetime(2025, 6, 15, 8, 0, tzinfo=UTC)
BETWEEN = "2025-03-01T00:00:00Z"

ROUEN = {"postcode": "76000", "commune_insee": "76540", "commune_name": "Rouen"}
LYON = {"postcode": "69008", "commune_insee": "69388", "commune_name": "Lyon 8e"}
SUB_KIND = {"insertion": "AI", "landlord": "OPH", "partner": "plie"}

_siret_serial = itertools.count(random.randrange(10**7))


def fresh_siret() -> str:
    """A valid 14-digit SIRET, unique within the session.

    tests.factories.make_siret appends a counter as `:04d`, which grows to five digits
    after 9,999 calls and yields 15-digit SIRETs; these seeds would exhaust it quickly.
    """
    base = f"9{next(_siret_serial):012d}"
    return next(base + str(d) for d in range(10) if luhn_valid(base + str(d)))


@dataclass(frozen=True)
class Seeded:
    """What was written, so that any filter's expected answer can be computed."""

    rows: list[dict[str, Any]]

    @property
    def ids(self) -> set[str]:
        return {str(r["id"]) for r in self.rows}

    def where(self, **conditions: Any) -> set[str]:
        return {
            str(r["id"])
            for r in self.rows
            if all(r[name] == value for name, value in conditions.items())
        }

    def updated_since(self, instant: datetime, **conditions: Any) -> set[str]:
        return {
            str(r["id"])
            for r in self.rows
            if r["updated_at"] >= instant
            and all(r[name] == value for name, value in conditions.items())
        }


def _structure_row(kind: str, place: dict[str, str], updated_at: datetime) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "kind": kind,
        "sub_kind": SUB_KIND[kind],
        "name": f"Structure {kind} (fictional)",
        "siret": fresh_siret(),
        **place,
        **territory(place["commune_insee"]),
        "created_at": OLD,
        "updated_at": updated_at,
    }


async def seed_structures(sessionmaker: Maker) -> Seeded:
    """520 structures, mixed so that filters pick sets that straddle page boundaries.

    partner/69: 100 (exactly two pages of 50), landlord/69: 150, landlord/76: 120,
    insertion/76: 150. Every other row was updated recently.
    """
    plan = (
        [("partner", LYON)] * 100
        + [("landlord", LYON)] * 150
        + [("landlord", ROUEN)] * 120
        + [("insertion", ROUEN)] * 150
    )
    assert len(plan) == SEED_SIZE
    random.Random(7).shuffle(plan)
    rows = [
        _structure_row(kind, place, RECENT if i % 2 else OLD)
        for i, (kind, place) in enumerate(plan)
    ]
    async with sessionmaker() as session:
        await session.execute(insert(Structure), rows)
        await session.commit()
    # Ids are UUIDv7 with millisecond precision: rows created from now on sort after these.
    await asyncio.sleep(0.005)
    return Seeded(rows)


async def seed_candidates(sessionmaker: Maker) -> tuple[Seeded, str, str]:
    """Two insertion structures and 520 candidates spread over them, phases and places."""
    structure_a = _structure_row("insertion", ROUEN, OLD)
    structure_b = _structure_row("insertion", LYON, OLD)
    phases = ["recruitment", "support", "securing"]
    rng = random.Random(11)
    rows = []
    for i in range(SEED_SIZE):
        place = rng.choice([ROUEN, LYON])
        rows.append(
            {
                "id": uuid7(),
                "first_name": "Camille",
                "last_name": f"Exemple {i}",
                "birth_date": date(1990, 4, 12),
                **place,
                **territory(place["commune_insee"]),
                "structure_id": rng.choice([structure_a, structure_b])["id"],
                "phase": rng.choice(phases),
                "consent_to_share": False,
                "created_at": OLD,
                "updated_at": RECENT if i % 3 == 0 else OLD,
            }
        )
    async with sessionmaker() as session:
        await session.execute(insert(Structure), [structure_a, structure_b])
        await session.execute(insert(Candidate), rows)
        await session.commit()
    await asyncio.sleep(0.005)
    return Seeded(rows), str(structure_a["id"]), str(structure_b["id"])


async def page_through(
    client: httpx.AsyncClient,
    path: str,
    limit: int | None,
    between_pages: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
    **filters: str,
) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; checks the page shape on the way."""
    params: dict[str, Any] = dict(filters)
    if limit is not None:
        params["limit"] = limit
    page_size = limit or DEFAULT_LIMIT
    seen: list[dict[str, Any]] = []
    for _ in range(1000):
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        seen.extend(body["items"])
        if body["next_cursor"] is None:
            assert len(body["items"]) <= page_size
            return seen
        # A page that announces a next one is full: no short pages in the middle.
        assert len(body["items"]) == page_size
        params["cursor"] = body["next_cursor"]
        if between_pages is not None:
            await between_pages(body["items"])
    pytest.fail("next_cursor never became null")


def ids_of(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def assert_exactly_once_in_order(items: list[dict[str, Any]], expected: set[str]) -> None:
    ids = ids_of(items)
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert duplicates == []
    assert set(ids) == expected
    as_uuids = [uuid.UUID(i) for i in ids]
    assert as_uuids == sorted(as_uuids), "items are not in id (creation) order"


# --- Every row exactly once ------------------------------------------------------------


@pytest.mark.parametrize("limit", [50, MAX_LIMIT])
async def test_structures_paged_through_exactly_once(
    client: httpx.AsyncClient, sessionmaker: Maker, limit: int
) -> None:
    seeded = await seed_structures(sessionmaker)
    items = await page_through(client, "/v1/structures", limit)
    assert_exactly_once_in_order(items, seeded.ids)


@pytest.mark.parametrize("limit", [50, MAX_LIMIT])
async def test_candidates_paged_through_exactly_once(
    client: httpx.AsyncClient, sessionmaker: Maker, limit: int
) -> None:
    seeded, _, _ = await seed_candidates(sessionmaker)
    items = await page_through(client, "/v1/candidates", limit)
    assert_exactly_once_in_order(items, seeded.ids)


async def test_default_limit_is_50(client: httpx.AsyncClient, sessionmaker: Maker) -> None:
    seeded = await seed_structures(sessionmaker)
    first = (await client.get("/v1/structures")).json()
    assert len(first["items"]) == DEFAULT_LIMIT == 50
    assert first["next_cursor"] is not None
    items = await page_through(client, "/v1/structures", None)
    assert_exactly_once_in_order(items, seeded.ids)


async def test_last_page_exactly_full_has_no_next_cursor(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    """100 partners at 50 a page: two pages, and no empty third page to fetch."""
    seeded = await seed_structures(sessionmaker)
    first = (await client.get("/v1/structures", params={"kind": "partner"})).json()
    assert len(first["items"]) == 50
    second = (
        await client.get(
            "/v1/structures", params={"kind": "partner", "cursor": first["next_cursor"]}
        )
    ).json()
    assert len(second["items"]) == 50
    assert second["next_cursor"] is None
    assert set(ids_of(first["items"] + second["items"])) == seeded.where(kind="partner")


async def test_empty_list_has_no_next_cursor(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/candidates")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": str(MAX_LIMIT + 1)},
        {"limit": "0"},
        {"limit": "-1"},
        {"cursor": "not a cursor"},
        {"cursor": "x" * 65},
        {"sort": "name"},
    ],
    ids=["over-max", "zero", "negative", "garbage-cursor", "long-cursor", "unknown-param"],
)
async def test_bad_paging_parameters_are_422_problems(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/v1/structures", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 422


# --- Filters combine with pagination ---------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "conditions"),
    [
        ({"kind": "landlord"}, {"kind": "landlord"}),
        ({"departement": "76"}, {"departement": "76"}),
        ({"kind": "landlord", "departement": "69"}, {"kind": "landlord", "departement": "69"}),
        ({"kind": "partner", "departement": "76"}, {"kind": "partner", "departement": "76"}),
    ],
    ids=["kind", "departement", "kind+departement", "empty-combination"],
)
async def test_filtered_structures_paged_through(
    client: httpx.AsyncClient,
    sessionmaker: Maker,
    filters: dict[str, str],
    conditions: dict[str, str],
) -> None:
    seeded = await seed_structures(sessionmaker)
    expected = seeded.where(**conditions)
    items = await page_through(client, "/v1/structures", 50, **filters)
    assert_exactly_once_in_order(items, expected)


async def test_structures_updated_since_paged_through(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    seeded = await seed_structures(sessionmaker)
    instant = datetime(2025, 3, 1, tzinfo=UTC)
    items = await page_through(client, "/v1/structures", 50, updated_since=BETWEEN, kind="landlord")
    expected = seeded.updated_since(instant, kind="landlord")
    assert 50 < len(expected) < len(seeded.where(kind="landlord"))
    assert_exactly_once_in_order(items, expected)


@pytest.mark.parametrize(
    "which",
    ["structure", "phase", "departement", "structure+phase+departement", "updated_since+phase"],
)
async def test_filtered_candidates_paged_through(
    client: httpx.AsyncClient, sessionmaker: Maker, which: str
) -> None:
    seeded, structure_a, _ = await seed_candidates(sessionmaker)
    a = uuid.UUID(structure_a)
    cases: dict[str, tuple[dict[str, str], set[str]]] = {
        "structure": ({"structure_id": structure_a}, seeded.where(structure_id=a)),
        "phase": ({"phase": "support"}, seeded.where(phase="support")),
        "departement": ({"departement": "69"}, seeded.where(departement="69")),
        "structure+phase+departement": (
            {"structure_id": structure_a, "phase": "securing", "departement": "76"},
            seeded.where(structure_id=a, phase="securing", departement="76"),
        ),
        "updated_since+phase": (
            {"updated_since": BETWEEN, "phase": "recruitment"},
            seeded.updated_since(datetime(2025, 3, 1, tzinfo=UTC), phase="recruitment"),
        ),
    }
    filters, expected = cases[which]
    assert 0 < len(expected) < SEED_SIZE
    items = await page_through(client, "/v1/candidates", 50, **filters)
    assert_exactly_once_in_order(items, expected)


# --- Writes while a client pages through -----------------------------------------------


async def _post_structure(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/v1/structures", json=structure_payload("landlord", siret=fresh_siret())
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _candidate_poster(structure_id: str) -> Callable[[httpx.AsyncClient], Awaitable[str]]:
    async def post(client: httpx.AsyncClient) -> str:
        response = await client.post("/v1/candidates", json=candidate_payload(structure_id))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    return post


async def _check_inserts_between_pages(
    client: httpx.AsyncClient,
    path: str,
    existing: set[str],
    post: Callable[[httpx.AsyncClient], Awaitable[str]],
) -> None:
    """New rows committed between two page requests: old rows once, new rows at the end."""
    inserted: list[str] = []

    async def insert_some(page: list[dict[str, Any]]) -> None:
        # Only while the cursor is still among the old rows: the new ones sort after it.
        if page[-1]["id"] in existing:
            inserted.extend([await post(client) for _ in range(3)])

    items = await page_through(client, path, 50, between_pages=insert_some)
    assert len(inserted) >= 3 * 9
    assert_exactly_once_in_order(items, existing | set(inserted))


async def test_structures_inserted_between_pages(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    seeded = await seed_structures(sessionmaker)
    await _check_inserts_between_pages(client, "/v1/structures", seeded.ids, _post_structure)


async def test_candidates_inserted_between_pages(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    seeded, structure_a, _ = await seed_candidates(sessionmaker)
    await _check_inserts_between_pages(
        client, "/v1/candidates", seeded.ids, _candidate_poster(structure_a)
    )


async def _check_inserts_alongside_pages(
    client: httpx.AsyncClient,
    path: str,
    existing: set[str],
    post: Callable[[httpx.AsyncClient], Awaitable[str]],
) -> None:
    """Each page request races four inserts; a later full listing sees everything once."""
    params: dict[str, Any] = {"limit": 50}
    seen: list[str] = []
    inserted: list[str] = []
    for _ in range(100):
        page, *new_ids = await asyncio.gather(
            client.get(path, params=params), *(post(client) for _ in range(4))
        )
        inserted.extend(new_ids)
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(ids_of(body["items"]))
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    else:
        pytest.fail("next_cursor never became null")

    counts = Counter(seen)
    assert [i for i, n in counts.items() if n > 1] == []
    assert existing <= set(seen), "a row that existed before paging started was skipped"
    assert set(seen) <= existing | set(inserted)
    as_uuids = [uuid.UUID(i) for i in seen]
    assert as_uuids == sorted(as_uuids)

    everything = await page_through(client, path, MAX_LIMIT)
    assert_exactly_once_in_order(everything, existing | set(inserted))


async def test_structures_inserted_alongside_page_fetches(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    seeded = await seed_structures(sessionmaker)
    await _check_inserts_alongside_pages(client, "/v1/structures", seeded.ids, _post_structure)


async def test_candidates_inserted_alongside_page_fetches(
    client: httpx.AsyncClient, sessionmaker: Maker
) -> None:
    seeded, structure_a, _ = await seed_candidates(sessionmaker)
    await _check_inserts_alongside_pages(
        client, "/v1/candidates", seeded.ids, _candidate_poster(structure_a)
    )
